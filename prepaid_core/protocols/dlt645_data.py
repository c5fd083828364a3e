"""DL/T645 data identifiers (DI), their formats and the BCD helpers (G2).

No I/O and no framing (that is ``dlt645``): this module turns the data of a frame, already
stripped of its +33H offset, into Python values and back. ``DATA_ITEMS_2007`` and
``DATA_ITEMS_1997`` describe each item (``DataItem``: kind, length, decimals, unit, the
vendor choice it follows); ``decode_value``/``encode_value`` convert; the BCD helpers and
the error classes (every one a ``DLT645Error`` with ``used``) are shared with ``dlt645``.

See docs/protocols.md (value kinds, vendor-specific choices, status word 3).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from prepaid_core.errors import PrepaidError

__all__ = [
    "AUTO",
    "BILLING_REGISTERS",
    "BLOCK",
    "DATA_ITEMS_1997",
    "DATA_ITEMS_2007",
    "ITEMS",
    "READ_WAYS",
    "REVERSE_TOTAL",
    "WAKE_UP_BYTES",
    "ChecksumError",
    "DLT645Error",
    "DataFormatError",
    "DataItem",
    "EnergyRegister",
    "FrameFormatError",
    "IncompleteFrameError",
    "MeterErrorReply",
    "MeterStatus3",
    "ReplyMismatchError",
    "ValueRangeError",
    "bcd_to_int",
    "data_item",
    "decode_value",
    "encode_value",
    "energy_register",
    "int_to_bcd",
    "int_to_signed_bcd",
    "is_block",
    "read_order",
    "signed_bcd_to_int",
]


# === ERRORS === #


class DLT645Error(PrepaidError):
    """Base of the DL/T645 errors; ``used`` = bytes to drop before decoding again."""

    def __init__(self, message: str, *, used: int = 0):
        super().__init__(message)
        self.used = used


class FrameFormatError(DLT645Error):
    """The bytes are not a well-formed frame (start/end byte, length, address...)."""


class DataFormatError(FrameFormatError):
    """The frame is well formed but its data does not match the data item's format."""


class ChecksumError(DLT645Error):
    """The checksum byte does not match the frame."""


class IncompleteFrameError(DLT645Error):
    """A one-shot parser was given a frame cut short (stream decoders never raise this)."""


class ValueRangeError(DLT645Error):
    """A value to encode does not fit its format (too large, negative, wrong type)."""


class ReplyMismatchError(DataFormatError):
    """A well-formed reply that answers another request: another meter's (``field`` is
    ``"address"``) or a read of another item (``"data identifier"``); nothing of it is
    used."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class MeterErrorReply(DLT645Error):
    """The meter answered with an error reply; ``error`` holds the error byte."""

    def __init__(self, message: str, *, error: int, control: int = 0, address: str = ""):
        super().__init__(message)
        self.error = error
        self.control = control
        self.address = address


# === BCD HELPERS === #


def bcd_to_int(data: bytes) -> int:
    """Unsigned BCD, low byte first, to int."""
    digits = data[::-1].hex()
    if not digits.isdigit():
        if not data:
            return 0
        raise DataFormatError(f"not BCD: {data.hex(' ')}")
    return int(digits)


_ASCII_DIGITS = re.compile("[0-9]*").fullmatch  # str.isdigit also takes other scripts' digits


def show(value) -> str:
    """A short representation of a bad value for an error message (never raises: a huge
    int has no ``str`` past 4300 digits, and a value of 1 GB must not be copied)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<{value.bit_length()}-bit int>"
    if isinstance(value, (str, bytes, bytearray)):
        text = repr(value[:40])
        return text + "..." if len(value) > 40 else text
    try:
        text = repr(value)
    except Exception:  # a foreign object's repr may raise anything
        return f"<{type(value).__name__}>"
    return text[:80] + ("..." if len(text) > 80 else "")


def int_to_bcd(value: int, length: int) -> bytes:
    """int to unsigned BCD of ``length`` bytes, low byte first."""
    if value < 0 or value >= 10 ** (2 * length):
        raise ValueRangeError(f"{show(value)} does not fit {length} BCD bytes")
    return bytes.fromhex(f"{value:0{2 * length}d}")[::-1]


def signed_bcd_to_int(data: bytes) -> int:
    """Signed BCD (sign = bit 7 of the highest byte, the last one on the wire) to int."""
    if data and data[-1] & 0x80:
        return -bcd_to_int(data[:-1] + bytes((data[-1] & 0x7F,)))
    return bcd_to_int(data)


def int_to_signed_bcd(value: int, length: int) -> bytes:
    """int to signed BCD (magnitude < 8 * 10**(2*length-1))."""
    magnitude = abs(value)
    if magnitude >= 8 * 10 ** (2 * length - 1):
        raise ValueRangeError(f"{show(value)} does not fit {length} signed BCD bytes")
    raw = bytearray(int_to_bcd(magnitude, length))
    if value < 0:
        raw[-1] |= 0x80
    return bytes(raw)


# === DATA ITEMS === #


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data identifier: how its data bytes read, in what unit.

    ``length`` is the size of one value in bytes; a ``block`` item repeats it.
    """

    di: int
    name: str
    kind: str  # num | int | bin | addr | date | time | ymdhm | ymdhms
    length: int
    decimals: int = 0
    signed: bool = False
    unit: str = ""
    block: bool = False
    note: str = ""
    alt_lengths: tuple[int, ...] = ()  # other lengths accepted on decode (vendor variants)


_TARIFFS = ("sharp", "peak", "flat", "valley")

# (di, name, kind, length, decimals, signed, unit, note)
_ROWS_2007: list[tuple] = [
    (0x00000000, "combined_active_total", "num", 4, 2, False, "kWh", ""),
    *(
        (0x00000000 + (n << 8), f"combined_active_tariff{n}", "num", 4, 2, False, "kWh", "")
        for n in range(1, 5)
    ),
    (0x00010000, "forward_active_total", "num", 4, 2, False, "kWh", ""),
    *(
        (0x00010000 + (n << 8), f"forward_active_tariff{n}", "num", 4, 2, False, "kWh", "")
        for n in range(1, 5)
    ),
    (0x00020000, "reverse_active_total", "num", 4, 2, False, "kWh", ""),
    *(
        (0x00020000 + (n << 8), f"reverse_active_tariff{n}", "num", 4, 2, False, "kWh", "")
        for n in range(1, 5)
    ),
    *(
        (0x02010000 + (n << 8), f"voltage_{p}", "num", 2, 1, False, "V", "")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    *(
        (0x02020000 + (n << 8), f"current_{p}", "num", 3, 3, True, "A", "")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    (0x02030000, "active_power_total", "num", 3, 4, True, "kW", ""),
    *(
        (0x02030000 + (n << 8), f"active_power_{p}", "num", 3, 4, True, "kW", "")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    (0x02060000, "power_factor_total", "num", 2, 3, True, "", ""),
    *(
        (0x02060000 + (n << 8), f"power_factor_{p}", "num", 2, 3, True, "", "")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    # prepaid (appendix A)
    (0x00900100, "remaining_energy", "num", 4, 2, False, "kWh", "energy-type prepaid"),
    (0x00900101, "overdraft_energy", "num", 4, 2, False, "kWh", "energy-type prepaid"),
    (0x00900200, "remaining_amount", "num", 4, 2, False, "yuan", "cost-type prepaid"),
    (0x00900201, "overdraft_amount", "num", 4, 2, False, "yuan", "cost-type prepaid"),
    (0x03330101, "last_purchase_time", "ymdhm", 5, 0, False, "", "last purchase record"),
    (
        0x03330201,
        "purchase_count",
        "int",
        2,
        0,
        False,
        "",
        "purchases so far after the last purchase; XXXX (2 bytes) per the standard, "
        "4-byte vendor variant accepted on decode",
    ),
    (0x03330301, "last_purchase_amount", "num", 4, 2, False, "yuan", "last purchase record"),
    (0x03330401, "balance_before_last_purchase", "num", 4, 2, False, "yuan", ""),
    (0x03330501, "balance_after_last_purchase", "num", 4, 2, False, "yuan", ""),
    (0x03330601, "cumulative_purchase_amount", "num", 4, 2, False, "yuan", ""),
    (0x04001001, "alarm_amount_1", "num", 4, 2, False, "yuan", ""),
    (0x04001002, "alarm_amount_2", "num", 4, 2, False, "yuan", ""),
    (0x04001003, "hoarding_limit", "num", 4, 2, False, "yuan", "max balance allowed"),
    (0x04001004, "overdraft_limit", "num", 4, 2, False, "yuan", ""),
    (0x04001005, "close_allowed_amount", "num", 4, 2, False, "yuan", ""),
    *(
        (
            0x04050100 + n,
            f"tariff_price_{n}",
            "num",
            4,
            4,
            False,
            "yuan/kWh",
            f"first rate set, tariff {n} ({_TARIFFS[n - 1]})",
        )
        for n in range(1, 5)
    ),
    *(
        (0x04000500 + n, f"status_word_{n}", "bin", 2, 0, False, "", "bit field")
        for n in range(1, 8)
    ),
    # frozen data (05H): the last daily freeze (the meter's local midnight)
    (0x05060001, "daily_frozen_time_1", "ymdhm", 5, 0, False, "", "last daily freeze"),
    (0x04000101, "date", "date", 4, 0, False, "", "YYMMDDWW, WW 0 = Sunday"),
    (0x04000102, "time", "time", 3, 0, False, "", "hhmmss"),
    (0x04000306, "ct_ratio", "int", 3, 0, False, "", "current transformer ratio"),
    (0x04000307, "pt_ratio", "int", 3, 0, False, "", "voltage transformer ratio"),
    (0x04000401, "meter_address", "addr", 6, 0, False, "", "communication address"),
    (0x04000402, "meter_number", "addr", 6, 0, False, "", "nameplate number"),
]

# energy / instantaneous blocks: DI with FF, same format as their elements
_BLOCKS_2007 = [
    (0x0000FF00, 0x00000000, "combined_active_block"),
    (0x0001FF00, 0x00010000, "forward_active_block"),
    (0x0002FF00, 0x00020000, "reverse_active_block"),
    (0x0201FF00, 0x02010100, "voltage_block"),
    (0x0202FF00, 0x02020100, "current_block"),
    (0x0203FF00, 0x02030000, "active_power_block"),
    (0x0206FF00, 0x02060000, "power_factor_block"),
    # last daily frozen forward active energy: total then tariffs 1 to 4
    (0x05060101, 0x00010000, "daily_frozen_forward_active_1"),
]

_ROWS_1997: list[tuple] = [
    (0x9010, "forward_active_total", "num", 4, 2, False, "kWh", ""),
    *(
        (0x9010 + n, f"forward_active_tariff{n}", "num", 4, 2, False, "kWh", "")
        for n in range(1, 5)
    ),
    (0x9020, "reverse_active_total", "num", 4, 2, False, "kWh", ""),
    *(
        (0x9020 + n, f"reverse_active_tariff{n}", "num", 4, 2, False, "kWh", "")
        for n in range(1, 5)
    ),
    *(
        (0xB610 + n, f"voltage_{p}", "num", 2, 0, False, "V", "XXX V")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    *(
        (0xB620 + n, f"current_{p}", "num", 2, 2, False, "A", "XX.XX A")
        for n, p in ((1, "a"), (2, "b"), (3, "c"))
    ),
    (0xB630, "active_power_total", "num", 3, 4, False, "kW", ""),
    (0xB650, "power_factor_total", "num", 2, 3, False, "", ""),
    (0xC010, "date", "date", 4, 0, False, "", "YYMMDDWW"),
    (0xC011, "time", "time", 3, 0, False, "", "hhmmss"),
    (0xC032, "meter_number", "addr", 6, 0, False, "", ""),
]

_BLOCKS_1997 = [
    (0x901F, 0x9010, "forward_active_block"),
    (0x902F, 0x9020, "reverse_active_block"),
]


def _build(rows, blocks) -> dict[int, DataItem]:
    table: dict[int, DataItem] = {}
    for di, name, kind, length, decimals, signed, unit, note in rows:
        alt = (4,) if di == 0x03330201 else ()
        table[di] = DataItem(di, name, kind, length, decimals, signed, unit, False, note, alt)
    for di, element, name in blocks:
        e = table[element]
        table[di] = DataItem(
            di, name, e.kind, e.length, e.decimals, e.signed, e.unit, True, "block"
        )
    return table


DATA_ITEMS_2007: dict[int, DataItem] = _build(_ROWS_2007, _BLOCKS_2007)
DATA_ITEMS_1997: dict[int, DataItem] = _build(_ROWS_1997, _BLOCKS_1997)


# === ENERGY REGISTERS === #

#: what bills, as the meter model says (M2): the combined active register, the forward
#: active register, or forward and reverse (a bidirectional meter adds them)
BILLING_REGISTERS = ("combined", "forward", "forward_reverse")
#: the two ways to read an energy register: its block, or its single items
BLOCK, ITEMS = "block", "items"
#: how a meter model says its meters are read: "auto" (the block, single items when it is
#: refused, the way that worked tried first next time), or one way only
AUTO = "auto"
READ_WAYS = (AUTO, BLOCK, ITEMS)
#: FE bytes sent before a frame to wake a meter's receiver: DL/T645-2007 allows 0 to 4
WAKE_UP_BYTES = range(5)


class EnergyRegister(NamedTuple):
    """An energy register and its time-of-use bands, read as one block (total, then
    tariffs 1 to 4: one request) or item by item (one request each) from meters that
    answer "no data" to blocks."""

    block: int
    items: tuple[int, ...]  # total, then tariffs 1 to 4


def _energy(block: int, total: int, step: int) -> EnergyRegister:
    return EnergyRegister(block, tuple(total + n * step for n in range(5)))


_ENERGY_REGISTERS = {
    (2007, "combined"): _energy(0x0000FF00, 0x00000000, 0x100),
    (2007, "forward"): _energy(0x0001FF00, 0x00010000, 0x100),
    (1997, "forward"): _energy(0x901F, 0x9010, 1),
}
#: edition -> the reverse active total, read beside forward energy for ``forward_reverse``
REVERSE_TOTAL = {2007: 0x00020000, 1997: 0x9020}


def energy_register(version: int, billing_register: str) -> EnergyRegister:
    """The register read for ``billing_register``; DL/T645-1997 has no combined active
    energy: its meters bill their forward register."""
    if billing_register not in BILLING_REGISTERS:
        raise ValueRangeError(f"billing register: unknown {show(billing_register)}")
    if version not in REVERSE_TOTAL:
        raise ValueRangeError(f"version: DL/T645 has no edition {show(version)}")
    combined = billing_register == "combined" and version == 2007
    return _ENERGY_REGISTERS[version, "combined" if combined else "forward"]


def read_order(mode: str, way: str = AUTO) -> tuple[str, ...]:
    """The ways to try: the meter model's ``way`` alone when it forces one, else both,
    the one that worked last (``mode``) first; blocks first when nothing is known yet
    (one request instead of five)."""
    if mode not in (BLOCK, ITEMS, ""):
        raise ValueRangeError(f"read mode: unknown {show(mode)}")
    if way not in READ_WAYS:
        raise ValueRangeError(f"read way: unknown {show(way)}")
    if way != AUTO:
        return (way,)
    return (ITEMS, BLOCK) if mode == ITEMS else (BLOCK, ITEMS)


def is_block(di: int, version: int = 2007) -> bool:
    """Whether ``di`` asks for a block (FF in the DL/T645-2007 DI2 byte, F in the last
    digit of a DL/T645-1997 identifier)."""
    return (di >> 8) & 0xFF == 0xFF if version == 2007 else di & 0xF == 0xF


def bcd_datetime(digits: str) -> dt.datetime:
    """``YYMMDDhhmm[ss]`` (the digits of a BCD date and time, most significant first) as a
    datetime of this century; ``ValueError`` for a day or hour that does not exist."""
    return dt.datetime(
        2000 + int(digits[0:2]), *(int(digits[i : i + 2]) for i in range(2, len(digits), 2))
    )


def data_item(di: int, *, version: int = 2007) -> DataItem | None:
    """The table entry for ``di`` or None."""
    return (DATA_ITEMS_2007 if version == 2007 else DATA_ITEMS_1997).get(di)


# === VALUES === #

_SCALE = [Decimal(1).scaleb(-d) for d in range(9)]


def _decode_one(item: DataItem, data: bytes):
    kind = item.kind
    if kind == "num":  # hot path: build the decimal string directly
        sign = ""
        if item.signed and data[-1] & 0x80:
            digits = (bytes((data[-1] & 0x7F,)) + data[-2::-1]).hex()
            if digits.strip("0"):
                sign = "-"
        else:
            digits = data[::-1].hex()
        if not digits.isdigit():
            raise DataFormatError(f"{item.name}: not BCD: {data.hex(' ')}")
        d = item.decimals
        if d:
            return Decimal(f"{sign}{digits[:-d]}.{digits[-d:]}")
        return Decimal(sign + digits)
    if kind == "int":
        return signed_bcd_to_int(data) if item.signed else bcd_to_int(data)
    if kind == "bin":
        return int.from_bytes(data, "little")
    digits = data[::-1].hex()
    if not digits.isdigit():
        raise DataFormatError(f"{item.name}: not BCD: {data.hex(' ')}")
    if kind == "addr":
        return digits
    try:
        if kind == "date":  # YYMMDDWW
            return dt.date(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
        if kind == "time":  # hhmmss
            return dt.time(int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
        if kind in ("ymdhm", "ymdhms"):
            return bcd_datetime(digits)
    except ValueError as exc:  # day 31 of February, hour 25...
        raise DataFormatError(f"{item.name}: invalid date/time {digits}: {exc}") from None
    raise DataFormatError(f"{item.name}: unknown kind {kind!r}")  # pragma: no cover


def decode_value(item: DataItem, data: bytes):
    """Decode the value bytes of ``item`` (without the DI); value types: docs/protocols.md."""
    n = item.length
    if item.block:
        if not data or len(data) % n:
            raise DataFormatError(
                f"{item.name}: {len(data)} bytes is not a multiple of {n}", used=0
            )
        return tuple(_decode_one(item, data[i : i + n]) for i in range(0, len(data), n))
    if len(data) != n and len(data) not in item.alt_lengths:
        raise DataFormatError(f"{item.name}: expected {n} bytes, got {len(data)}")
    return _decode_one(item, data)


def _to_scaled_int(item: DataItem, value) -> int:
    if isinstance(value, bool):
        raise ValueRangeError(f"{item.name}: bool is not a number")
    if isinstance(value, int):
        return value * 10**item.decimals
    try:
        d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return int(d.scaleb(item.decimals).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (ArithmeticError, TypeError, ValueError) as exc:  # Overflow for 1E+999999999
        raise ValueRangeError(f"{item.name}: not a number: {show(value)}") from exc


def _encode_one(item: DataItem, value) -> bytes:
    kind, n = item.kind, item.length
    if kind in ("num", "int"):
        scaled = _to_scaled_int(item, value)
        return int_to_signed_bcd(scaled, n) if item.signed else int_to_bcd(scaled, n)
    if kind == "bin":
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * n):
            raise ValueRangeError(f"{item.name}: {show(value)} does not fit {n} bytes")
        return value.to_bytes(n, "little")
    if kind == "addr":
        if not isinstance(value, str) or len(value) != 2 * n or not _ASCII_DIGITS(value):
            raise ValueRangeError(f"{item.name}: need {2 * n} digits 0-9, got {show(value)}")
        return bytes.fromhex(value)[::-1]
    if kind == "date":
        if not isinstance(value, dt.date):
            raise ValueRangeError(f"{item.name}: need a date, got {show(value)}")
        weekday = value.isoweekday() % 7  # 0 = Sunday
        digits = f"{value.year % 100:02d}{value.month:02d}{value.day:02d}{weekday:02d}"
    elif kind == "time":
        if not isinstance(value, (dt.time, dt.datetime)):
            raise ValueRangeError(f"{item.name}: need a time, got {show(value)}")
        digits = f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    elif kind in ("ymdhm", "ymdhms"):
        if not isinstance(value, dt.datetime):
            raise ValueRangeError(f"{item.name}: need a datetime, got {show(value)}")
        digits = (
            f"{value.year % 100:02d}{value.month:02d}{value.day:02d}"
            f"{value.hour:02d}{value.minute:02d}"
        )
        if kind == "ymdhms":
            digits += f"{value.second:02d}"
    else:  # pragma: no cover
        raise ValueRangeError(f"{item.name}: unknown kind {kind!r}")
    return bytes.fromhex(digits)[::-1]


def encode_value(item: DataItem, value) -> bytes:
    """Encode ``value`` for ``item`` (without the DI).  Bytes pass through unchanged.

    Numbers are rounded half-up to the item's decimals; a block takes a sequence.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value)
        if item.block:
            if not value or len(value) % item.length:
                raise ValueRangeError(f"{item.name}: bad block length {len(value)}")
        elif len(value) != item.length and len(value) not in item.alt_lengths:
            raise ValueRangeError(f"{item.name}: expected {item.length} bytes")
        return value
    if item.block:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueRangeError(f"{item.name}: a block needs a sequence of values")
        return b"".join(_encode_one(item, v) for v in value)
    return _encode_one(item, value)


# === STATUS WORDS === #


class MeterStatus3(NamedTuple):
    """Status word 3 (DI 04000503), bits in docs/protocols.md."""

    word: int
    relay_off: bool  # bit 4: actual relay state, 1 = open (supply off)
    pre_trip_alarm: bool  # bit 6
    relay_command_off: bool  # bit 7: last relay command was a trip
    protected: bool  # bit 12 (prepaid amendment; 0 on older meters)
    prepaid_type: int  # bits 8-9: 0 not prepaid, 1 energy, 2 cost (amount)
    supply: int  # bits 1-2: 0 mains, 1 auxiliary, 2 battery
    programming_allowed: bool  # bit 3

    @classmethod
    def from_word(cls, word: int) -> MeterStatus3:
        return cls(
            word=word,
            relay_off=bool(word & 0x10),
            pre_trip_alarm=bool(word & 0x40),
            relay_command_off=bool(word & 0x80),
            protected=bool(word & 0x1000),
            prepaid_type=(word >> 8) & 0x3,
            supply=(word >> 1) & 0x3,
            programming_allowed=bool(word & 0x08),
        )

    @staticmethod
    def to_word(
        *,
        relay_off: bool = False,
        pre_trip_alarm: bool = False,
        relay_command_off: bool = False,
        protected: bool = False,
        prepaid_type: int = 2,
        supply: int = 0,
        programming_allowed: bool = False,
    ) -> int:
        """Build a status word 3 (for simulated meters)."""
        return (
            (relay_off << 4)
            | (pre_trip_alarm << 6)
            | (relay_command_off << 7)
            | (protected << 12)
            | ((prepaid_type & 3) << 8)
            | ((supply & 3) << 1)
            | (programming_allowed << 3)
        )
