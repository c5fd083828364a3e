"""STS tokens (IEC 62055-41): the 20-digit tokens most keypad prepaid meters accept.

Beside the project's own format (``prepaid_core.tokens``), this module vends and reads
standard tokens: class 0 credit (electricity, water, gas) and the class 2 management
tokens (maximum power limit, clear credit, clear tamper condition, key change tokens 1
and 2). Decoder keys come from ``decoder_key_dkga02``; tokens are encrypted with the
Standard Transfer Algorithm (EA07). A decoder key is 8 bytes in the order DES produces
them. ``StsMeter`` is the meter side: it applies tokens once, in any order within its
memory of recent token identifiers. Every error is an ``StsError``.

See docs/sts.md for the layouts and the test vectors' source.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from prepaid_core.errors import PrepaidError

UTC = timezone.utc  # datetime.UTC is Python 3.11+

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # cryptography < 43 keeps it among the primitives
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

__all__ = [
    "BASE_DATE",
    "BASE_DATE_2014",
    "BASE_DATE_2035",
    "CreditSubclass",
    "KeyChange",
    "StsAmountError",
    "StsCrcError",
    "StsError",
    "StsFormatError",
    "StsKeyChangeError",
    "StsMeter",
    "StsReplayError",
    "StsToken",
    "Subclass",
    "carried_credit",
    "carried_floor",
    "crc16",
    "decode",
    "decode_amount",
    "decoder_key_dkga02",
    "encode_amount",
    "encode_clear_credit",
    "encode_clear_tamper",
    "encode_credit",
    "encode_key_change",
    "encode_management",
    "encode_max_power_limit",
    "energy_for_money",
    "format_token",
    "minutes_since_base",
    "next_tid",
    "sta_decrypt",
    "sta_encrypt",
    "tid_moment",
]

BASE_DATE = datetime(1993, 1, 1, tzinfo=UTC)
BASE_DATE_2014 = datetime(2014, 1, 1, tzinfo=UTC)
BASE_DATE_2035 = datetime(2035, 1, 1, tzinfo=UTC)
_MASK64 = (1 << 64) - 1
_MAX_TID = (1 << 24) - 1
_ROUNDS = 16

# The STA's substitution boxes and bit permutation, as the standard tabulates them.
_SBOX_FIRST = (14, 10, 7, 9, 12, 3, 2, 5, 13, 0, 15, 1, 4, 8, 6, 11)
_SBOX_SECOND = (12, 8, 2, 13, 7, 6, 1, 3, 11, 5, 9, 15, 0, 4, 10, 14)
_PERMUTATION = (
    55, 42, 10, 18, 24, 21, 44, 35, 2, 22, 56, 43, 27, 58, 9, 50,
    6, 36, 12, 61, 37, 38, 53, 16, 62, 3, 7, 4, 32, 20, 63, 25,
    51, 52, 54, 33, 49, 19, 46, 29, 48, 31, 23, 30, 41, 28, 13, 5,
    40, 60, 39, 11, 15, 17, 1, 0, 57, 34, 59, 8, 47, 14, 45, 26,
)  # fmt: skip


class StsError(PrepaidError):
    """An STS token or one of its fields is not acceptable."""


class StsFormatError(StsError):
    """The token is not 20 decimal digits of a 66-bit number, or a field is out of range."""


class StsCrcError(StsError):
    """The decrypted token fails its CRC: a digit was mistyped, or it is for another key."""


class StsAmountError(StsError):
    """The amount cannot be carried exactly by the standard's 16-bit amount field."""


class StsReplayError(StsError):
    """The meter refuses a token already used, or older than every token it remembers."""


class StsKeyChangeError(StsError):
    """A second key change token arrived without its first."""


class CreditSubclass(IntEnum):
    """Class 0 subclasses: what the credit is for."""

    ELECTRICITY = 0
    WATER = 1
    GAS = 2


class Subclass(IntEnum):
    """Class 2 subclasses: which management instruction."""

    MAX_POWER_LIMIT = 0
    CLEAR_CREDIT = 1
    KEY_CHANGE_1 = 3
    KEY_CHANGE_2 = 4
    CLEAR_TAMPER = 5


CLASS_CREDIT = 0
CLASS_MANAGEMENT = 2
_KEY_CHANGE_SUBCLASSES = (Subclass.KEY_CHANGE_1, Subclass.KEY_CHANGE_2)


@dataclass(frozen=True, slots=True)
class StsToken:
    """A decoded token carrying a token identifier (credit and most management tokens).

    ``value`` is the raw 16-bit field: an encoded amount for credit and power limits, a
    register mask for clear credit, padding for clear tamper.
    """

    token_class: int
    subclass: int
    random_no: int
    tid: int
    value: int

    @property
    def issued_at(self) -> datetime:
        """When it was issued, for the 1993 base date (``issued_since`` for another)."""
        return self.issued_since(BASE_DATE)

    def issued_since(self, base_date: datetime) -> datetime:
        return base_date + timedelta(minutes=self.tid)

    @property
    def amount(self) -> Decimal:
        """Credit in the subclass's unit (kWh for electricity), one decimal."""
        return Decimal(decode_amount(self.value)) / 10


@dataclass(frozen=True, slots=True)
class KeyChange:
    """A decoded key change token: one half (32 bits) of the new decoder key."""

    subclass: int
    key_expiry_nibble: int
    half: int
    key_revision: int = 0
    rollover: bool = False
    key_type: int = 0
    tariff_index: int = 0


# -- amounts -------------------------------------------------------------------------


def encode_amount(units: int, exact: bool = True) -> int:
    """The 16-bit field (2-bit exponent, 14-bit mantissa) carrying ``units``.

    ``exact``: refuse a value the field cannot carry exactly (credit: never vend another
    amount than sold); otherwise round to the nearest value it carries (power limits).
    """
    offset = 0
    for exponent in range(4):
        scale = 10**exponent
        following = offset + (1 << 14) * scale
        if offset <= units < following or (exponent == 3 and units >= offset):
            mantissa, rest = divmod(units - offset, scale)
            if not exact and rest * 2 >= scale:
                mantissa += 1
            if mantissa == 1 << 14 and exponent < 3:
                return (exponent + 1) << 14
            if mantissa < 1 << 14 and (rest == 0 or not exact):
                return exponent << 14 | mantissa
            break
        offset = following
    raise StsAmountError(
        f"{units} units cannot be carried by an STS token: from 0 to 16,383 any, then "
        "steps of 10 from 16,384, of 100 from 180,224, of 1,000 from 1,818,624, up to "
        "18,201,624."
    )


def decode_amount(field: int) -> int:
    """The units carried by a 16-bit amount field."""
    exponent, mantissa = field >> 14, field & 0x3FFF
    offset = sum((1 << 14) * 10**i for i in range(exponent))
    return mantissa * 10**exponent + offset


def _tenths(amount: Decimal) -> int:
    tenths = Decimal(amount) * 10
    if tenths != tenths.to_integral_value() or tenths <= 0:
        raise StsAmountError(f"Credit {amount} must be positive with at most one decimal.")
    return int(tenths)


def carried_credit(amount: Decimal, exact: bool = True) -> Decimal:
    """The credit a token for ``amount`` carries (see ``encode_amount`` for ``exact``)."""
    return Decimal(decode_amount(encode_amount(_tenths(amount), exact))) / 10


def carried_floor(units: int) -> int:
    """The largest amount the 16-bit field carries that is not above ``units`` (0 for
    none): a credit vended for money is rounded down to it, never up."""
    offset = 0
    for exponent in range(4):
        scale = 10**exponent
        following = offset + (1 << 14) * scale
        if units < following:
            return offset + max(units - offset, 0) // scale * scale
        offset = following
    return decode_amount(0xFFFF)


def energy_for_money(money: Decimal, price: Decimal) -> tuple[int, Decimal]:
    """What a credit token carries for ``money`` at ``price`` per unit (kWh, m3): tenths
    of the unit, rounded down to an amount the field carries, and the money not carried
    (exact: ``money - tenths * price / 10``), which the vending side keeps for the next
    token."""
    money, price = Decimal(money), Decimal(price)
    if not price.is_finite() or price <= 0 or not money.is_finite() or money < 0:
        raise StsAmountError(f"Cannot turn {money} into energy at a price of {price}.")
    tenths = carried_floor(int((money * 10 / price).to_integral_value(ROUND_FLOOR)))
    return tenths, money - Decimal(tenths) * price / 10


def next_tid(moment: datetime, last_tid: int, base_date: datetime = BASE_DATE) -> int:
    """The token identifier of a meter's next token: the minute of ``moment``, or one more
    than the meter's last (``last_tid``) when that is later, so two tokens of the same
    minute are distinct and strictly ordered (the meter refuses a TID it remembers)."""
    tid = max(minutes_since_base(moment, base_date), last_tid + 1)
    if tid > _MAX_TID:
        raise StsFormatError(
            "The meter's token identifiers ran out: rekey it to a later base.",
            code="sts.tid_exhausted",
        )
    return tid


def tid_moment(tid: int, base_date: datetime = BASE_DATE) -> datetime:
    """The moment a token identifier names (the inverse of ``minutes_since_base``)."""
    return base_date + timedelta(minutes=tid)


def minutes_since_base(moment: datetime, base_date: datetime = BASE_DATE) -> int:
    """The token identifier of ``moment``: whole minutes since the base date (UTC).

    The 24-bit TID from 1993 ran out in November 2024; meters rekeyed for the 2014 base
    date take ``BASE_DATE_2014``.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    minutes = int((moment - base_date).total_seconds() // 60)
    if not 0 <= minutes <= _MAX_TID:
        raise StsFormatError(f"{moment} is outside the STS token identifier range.")
    return minutes


# -- decoder key ---------------------------------------------------------------------


def _des_encrypt(key: bytes, block: bytes) -> bytes:
    # Single DES is TripleDES with the key repeated (EDE with K1 = K2 = K3).
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _digits(value: str, length: int, name: str) -> str:
    if len(value) != length or not value.isdigit():
        raise StsFormatError(
            f"The {name} must be {length} digits, not {value!r}.",
            code="sts.digits",
            values={"name": name, "length": length},
        )
    return value


def decoder_key_dkga02(
    vending_key: bytes,
    supply_group_code: str,
    tariff_index: str,
    key_revision: int,
    meter_pan: str,
    key_type: int = 2,
) -> bytes:
    """The meter's decoder key by DKGA02 from the vending key and the meter's identity.

    ``meter_pan`` is the 18-digit meter PAN (6-digit IIN, 11-digit account number,
    check digit) or its first 17 digits.
    """
    if len(vending_key) != 8:
        raise StsFormatError("A DKGA02 vending key is 8 bytes.")
    pan = _digits(meter_pan[:17], 17, "meter number (IIN and account number)")
    sgc = _digits(supply_group_code, 6, "supply group code")
    ti = _digits(tariff_index, 2, "tariff index")
    if not (0 <= key_revision <= 9 and 0 <= key_type <= 3):
        raise StsFormatError("Key revision is 0-9 and key type 0-3.", code="sts.key_revision")
    pan_block = bytes.fromhex(pan[1:])
    control = bytes.fromhex(f"{key_type}{sgc}{ti}{key_revision}FFFFFF")
    mixed = bytes(p ^ c for p, c in zip(pan_block, control, strict=True))
    encrypted = _des_encrypt(vending_key, mixed)
    return bytes(e ^ m ^ v for e, m, v in zip(encrypted, mixed, vending_key, strict=True))


# -- Standard Transfer Algorithm (EA07) ----------------------------------------------


def _permute(block: int) -> int:
    out = 0
    for bit, target in enumerate(_PERMUTATION):
        out |= ((block >> bit) & 1) << target
    return out


def _build_round_tables() -> tuple[tuple, tuple, tuple]:
    """Per byte position: substitute-then-permute (encrypt), inverse permute, inverse
    substitute (decrypt), each indexed by the key's two selector bits and the byte."""
    sboxes = (_SBOX_FIRST, _SBOX_SECOND)
    inverse = tuple(tuple(box.index(v) for v in range(16)) for box in sboxes)
    inverse_perm = tuple(_PERMUTATION.index(bit) for bit in range(64))
    forward, unpermute, unsubstitute = [], [], []
    for position in range(8):
        shift = 8 * position
        forward.append(tuple(_byte_table(sboxes, sel, shift, _permute) for sel in range(4)))
        unsubstitute.append(tuple(_byte_table(inverse, sel, 0, None) for sel in range(4)))
        unpermute.append(
            tuple(
                sum(((byte << shift) >> bit & 1) << inverse_perm[bit] for bit in range(64))
                for byte in range(256)
            )
        )
    return tuple(forward), tuple(unpermute), tuple(unsubstitute)


def _byte_table(sboxes, selectors: int, shift: int, then) -> tuple[int, ...]:
    low_box, high_box = sboxes[selectors & 1], sboxes[selectors >> 1]
    table = []
    for byte in range(256):
        value = (high_box[byte >> 4] << 4 | low_box[byte & 15]) << shift
        table.append(then(value) if then else value)
    return tuple(table)


_FORWARD, _UNPERMUTE, _UNSUBSTITUTE = _build_round_tables()


def _round_selectors(decoder_key: bytes) -> tuple[tuple[int, ...], ...]:
    """For each round and byte position, the key bits choosing the two nibbles' S-box:
    the key is complemented, rotated right 12 bits, then left one bit per round."""
    if len(decoder_key) != 8:
        raise StsFormatError("An STS decoder key is 8 bytes.")
    key = int.from_bytes(decoder_key, "big") ^ _MASK64
    key = (key >> 12 | key << 52) & _MASK64
    rounds = []
    for _ in range(_ROUNDS):
        rounds.append(tuple((key >> (8 * p + 3) & 1) | (key >> (8 * p + 6) & 2) for p in range(8)))
        key = (key << 1 | key >> 63) & _MASK64
    return tuple(rounds)


def sta_encrypt(decoder_key: bytes, block: int) -> int:
    """Encrypt a 64-bit data block with the Standard Transfer Algorithm."""
    for selectors in _round_selectors(decoder_key):
        out = 0
        for position, table in enumerate(_FORWARD):
            out |= table[selectors[position]][block >> (8 * position) & 0xFF]
        block = out
    return block


def sta_decrypt(decoder_key: bytes, block: int) -> int:
    """Decrypt a 64-bit block encrypted by ``sta_encrypt`` with the same key."""
    for selectors in reversed(_round_selectors(decoder_key)):
        mixed = 0
        for position, table in enumerate(_UNPERMUTE):
            mixed |= table[block >> (8 * position) & 0xFF]
        block = 0
        for position, table in enumerate(_UNSUBSTITUTE):
            block |= table[selectors[position]][mixed >> (8 * position) & 0xFF] << (8 * position)
    return block


# -- token layout --------------------------------------------------------------------


def crc16(data50: int) -> int:
    """The token CRC (x^16 + x^15 + x^2 + 1, reflected, initial 0xFFFF) of the class and
    the 48 data bits, as the 16-bit field the token carries."""
    crc = 0xFFFF
    for byte in data50.to_bytes(7, "big"):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return (crc & 0xFF) << 8 | crc >> 8


def _transpose(number: int) -> int:
    """Swap bits 65 and 64 (the class) with bits 28 and 27; its own inverse."""
    high = number >> 64 & 3
    low = number >> 27 & 3
    number &= ~(3 << 64 | 3 << 27)
    return number | low << 64 | high << 27


def _build(decoder_key: bytes, token_class: int, data48: int) -> str:
    data50 = token_class << 48 | data48
    block = data48 << 16 | crc16(data50)
    number = _transpose(token_class << 64 | sta_encrypt(decoder_key, block))
    return f"{number:020d}"


def _open(decoder_key: bytes, token: str) -> tuple[int, int]:
    digits = token.replace("-", "").replace(" ", "")
    if len(digits) != 20 or not digits.isdigit() or int(digits) >> 66:
        raise StsFormatError(f"An STS token is 20 digits, not {token!r}.")
    number = _transpose(int(digits))
    token_class = number >> 64
    block = sta_decrypt(decoder_key, number & _MASK64)
    data48 = block >> 16
    if crc16(token_class << 48 | data48) != block & 0xFFFF:
        raise StsCrcError(
            "The token was refused: check the 20 digits, and that it was issued for this meter."
        )
    return token_class, data48


def _check_nibble(value: int, name: str) -> int:
    if not 0 <= value <= 15:
        raise StsFormatError(f"The {name} is 0-15, not {value}.")
    return value


# -- vending -------------------------------------------------------------------------


def encode_management(
    decoder_key: bytes,
    token_class: int,
    subclass: int,
    value: int,
    issued_at: datetime,
    random_no: int | None = None,
    base_date: datetime = BASE_DATE,
) -> str:
    """A token with a token identifier: class, subclass, random number, TID, 16-bit value."""
    rnd = secrets.randbelow(16) if random_no is None else _check_nibble(random_no, "random number")
    if not (0 <= token_class <= 3 and 0 <= subclass <= 15 and 0 <= value <= 0xFFFF):
        raise StsFormatError("Class is 0-3, subclass 0-15 and the value 16 bits.")
    tid = minutes_since_base(issued_at, base_date)
    return _build(decoder_key, token_class, subclass << 44 | rnd << 40 | tid << 16 | value)


def encode_credit(
    decoder_key: bytes,
    amount: Decimal,
    issued_at: datetime,
    random_no: int | None = None,
    subclass: int = CreditSubclass.ELECTRICITY,
    base_date: datetime = BASE_DATE,
    exact: bool = True,
) -> str:
    """A class 0 credit token of ``amount`` (kWh for electricity, one decimal).

    ``exact=False`` rounds an amount the field cannot carry to the nearest one it can, as
    the standard's compliance tests do; by default such an amount is refused.
    """
    field = encode_amount(_tenths(amount), exact)
    return encode_management(
        decoder_key, CLASS_CREDIT, subclass, field, issued_at, random_no, base_date
    )


def encode_max_power_limit(
    decoder_key: bytes,
    watts: int,
    issued_at: datetime,
    random_no: int | None = None,
    base_date: datetime = BASE_DATE,
) -> str:
    """Class 2 token setting the meter's maximum power limit in watts."""
    field = encode_amount(watts, exact=False)
    sub = Subclass.MAX_POWER_LIMIT
    return encode_management(
        decoder_key, CLASS_MANAGEMENT, sub, field, issued_at, random_no, base_date
    )


def encode_clear_credit(
    decoder_key: bytes,
    issued_at: datetime,
    register: int = 0xFFFF,
    random_no: int | None = None,
    base_date: datetime = BASE_DATE,
) -> str:
    """Class 2 token clearing credit registers (0xFFFF: all of them)."""
    sub = Subclass.CLEAR_CREDIT
    return encode_management(
        decoder_key, CLASS_MANAGEMENT, sub, register, issued_at, random_no, base_date
    )


def encode_clear_tamper(
    decoder_key: bytes,
    issued_at: datetime,
    random_no: int | None = None,
    base_date: datetime = BASE_DATE,
) -> str:
    """Class 2 token clearing the meter's tamper condition."""
    sub = Subclass.CLEAR_TAMPER
    return encode_management(decoder_key, CLASS_MANAGEMENT, sub, 0, issued_at, random_no, base_date)


def encode_key_change(
    decoder_key: bytes,
    new_key: bytes,
    key_revision: int,
    tariff_index: int,
    key_type: int = 2,
    key_expiry: int = 0xFF,
    rollover: bool = False,
) -> tuple[str, str]:
    """The two key change tokens moving a meter from ``decoder_key`` to ``new_key``."""
    if len(new_key) != 8 or not (0 <= key_revision <= 15 and 0 <= key_type <= 3):
        raise StsFormatError("The new key is 8 bytes, key revision 0-15, key type 0-3.")
    if not (0 <= tariff_index <= 99 and 0 <= key_expiry <= 0xFF):
        raise StsFormatError("Tariff index is 0-99 and key expiry number 0-255.")
    new = int.from_bytes(new_key, "big")
    first = (
        Subclass.KEY_CHANGE_1 << 44
        | (key_expiry >> 4) << 40
        | key_revision << 36
        | int(rollover) << 35
        | key_type << 32
        | new >> 32
    )
    second = Subclass.KEY_CHANGE_2 << 44 | (key_expiry & 15) << 40 | tariff_index << 32
    second |= new & 0xFFFFFFFF
    return (
        _build(decoder_key, CLASS_MANAGEMENT, first),
        _build(decoder_key, CLASS_MANAGEMENT, second),
    )


# -- reading -------------------------------------------------------------------------


def decode(token: str, decoder_key: bytes) -> StsToken | KeyChange:
    """The content of a 20-digit token; ``StsCrcError`` if it is not for this key."""
    token_class, data = _open(decoder_key, token)
    subclass = data >> 44
    if token_class == CLASS_MANAGEMENT and subclass in _KEY_CHANGE_SUBCLASSES:
        return _key_change(subclass, data)
    return StsToken(token_class, subclass, data >> 40 & 15, data >> 16 & _MAX_TID, data & 0xFFFF)


def _key_change(subclass: int, data: int) -> KeyChange:
    nibble = data >> 40 & 15
    half = data & 0xFFFFFFFF
    if subclass == Subclass.KEY_CHANGE_1:
        return KeyChange(
            subclass,
            nibble,
            half,
            key_revision=data >> 36 & 15,
            rollover=bool(data >> 35 & 1),
            key_type=data >> 32 & 3,
        )
    return KeyChange(subclass, nibble, half, tariff_index=data >> 32 & 0xFF)


def format_token(token: str) -> str:
    """The 20 digits grouped 4-4-4-4-4 for print and display."""
    return "-".join(token[i : i + 4] for i in range(0, 20, 4))


# -- meter side ----------------------------------------------------------------------


class StsMeter:
    """A keypad meter's token handling: decode with its decoder key, refuse a token whose
    TID it remembers or that is older than the oldest it remembers once its memory is
    full, then apply credit and management tokens. Key change tokens are applied as a
    pair, the first section then the second, and replace the decoder key.
    """

    def __init__(self, decoder_key: bytes, memory: int = 50) -> None:
        self.decoder_key = decoder_key
        self.memory = memory
        self.credit: dict[int, Decimal] = {}
        self.max_power_watts: int | None = None
        self.tampered = False
        self.key_revision: int | None = None
        self.tariff_index: int | None = None
        self._tids: list[int] = []
        self._first_section: KeyChange | None = None

    def enter(self, token: str) -> StsToken | KeyChange:
        """Decode, check and apply one token; return what it carried."""
        content = decode(token, self.decoder_key)
        if isinstance(content, KeyChange):
            self._key_change(content)
            return content
        self._check_tid(content.tid)
        self._apply(content)
        self._remember(content.tid)
        return content

    def _check_tid(self, tid: int) -> None:
        if tid in self._tids:
            raise StsReplayError("This token has already been entered.")
        if len(self._tids) >= self.memory and tid < self._tids[0]:
            raise StsReplayError("This token is older than the tokens the meter remembers.")

    def _remember(self, tid: int) -> None:
        self._tids.append(tid)
        self._tids.sort()
        del self._tids[: -self.memory]

    def _apply(self, token: StsToken) -> None:
        if token.token_class == CLASS_CREDIT:
            self.credit[token.subclass] = self.credit.get(token.subclass, Decimal(0)) + token.amount
        elif token.token_class != CLASS_MANAGEMENT:
            raise StsFormatError(f"Token class {token.token_class} is not handled by this meter.")
        elif token.subclass == Subclass.MAX_POWER_LIMIT:
            self.max_power_watts = decode_amount(token.value)
        elif token.subclass == Subclass.CLEAR_CREDIT:
            cleared = self.credit if token.value == 0xFFFF else (token.value,)
            self.credit.update(dict.fromkeys(cleared, Decimal(0)))
        elif token.subclass == Subclass.CLEAR_TAMPER:
            self.tampered = False
        else:
            raise StsFormatError(f"Management subclass {token.subclass} is not handled.")

    def _key_change(self, part: KeyChange) -> None:
        if part.subclass == Subclass.KEY_CHANGE_1:
            self._first_section = part
            return
        first, self._first_section = self._first_section, None
        if first is None:
            raise StsKeyChangeError("Enter the first key change token before the second.")
        self.decoder_key = (first.half << 32 | part.half).to_bytes(8, "big")
        self.key_revision = first.key_revision
        self.tariff_index = part.tariff_index
