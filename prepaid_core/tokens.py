"""Secure prepaid tokens bound to one meter (G6, R10).

A token carries one instruction (credit, clear credit, set price, clear tamper) for one
meter, authenticated with that meter's own key and numbered with the meter's sequence, so
it is applied at most once. Two forms of the same content: 40 bytes for card, Bluetooth and
MQTT (``issue_token``, ``encode_token``/``decode_token``, ``token_to_text``) and 20 digits
for a keypad (``issue_keypad_token``, ``encode_keypad_token``/``decode_keypad_token``).
Keys come from ``derive_meter_key``; every error is a ``TokenError``.

See docs/tokens.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac as std_hmac
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from prepaid_core.errors import PrepaidError

__all__ = [
    "BINARY_TOKEN_LENGTH",
    "KEYPAD_MAX_SEQUENCE",
    "MAX_SEQUENCE",
    "Token",
    "TokenAcceptor",
    "TokenAmountError",
    "TokenAuthError",
    "TokenError",
    "TokenFormatError",
    "TokenKind",
    "TokenReplayError",
    "WrongMeterError",
    "decode_keypad_token",
    "decode_token",
    "derive_meter_key",
    "encode_keypad_token",
    "encode_token",
    "format_keypad_token",
    "issue_keypad_token",
    "issue_token",
    "token_from_text",
    "token_to_text",
]

# === CONSTANTS === #

TOKEN_VERSION = 1
BINARY_TOKEN_LENGTH = 40
_BODY_LENGTH = 24
_MAC_LENGTH = 16
MAX_SEQUENCE = 2**32 - 1
_AMOUNT_SCALE = Decimal("0.0001")
_MAX_AMOUNT_UNITS = 2**63 - 1

KEYPAD_DIGITS = 20
KEYPAD_BLOCK_BITS = 66
KEYPAD_MAX_SEQUENCE = 2**18 - 1
_KEYPAD_MAC_BITS = 30
_KEYPAD_HALF_BITS = 33
_KEYPAD_ROUNDS = 10
_KEYPAD_MANTISSA_MAX = 2**14 - 1

_KDF_SALT = b"prepaid-core/token-key/v1"
# [0-9], not \d: \d also matches the digits of other scripts
_ADDRESS_RE = re.compile(r"[0-9]{12}")
#: separators allowed between groups of a typed or printed token (ASCII only)
_SEPARATORS = re.compile(r"[ \t\r\n-]")
#: longest text accepted before separators are removed (64 characters + separators)
_MAX_TEXT = 160
_KEYPAD_RE = re.compile(r"[0-9]{20}")


class TokenKind(IntEnum):
    """What a token tells the meter to do."""

    CREDIT = 0
    CLEAR_CREDIT = 1
    SET_PRICE = 2
    CLEAR_TAMPER = 3


# Keypad amount unit per kind (value = mantissa * 10**exponent * unit).
_KEYPAD_UNIT = {
    TokenKind.CREDIT: Decimal("0.01"),
    TokenKind.SET_PRICE: Decimal("0.0001"),
}


# === ERRORS === #


class TokenError(PrepaidError):
    """Base class of every token error; the message says what is wrong."""


class TokenFormatError(TokenError):
    """The token is not well formed (length, characters, version, reserved bits)."""


class TokenAuthError(TokenError):
    """The MAC does not match: tampered token, or a key for another meter."""


class WrongMeterError(TokenAuthError):
    """The token names another meter (binary form)."""


class TokenReplayError(TokenError):
    """The sequence number is not greater than the last accepted one."""


class TokenAmountError(TokenError):
    """The amount is not allowed for this kind of token or cannot be encoded exactly."""


# === DATA === #


@dataclass(frozen=True)
class Token:
    """One instruction for one meter; ``amount`` is a Decimal (0 for the clear kinds)."""

    meter_address: str
    kind: TokenKind
    amount: Decimal
    sequence: int


# === KEYS === #


def _show(value) -> str:
    """A short representation of a bad value for an error message."""
    if isinstance(value, str):
        return repr(str.__str__(value)[:20]) + ("..." if len(value) > 20 else "")
    return f"a {type(value).__name__}"


def _check_address(address: str) -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise TokenFormatError(
            f"meter address must be 12 digits 0-9, got {_show(address)}", code="token.address"
        )
    return str.__str__(address)


def _kind(kind) -> TokenKind:
    """The ``TokenKind`` of an integer, or ``TokenFormatError``."""
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise TokenFormatError(f"token kind must be a TokenKind, got {_show(kind)}")
    if not 0 <= kind <= max(TokenKind):
        raise TokenFormatError("unknown token kind")
    return TokenKind(int.__int__(kind))


def derive_meter_key(vending_key: bytes, meter_address: str) -> bytes:
    """Return the 32-byte key of one meter: HKDF-SHA256(vending key, info=address)."""
    if not isinstance(vending_key, bytes) or len(vending_key) < 16:
        raise TokenError("vending key must be at least 16 bytes")
    _check_address(meter_address)
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_KDF_SALT,
        info=b"meter:" + meter_address.encode("ascii"),
    )
    return hkdf.derive(vending_key)


def _check_key(meter_key: bytes) -> None:
    if not isinstance(meter_key, bytes) or len(meter_key) < 16:
        raise TokenError("meter key must be at least 16 bytes")


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


# === AMOUNTS === #


def _check_amount(kind: TokenKind, amount: Decimal) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)):
        raise TokenAmountError(f"amount must be a Decimal, got {type(amount).__name__}")
    if isinstance(amount, int) and int.bit_length(amount) > 64:
        raise TokenAmountError("amount is too large")
    amount = Decimal(amount)
    if not amount.is_finite():
        raise TokenAmountError("amount must be finite")
    if amount.adjusted() > 18:
        raise TokenAmountError("amount is too large")
    if kind in (TokenKind.CLEAR_CREDIT, TokenKind.CLEAR_TAMPER):
        if amount != 0:
            raise TokenAmountError(f"a {kind.name} token carries no amount")
        return Decimal(0)
    if amount <= 0:
        raise TokenAmountError(f"a {kind.name} token needs a positive amount, got {amount}")
    return amount


def _units(amount: Decimal, places: int) -> int | None:
    """``amount * 10**places`` as an exact integer, or None if it has more decimals.

    Integer arithmetic on the digits: no context rounding, no overflow, and no work
    proportional to an exponent (``1E-999999`` is refused at once)."""
    _sign, digits, exponent = amount.as_tuple()
    coefficient = int(Decimal((0, digits, 0)))
    shift = exponent + places
    if shift >= 0:
        return coefficient * 10**shift  # shift is small: amount.adjusted() <= 18
    if coefficient == 0:
        return 0
    if -shift > len(digits):  # more than all the digits to drop: not an integer
        return None
    units, rest = divmod(coefficient, 10**-shift)
    return None if rest else units


def _amount_to_units(amount: Decimal) -> int:
    units = _units(amount, 4)
    if units is None:
        raise TokenAmountError(f"amount {amount:.20} has more than 4 decimals")
    if units > _MAX_AMOUNT_UNITS:
        raise TokenAmountError(
            f"amount {amount} is too large",
            code="token.amount_too_large",
            values={"amount": amount},
        )
    return units


def _check_token_fields(token: Token, max_sequence: int) -> Decimal:
    if not isinstance(token, Token):
        raise TokenFormatError(f"expected a Token, got {_show(token)}")
    _check_address(token.meter_address)
    kind = _kind(token.kind)
    if isinstance(token.sequence, bool) or not isinstance(token.sequence, int):
        raise TokenFormatError("sequence must be an integer")
    if not 1 <= token.sequence <= max_sequence:
        raise TokenFormatError(f"sequence must be in 1..{max_sequence}")
    return _check_amount(kind, token.amount)


# === BINARY FORM === #


def _bcd(address: str) -> bytes:
    return bytes.fromhex(address)


def _unbcd(raw: bytes) -> str:
    text = raw.hex()
    if not text.isdigit():
        raise TokenFormatError("meter address field is not BCD")
    return text


def encode_token(meter_key: bytes, token: Token) -> bytes:
    """Return the 40-byte binary form of ``token``, authenticated with ``meter_key``."""
    _check_key(meter_key)
    amount = _check_token_fields(token, MAX_SEQUENCE)
    body = (
        bytes([TOKEN_VERSION, _kind(token.kind)])
        + _bcd(token.meter_address)
        + int.__int__(token.sequence).to_bytes(4, "big")
        + _amount_to_units(amount).to_bytes(8, "big")
        + bytes(4)
    )
    return body + _hmac_sha256(meter_key, body)[:_MAC_LENGTH]


def decode_token(meter_key: bytes, meter_address: str, data: bytes) -> Token:
    """Verify and decode a binary token meant for ``meter_address``.

    Raises ``TokenFormatError``, ``WrongMeterError``, ``TokenAuthError`` or
    ``TokenAmountError`` (all ``TokenError``); never applies anything itself.
    """
    _check_key(meter_key)
    _check_address(meter_address)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TokenFormatError("token must be bytes")
    data = bytes(data)
    if len(data) != BINARY_TOKEN_LENGTH:
        raise TokenFormatError(f"token must be {BINARY_TOKEN_LENGTH} bytes, got {len(data)}")
    body, tag = data[:_BODY_LENGTH], data[_BODY_LENGTH:]
    if body[0] != TOKEN_VERSION:
        raise TokenFormatError(f"unsupported token version {body[0]}")
    address = _unbcd(body[2:8])
    if address != meter_address:
        raise WrongMeterError(f"token is for meter {address}, not {meter_address}")
    expected = _hmac_sha256(meter_key, body)[:_MAC_LENGTH]
    if not std_hmac.compare_digest(expected, tag):
        raise TokenAuthError("token MAC does not match (tampered, or another key)")
    # Authentic from here on: the fields were written by the issuer.
    try:
        kind = TokenKind(body[1])
    except ValueError as exc:
        raise TokenFormatError(f"unknown token kind {body[1]}") from exc
    if body[20:24] != bytes(4):
        raise TokenFormatError("reserved bytes are not zero")
    sequence = int.from_bytes(body[8:12], "big")
    if sequence == 0:
        raise TokenFormatError("sequence 0 is never issued")
    amount = _check_amount(kind, Decimal(int.from_bytes(body[12:20], "big")) * _AMOUNT_SCALE)
    return Token(meter_address=address, kind=kind, amount=amount, sequence=sequence)


def token_to_text(data: bytes) -> str:
    """Base32 text (64 characters, no padding) of a binary token."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TokenFormatError(f"token must be bytes, got {_show(data)}")
    data = bytes(data)
    if len(data) != BINARY_TOKEN_LENGTH:
        raise TokenFormatError(f"token must be {BINARY_TOKEN_LENGTH} bytes, got {len(data)}")
    return base64.b32encode(data).decode("ascii").rstrip("=")


def token_from_text(text: str) -> bytes:
    """Inverse of ``token_to_text``; spaces and dashes are ignored, case-insensitive."""
    if not isinstance(text, str):
        raise TokenFormatError("token text must be a string")
    if len(text) > _MAX_TEXT or not text.isascii():
        raise TokenFormatError("token text is not base32")
    clean = _SEPARATORS.sub("", str.__str__(text)).upper()
    if not re.fullmatch(r"[A-Z2-7]{64}", clean):
        raise TokenFormatError("token text is not 64 base32 characters")
    try:
        return base64.b32decode(clean + "=" * (-len(clean) % 8))
    except (binascii.Error, ValueError) as exc:
        raise TokenFormatError(f"token text is not base32: {exc}") from exc


# === KEYPAD FORM === #


def _keypad_keys(meter_key: bytes) -> tuple[bytes, bytes]:
    return (
        _hmac_sha256(meter_key, b"prepaid-core/keypad/mac/v1"),
        _hmac_sha256(meter_key, b"prepaid-core/keypad/enc/v1"),
    )


def _keypad_amount_bits(kind: TokenKind, amount: Decimal) -> int:
    if kind not in _KEYPAD_UNIT:
        return 0
    unit = _KEYPAD_UNIT[kind]
    units = _units(amount, -unit.as_tuple().exponent)  # amount in units, if whole
    for exponent in range(4):
        if units is None or units % 10**exponent:
            break
        mantissa = units // 10**exponent
        if mantissa <= _KEYPAD_MANTISSA_MAX:
            return (exponent << 14) | mantissa
    raise TokenAmountError(
        f"amount {amount} cannot be written exactly in a keypad token "
        f"(14-bit mantissa x 10**0..3 x {unit})"
    )


def _keypad_amount_value(kind: TokenKind, bits: int) -> Decimal:
    if kind not in _KEYPAD_UNIT:
        if bits:
            raise TokenFormatError(f"a {kind.name} keypad token carries a non-zero amount")
        return Decimal(0)
    exponent, mantissa = bits >> 14, bits & _KEYPAD_MANTISSA_MAX
    unit = _KEYPAD_UNIT[kind]
    return (mantissa * (10**exponent)) * unit


def _keypad_mac(k_mac: bytes, head: int) -> int:
    digest = _hmac_sha256(k_mac, b"kp1" + head.to_bytes(5, "big"))
    return int.from_bytes(digest[:4], "big") >> (32 - _KEYPAD_MAC_BITS)


def _round_function(k_enc: bytes, round_no: int, half: int) -> int:
    digest = _hmac_sha256(k_enc, bytes([round_no]) + half.to_bytes(5, "big"))
    return int.from_bytes(digest[:5], "big") >> (40 - _KEYPAD_HALF_BITS)


_HALF_MASK = (1 << _KEYPAD_HALF_BITS) - 1


def _feistel_encrypt(k_enc: bytes, block: int) -> int:
    left, right = block >> _KEYPAD_HALF_BITS, block & _HALF_MASK
    for round_no in range(_KEYPAD_ROUNDS):
        left, right = right, left ^ _round_function(k_enc, round_no, right)
    return (left << _KEYPAD_HALF_BITS) | right


def _feistel_decrypt(k_enc: bytes, block: int) -> int:
    left, right = block >> _KEYPAD_HALF_BITS, block & _HALF_MASK
    for round_no in reversed(range(_KEYPAD_ROUNDS)):
        left, right = right ^ _round_function(k_enc, round_no, left), left
    return (left << _KEYPAD_HALF_BITS) | right


def encode_keypad_token(meter_key: bytes, token: Token) -> str:
    """Return the 20-digit keypad form of ``token`` (sequence at most 262,143)."""
    _check_key(meter_key)
    amount = _check_token_fields(token, KEYPAD_MAX_SEQUENCE)
    kind = _kind(token.kind)
    head = (int(kind) << 34) | (token.sequence << 16) | _keypad_amount_bits(kind, amount)
    k_mac, k_enc = _keypad_keys(meter_key)
    block = (head << _KEYPAD_MAC_BITS) | _keypad_mac(k_mac, head)
    return str(_feistel_encrypt(k_enc, block)).zfill(KEYPAD_DIGITS)


def decode_keypad_token(meter_key: bytes, meter_address: str, digits: str) -> Token:
    """Verify and decode a keypad token typed into meter ``meter_address``.

    Spaces and dashes between digit groups are ignored. A token for another meter
    fails with ``TokenAuthError`` (the keypad form does not carry the address).
    """
    _check_key(meter_key)
    _check_address(meter_address)
    if not isinstance(digits, str) or len(digits) > _MAX_TEXT:
        raise TokenFormatError(f"keypad token must be {KEYPAD_DIGITS} digits 0-9")
    clean = _SEPARATORS.sub("", str.__str__(digits))
    if not _KEYPAD_RE.fullmatch(clean):
        raise TokenFormatError(f"keypad token must be {KEYPAD_DIGITS} digits 0-9")
    value = int(clean)
    if value >= 1 << KEYPAD_BLOCK_BITS:
        raise TokenFormatError("keypad token is out of range")
    k_mac, k_enc = _keypad_keys(meter_key)
    block = _feistel_decrypt(k_enc, value)
    head, tag = block >> _KEYPAD_MAC_BITS, block & ((1 << _KEYPAD_MAC_BITS) - 1)
    expected = _keypad_mac(k_mac, head)
    if not std_hmac.compare_digest(expected.to_bytes(4, "big"), tag.to_bytes(4, "big")):
        raise TokenAuthError(
            "keypad token does not authenticate (mistyped, tampered, or for another meter)"
        )
    kind = TokenKind(head >> 34)
    sequence = (head >> 16) & KEYPAD_MAX_SEQUENCE
    if sequence == 0:
        raise TokenFormatError("sequence 0 is never issued")
    amount = _check_amount(kind, _keypad_amount_value(kind, head & 0xFFFF))
    return Token(meter_address=meter_address, kind=kind, amount=amount, sequence=sequence)


def format_keypad_token(digits: str) -> str:
    """Group a 20-digit token by four for printing: ``1234 5678 9012 3456 7890``."""
    if not isinstance(digits, str) or len(digits) > _MAX_TEXT:
        raise TokenFormatError(f"keypad token must be {KEYPAD_DIGITS} digits 0-9")
    clean = _SEPARATORS.sub("", str.__str__(digits))
    if not _KEYPAD_RE.fullmatch(clean):
        raise TokenFormatError(f"keypad token must be {KEYPAD_DIGITS} digits 0-9")
    return " ".join(clean[i : i + 4] for i in range(0, len(clean), 4))


# === ISSUING AND ACCEPTING === #


def issue_token(
    vending_key: bytes, meter_address: str, kind: TokenKind, amount: Decimal, sequence: int
) -> bytes:
    """Derive the meter key and return the binary token (the caller owns the counter)."""
    token = Token(meter_address, _kind(kind), amount, sequence)
    return encode_token(derive_meter_key(vending_key, meter_address), token)


def issue_keypad_token(
    vending_key: bytes, meter_address: str, kind: TokenKind, amount: Decimal, sequence: int
) -> str:
    """Derive the meter key and return the 20-digit keypad token."""
    token = Token(meter_address, _kind(kind), amount, sequence)
    return encode_keypad_token(derive_meter_key(vending_key, meter_address), token)


class TokenAcceptor:
    """The meter side: verifies tokens and remembers the last accepted sequence number.

    ``accept`` either returns the token, after which ``last_sequence`` is its sequence,
    or raises a ``TokenError`` and changes nothing. The caller applies the token's effect
    in the same step (the simulator does it under one call), so a token is applied once.
    """

    def __init__(self, meter_key: bytes, meter_address: str, last_sequence: int = 0):
        _check_key(meter_key)
        self.meter_key = meter_key
        self.meter_address = _check_address(meter_address)
        self.last_sequence = last_sequence

    def check(self, data: bytes | str) -> Token:
        """Verify without accepting: a ``str`` of digits is a keypad token, else binary."""
        if isinstance(data, str):
            token = decode_keypad_token(self.meter_key, self.meter_address, data)
        else:
            token = decode_token(self.meter_key, self.meter_address, data)
        if token.sequence <= self.last_sequence:
            raise TokenReplayError(
                f"token sequence {token.sequence} is not greater than the last accepted "
                f"{self.last_sequence}"
            )
        return token

    def accept(self, data: bytes | str) -> Token:
        token = self.check(data)
        self.last_sequence = token.sequence
        return token
