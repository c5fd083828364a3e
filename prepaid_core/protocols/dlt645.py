"""DL/T645-2007 and DL/T645-1997 frame codec, stream framer and request/reply helpers (G2).

No I/O: values become frame ``bytes`` and bytes become ``Frame`` objects; the transport
(serial port, TCP collector, simulator) is elsewhere. Entry points: ``Frame``,
``encode_frame``, ``decode`` and ``Framer`` (streams), ``parse_frame`` (one frame); the
master's requests (``read_request``, ``write_request``, ``relay_request``,
``broadcast_time``...), reply checks and parsers (``check_reply_to``, ``parse_read_reply``,
``check_ack``); the simulated meter's ``parse_request`` and ``build_*`` replies. Values
are typed by the DI table of ``dlt645_data``.

See docs/protocols.md (frame layout, password format, stream decoding contract).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple
from zlib import adler32

from .dlt645_data import (
    DATA_ITEMS_1997,
    DATA_ITEMS_2007,
    ChecksumError,
    DataFormatError,
    DLT645Error,
    FrameFormatError,
    IncompleteFrameError,
    MeterErrorReply,
    ReplyMismatchError,
    ValueRangeError,
    bcd_datetime,
    data_item,
    decode_value,
    encode_value,
    show,
)

__all__ = [
    "BROADCAST_ADDRESS",
    "ERROR",
    "FOLLOW_UP",
    "MAX_DATA_LENGTH",
    "REPLY",
    "WILDCARD_ADDRESS",
    "ChecksumError",
    "DLT645Error",
    "DataFormatError",
    "ErrorBits",
    "Frame",
    "FrameFormatError",
    "Framer",
    "Function",
    "IncompleteFrameError",
    "MeterErrorReply",
    "ReadResult",
    "RelayCommand",
    "ReplyMismatchError",
    "Request",
    "ValueRangeError",
    "broadcast_time",
    "build_ack",
    "build_address_reply",
    "build_error_reply",
    "build_read_reply",
    "check_ack",
    "check_reply_to",
    "decode",
    "encode_frame",
    "parse_address_reply",
    "parse_frame",
    "parse_read_reply",
    "parse_request",
    "read_address_request",
    "read_follow_up_request",
    "read_request",
    "relay_request",
    "write_request",
]

# === CONSTANTS === #

BROADCAST_ADDRESS = "999999999999"
WILDCARD_ADDRESS = "AAAAAAAAAAAA"
MAX_DATA_LENGTH = 200  # DL/T645-2007 4.4: L <= 200 when reading, <= 50 when writing

REPLY = 0x80
ERROR = 0x40
FOLLOW_UP = 0x20
_FUNCTION_MASK = 0x1F

_START = 0x68
_END = 0x16
_HEADER = 10  # 68 A0..A5 68 C L
_OVERHEAD = 12  # header + CS + 16

_ADD33 = bytes((i + 0x33) & 0xFF for i in range(256))
_SUB33 = bytes((i - 0x33) & 0xFF for i in range(256))


class Function(enum.IntEnum):
    """Function codes (control bits 4..0) for master requests."""

    BROADCAST_TIME = 0x08
    READ = 0x11
    READ_FOLLOW_UP = 0x12
    READ_ADDRESS = 0x13
    WRITE = 0x14
    WRITE_ADDRESS = 0x15
    FREEZE = 0x16
    CHANGE_BAUD = 0x17
    CHANGE_PASSWORD = 0x18
    CLEAR_DEMAND = 0x19
    CLEAR_METER = 0x1A
    CLEAR_EVENTS = 0x1B
    RELAY = 0x1C
    # DL/T645-1997
    READ_1997 = 0x01
    READ_FOLLOW_UP_1997 = 0x02


class RelayCommand(enum.IntEnum):
    """N1 byte of the relay control request (1CH)."""

    TRIP = 0x1A
    CLOSE_ALLOWED = 0x1B
    DIRECT_CLOSE = 0x1C
    ALARM = 0x2A
    ALARM_RELEASE = 0x2B
    PROTECT = 0x3A
    PROTECT_RELEASE = 0x3B


class ErrorBits(enum.IntFlag):
    """Error byte of a DL/T645-2007 error reply."""

    OTHER = 0x01
    NO_DATA = 0x02
    UNAUTHORIZED = 0x04  # password error / not authorised
    BAUD_RATE = 0x08  # baud rate cannot be changed
    YEAR_ZONES = 0x10  # annual time zones exceeded
    DAY_SEGMENTS = 0x20  # daily time segments exceeded
    TARIFFS = 0x40  # tariff count exceeded


# === FRAMES === #


@dataclass(frozen=True, slots=True)
class Frame:
    """One DL/T645 frame; ``data`` is decoded (33H already removed)."""

    address: str
    control: int
    data: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_error(self) -> bool:
        return (self.control & (REPLY | ERROR)) == (REPLY | ERROR)

    @property
    def has_follow_up(self) -> bool:
        return bool(self.control & FOLLOW_UP)

    @property
    def function(self) -> int:
        return self.control & _FUNCTION_MASK

    @property
    def version(self) -> int:
        """1997 for the 1997 function codes (01H..07H), 2007 otherwise."""
        return 1997 if self.control & _FUNCTION_MASK < 0x08 else 2007

    def encode(self, *, preamble: int = 0) -> bytes:
        return encode_frame(self.address, self.control, self.data, preamble=preamble)


def _address_bytes(address: str) -> bytes:
    if not isinstance(address, str) or len(address) != 12 or not address.isascii():
        raise ValueRangeError(f"address must be 12 characters 0-9 or A, got {show(address)}")
    if not address.isdigit():
        address = address.upper()
        for i in range(0, 12, 2):
            pair = address[i : i + 2]
            if pair != "AA" and not pair.isdigit():
                raise ValueRangeError(f"address {address!r}: {pair!r} is not BCD nor AA")
    return bytes.fromhex(address)[::-1]


_ADDRESS_CACHE: dict[bytes, str] = {}  # wire address -> string, for the decode hot path
_ADDRESS_CACHE_SIZE = 100_000


def _address_str(raw: bytes) -> str | None:
    """Wire address (low byte first) to its string, None if not BCD/AA."""
    s = raw[::-1].hex()
    if s.isdigit():
        return s
    s = s.upper()
    for i in range(0, 12, 2):
        pair = s[i : i + 2]
        if pair != "AA" and not pair.isdigit():
            return None
    return s


def encode_frame(address: str, control: int, data: bytes = b"", *, preamble: int = 0) -> bytes:
    """Build a frame: ``data`` is given decoded, 33H is added here."""
    if not isinstance(control, int) or not 0 <= control <= 0xFF:
        raise ValueRangeError(f"control {show(control)} is not a byte")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueRangeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) > 0xFF:
        raise ValueRangeError(f"data too long ({len(data)} bytes)")
    if not isinstance(preamble, int) or not 0 <= preamble <= 4:
        raise ValueRangeError("preamble is 0 to 4 FE bytes")
    body = (
        b"\x68"
        + _address_bytes(address)
        + bytes((_START, control, len(data)))
        + bytes(data).translate(_ADD33)
    )
    return b"\xfe" * preamble + body + bytes((sum(body) & 0xFF, _END))


def _decode_at(buf, pos: int, max_data_length: int) -> tuple[int, Frame | None]:
    """Decode from ``buf[pos:]``; returns (new position, frame or None)."""
    n = len(buf)
    find = buf.find
    start = find(_START, pos)
    while True:
        if start < 0:
            return n, None
        if n - start < _HEADER:
            if n - start >= 8 and buf[start + 7] != _START:
                start = find(_START, start + 1)
                continue
            return start, None
        if buf[start + 7] != _START:
            start = find(_START, start + 1)
            continue
        length = buf[start + 9]
        if length > max_data_length:
            raise FrameFormatError(
                f"data length {length} > {max_data_length}", used=start + 1 - pos
            )
        end = start + _OVERHEAD + length
        if end > n:
            if _complete_frame_after(buf, start + 1, n, max_data_length):
                raise FrameFormatError(
                    "incomplete frame interrupted by another frame", used=start + 1 - pos
                )
            return start, None
        if buf[end - 1] != _END:
            raise FrameFormatError(
                f"end byte {buf[end - 1]:02X}H instead of 16H", used=start + 1 - pos
            )
        if sum(buf[start : end - 2]) & 0xFF != buf[end - 2]:
            raise ChecksumError(
                f"checksum {buf[end - 2]:02X}H, computed {sum(buf[start : end - 2]) & 0xFF:02X}H",
                used=start + 1 - pos,
            )
        raw_address = bytes(buf[start + 1 : start + 7])
        address = _ADDRESS_CACHE.get(raw_address)
        if address is None:
            address = _address_str(raw_address)
            if address is None:
                raise FrameFormatError(
                    f"address {raw_address.hex(' ')} is not BCD", used=start + 1 - pos
                )
            if len(_ADDRESS_CACHE) < _ADDRESS_CACHE_SIZE:
                _ADDRESS_CACHE[raw_address] = address
        data = bytes(buf[start + _HEADER : end - 2]).translate(_SUB33)
        return end, Frame(address, buf[start + 8], data)


def _complete_frame_after(buf, pos: int, n: int, max_data_length: int) -> bool:
    """Is there a complete, valid frame starting somewhere in buf[pos:n]?"""
    find = buf.find
    j = find(_START, pos)
    while 0 <= j and j + _OVERHEAD <= n:
        if buf[j + 7] == _START:
            length = buf[j + 9]
            end = j + _OVERHEAD + length
            if (
                length <= max_data_length
                and end <= n
                and buf[end - 1] == _END
                and sum(buf[j : end - 2]) & 0xFF == buf[end - 2]
            ):
                return True
        j = find(_START, j + 1)
    return False


def decode(buf: bytes | bytearray, *, max_data_length: int = MAX_DATA_LENGTH):
    """Decode the first frame of ``buf``: returns ``(used, Frame | None)``.

    Garbage before a plausible frame start is skipped and counted in ``used``; an
    incomplete frame returns ``(used, None)`` (never ``IncompleteFrameError``); a bad frame
    raises ``FrameFormatError`` or ``ChecksumError`` whose ``.used`` says how many bytes to
    drop. See docs/protocols.md.
    """
    if isinstance(buf, memoryview):
        buf = bytes(buf)
    return _decode_at(buf, 0, max_data_length)


def parse_frame(data: bytes, *, max_data_length: int = MAX_DATA_LENGTH) -> Frame:
    """Parse exactly one complete frame (leading FE bytes allowed, nothing else).

    Raises IncompleteFrameError if it is cut short, FrameFormatError for anything else
    that is not exactly one frame, ChecksumError.
    """
    data = bytes(data)
    i = 0
    n = len(data)
    while i < n and data[i] == 0xFE:
        i += 1
    if i == n:
        raise IncompleteFrameError("no frame")
    if data[i] != _START:
        raise FrameFormatError(f"frame starts with {data[i]:02X}H, not 68H")
    if n - i >= 8 and data[i + 7] != _START:
        raise FrameFormatError("second 68H missing")
    if n - i < _HEADER:
        raise IncompleteFrameError(f"{n - i} bytes, header is 10")
    end = i + _OVERHEAD + data[i + 9]
    if end > n:
        raise IncompleteFrameError(f"{n - i} bytes, frame is {end - i}")
    if end < n:
        raise FrameFormatError(f"{n - end} bytes after the frame")
    used, frame = _decode_at(data, i, max_data_length)
    assert frame is not None and used == n
    return frame


# Kinds of frame start, as the stream framer sees one position of its buffer.
_NOT_A_START, _INCOMPLETE, _VALID, _TOO_LONG, _BAD_END, _BAD_CHECKSUM, _BAD_ADDRESS = range(7)


def _classify(buf, k: int, n: int, max_data_length: int) -> tuple[int, int]:
    """What starts at ``buf[k]`` (a 68H with a full header before ``n``): ``(kind, end)``,
    ``end`` being where the frame would end."""
    if buf[k + 7] != _START:
        return _NOT_A_START, 0
    length = buf[k + 9]
    end = k + _OVERHEAD + length
    if length > max_data_length:
        return _TOO_LONG, end
    if end > n:
        return _INCOMPLETE, end
    if buf[end - 1] != _END:
        return _BAD_END, end
    if _checksum(buf, k, end - 2) != buf[end - 2]:
        return _BAD_CHECKSUM, end
    raw_address = bytes(buf[k + 1 : k + 7])
    if raw_address not in _ADDRESS_CACHE and _address_str(raw_address) is None:
        return _BAD_ADDRESS, end
    return _VALID, end


def _bad_start_error(buf, k: int, kind: int, max_data_length: int, used: int) -> DLT645Error:
    """The error of the bad frame start at ``buf[k]`` (written only when reported)."""
    end = k + _OVERHEAD + buf[k + 9]
    if kind == _TOO_LONG:
        return FrameFormatError(f"data length {buf[k + 9]} > {max_data_length}", used=used)
    if kind == _INCOMPLETE:
        return FrameFormatError("incomplete frame interrupted by another frame", used=used)
    if kind == _BAD_END:
        return FrameFormatError(f"end byte {buf[end - 1]:02X}H instead of 16H", used=used)
    if kind == _BAD_CHECKSUM:
        computed = _checksum(buf, k, end - 2)
        return ChecksumError(f"checksum {buf[end - 2]:02X}H, computed {computed:02X}H", used=used)
    address = bytes(buf[k + 1 : k + 7]).hex(" ")
    return FrameFormatError(f"address {address} is not BCD", used=used)


def _checksum(buf, start: int, stop: int) -> int:
    """Sum of ``buf[start:stop]`` modulo 256, in C: Adler-32's first half is 1 + the byte
    sum modulo 65521, exact while the sum stays below (245 bytes of FFH)."""
    if stop - start <= 245:
        return (adler32(buf[start:stop]) - 1) & 0xFF
    return sum(buf[start:stop]) & 0xFF


def _next_possible_start(buf, bad: int, n: int, max_data_length: int) -> int:
    """First position after the bad start ``bad`` where a frame could still begin.

    A frame at ``k`` ends with 16H at ``k + 11 + L``, ``L <= max_data_length``. With the
    first 16H after ``bad + 11`` at ``e`` (or none before ``n``), every start before
    ``e - 11 - max_data_length`` is complete and has no 16H where its end byte should
    be: bad too, so they are skipped at C speed (1 MB of 68H is one step, not a million).
    """
    e = buf.find(_END, bad + _OVERHEAD)
    if e < 0:
        e = n
    return max(bad + 1, e - _OVERHEAD + 1 - max_data_length)


class Framer:
    """Stateful stream decoder: ``feed(bytes) -> list[Frame]``.

    Works in both directions (a master reading replies, a simulated meter reading
    requests).  Keeps partial data between calls; bad bytes are skipped and reported;
    decoding resumes on the next byte so a good frame after a bad one is never lost.
    A run of bad frame starts between two good frames is reported once, by its first
    error (appended to ``errors``, a bounded deque of the last 100, counted in
    ``error_count`` and passed to ``on_error`` if given), so a flood of garbage costs
    one report. ``discarded`` counts the bytes dropped (garbage and bad frames).

    Work is linear in the bytes fed, whatever they are and however they are split:
    complete bad starts are skipped in bulk (``_next_possible_start``), and the look
    for a complete frame after an incomplete one (a wrong length byte must not swallow
    the next good frame) resumes where the previous ``feed`` left it. ``steps`` counts
    the positions examined one by one, for tests and benchmarks of that bound.
    """

    def __init__(
        self,
        on_error: Callable[[DLT645Error], None] | None = None,
        *,
        max_data_length: int = MAX_DATA_LENGTH,
    ):
        self.on_error = on_error
        self.max_data_length = max_data_length
        self.errors: deque[DLT645Error] = deque(maxlen=100)
        self.error_count = 0
        self.discarded = 0
        self.steps = 0
        self._buf = bytearray()
        self._base = 0  # stream offset of _buf[0]
        self._in_bad_run = False
        self._reset_lookahead()

    @property
    def pending(self) -> int:
        """Bytes kept waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        self._base += len(self._buf)
        self._buf.clear()
        self._reset_lookahead()

    def _reset_lookahead(self) -> None:
        self._la_next = 0  # stream offset of the next position to look at
        self._la_seen = 0  # stream length when the waiting starts were last checked
        self._la_waiting: dict[int, list[int]] = {}  # end offset -> incomplete starts
        self._la_valid: list[int] = []  # complete valid starts found, ascending

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        n = len(buf)
        max_len = self.max_data_length
        find = buf.find
        frames: list[Frame] = []
        framed = 0  # bytes of the frames returned
        pos = 0  # bytes consumed
        s = 0
        steps = 0
        in_bad_run = self._in_bad_run
        next_end = -1  # first 16H at or after s + 12 (-1: look it up again)
        start_byte, end_byte, overhead = _START, _END, _OVERHEAD  # locals: the loop is hot
        last_header = n - _HEADER  # the last start with a whole header in the buffer
        while True:
            if s > last_header or buf[s] != start_byte:
                s = find(start_byte, s)
                if s < 0:
                    pos = n
                    break
                if s > last_header:
                    if n - s >= 8 and buf[s + 7] != start_byte:
                        s += 1
                        continue
                    pos = s
                    break
            steps += 1
            if buf[s + 7] != start_byte:  # the common case in garbage, inlined
                s += 1
                continue
            length = buf[s + 9]
            end = s + overhead + length
            if length > max_len:
                kind = _TOO_LONG
            elif end > n:
                if self._valid_start_after(self._base + s, n) is None:
                    pos = s
                    break
                kind = _INCOMPLETE
            elif buf[end - 1] != end_byte:
                kind = _BAD_END
            elif length <= 235 and (adler32(buf[s : end - 2]) - 1) & 0xFF != buf[end - 2]:
                kind = _BAD_CHECKSUM  # _checksum inlined: garbage can end in 16H often
            else:
                kind = _classify(buf, s, n, max_len)[0]
                if kind == _VALID:
                    frames.append(self._frame(s, end))
                    framed += end - s
                    in_bad_run = False
                    s = pos = end
                    continue
            if not in_bad_run:
                self._report(_bad_start_error(buf, s, kind, max_len, s - pos + 1))
                in_bad_run = True
            # next start that could still be a frame (see _next_possible_start), inlined
            if next_end < s + overhead:
                next_end = find(end_byte, s + overhead)
                if next_end < 0:
                    next_end = n
            skip = next_end - overhead + 1 - max_len
            s = pos = skip if skip > s else s + 1
        self._in_bad_run = in_bad_run
        self.steps += steps
        self.discarded += pos - framed
        del buf[:pos]
        self._base += pos
        return frames

    def _frame(self, start: int, end: int) -> Frame:
        buf = self._buf
        raw_address = bytes(buf[start + 1 : start + 7])
        address = _ADDRESS_CACHE.get(raw_address)
        if address is None:
            address = _address_str(raw_address)
            if len(_ADDRESS_CACHE) < _ADDRESS_CACHE_SIZE:
                _ADDRESS_CACHE[raw_address] = address
        return Frame(
            address, buf[start + 8], bytes(buf[start + _HEADER : end - 2]).translate(_SUB33)
        )

    def _report(self, error: DLT645Error) -> None:
        """Report the first bad frame start of a run of them."""
        self.errors.append(error)
        self.error_count += 1
        if self.on_error is not None:
            self.on_error(error)

    def _valid_start_after(self, start: int, n: int) -> int | None:
        """Stream offset of the first complete valid frame after ``start``, or None.

        Remembers what it has looked at: positions are examined once, and a start that
        was incomplete is examined again only once the bytes it needs have arrived."""
        buf, max_len, base = self._buf, self.max_data_length, self._base
        stream_end = base + n
        waiting = self._la_waiting
        valid = self._la_valid
        if waiting:  # starts that were incomplete: those now complete, in O(new bytes)
            if stream_end - self._la_seen <= len(waiting):
                ends = [e for e in range(self._la_seen + 1, stream_end + 1) if e in waiting]
            else:
                ends = sorted(e for e in waiting if e <= stream_end)
            for end in ends:
                for k in waiting.pop(end):
                    if k > start and _classify(buf, k - base, n, max_len)[0] == _VALID:
                        valid.append(k)
                        valid.sort()
        self._la_seen = stream_end
        while valid and valid[0] <= start:
            valid.pop(0)
        if valid:
            return valid[0]
        if buf.find(_END, start - base + _OVERHEAD) < 0:
            return None  # no 16H after it: no frame can end (floods stop here)
        k = max(self._la_next, start + 1) - base
        steps = 0
        while True:
            k = buf.find(_START, k)
            if k < 0 or n - k < _HEADER:
                k = n if k < 0 else k
                break
            steps += 1
            kind, end = _classify(buf, k, n, max_len)
            if kind == _VALID:
                valid.append(base + k)
                self._la_next = base + k + 1
                self.steps += steps
                return base + k
            if kind == _INCOMPLETE:
                waiting.setdefault(base + end, []).append(base + k)
                k += 1
            elif kind == _NOT_A_START:
                k += 1
            else:
                k = _next_possible_start(buf, k, n, max_len)
        self._la_next = base + k
        self.steps += steps
        return None


# === VALUE HELPERS === #


def _hex4(value, what: str, *, level_first: bool) -> bytes:
    """Password / operator code to its 4 wire bytes."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 4:
            raise ValueRangeError(f"{what} must be 4 bytes")
        return bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueRangeError(f"{what} out of range")
        value = f"{value:08X}"
    if not isinstance(value, str) or len(value) != 8:
        raise ValueRangeError(f"{what} must be 8 hex digits, got {show(value)}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueRangeError(f"{what} must be 8 hex digits, got {show(value)}") from None
    if level_first:  # PA then P0 P1 P2 (password low byte first)
        return raw[:1] + raw[:0:-1]
    return raw[::-1]


def _password_str(raw: bytes) -> str:
    return (raw[:1] + raw[:0:-1]).hex().upper()


def _di_bytes(di: int, version: int) -> bytes:
    size = 4 if version == 2007 else 2
    if not isinstance(di, int) or not 0 <= di < 1 << (8 * size):
        raise ValueRangeError(f"DI {show(di)} is not a {size}-byte identifier")
    return di.to_bytes(size, "little")


def _datetime6(when: dt.datetime) -> bytes:
    """ssmmhhDDMMYY (ss first on the wire)."""
    if not isinstance(when, dt.datetime):
        raise ValueRangeError(f"need a datetime, got {show(when)}")
    return bytes(
        int(f"{v:02d}", 16)
        for v in (when.second, when.minute, when.hour, when.day, when.month, when.year % 100)
    )


def _parse_datetime6(raw: bytes) -> dt.datetime:
    digits = raw[::-1].hex()
    if not digits.isdigit():
        raise DataFormatError(f"time {raw.hex(' ')} is not BCD")
    try:
        return bcd_datetime(digits)
    except ValueError as exc:
        raise DataFormatError(f"invalid time {digits}: {exc}") from None


def _encode_item_value(di: int, value, version: int) -> bytes:
    item = data_item(di, version=version)
    if item is None:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        raise ValueRangeError(f"DI {di:08X} is not in the table: give the value as bytes")
    return encode_value(item, value)


# === MASTER SIDE === #


def read_request(address: str, di: int, *, version: int = 2007, preamble: int = 0) -> bytes:
    """Read data (11H; 01H for ``version=1997`` with a 2-byte DI)."""
    control = Function.READ if version == 2007 else Function.READ_1997
    return encode_frame(address, control, _di_bytes(di, version), preamble=preamble)


def read_follow_up_request(address: str, di: int, seq: int, *, preamble: int = 0) -> bytes:
    """Read follow-up data (12H): DI + frame sequence number."""
    if not 0 <= seq <= 0xFF:
        raise ValueRangeError("seq is a byte")
    data = _di_bytes(di, 2007) + bytes((seq,))
    return encode_frame(address, Function.READ_FOLLOW_UP, data, preamble=preamble)


def read_address_request(*, preamble: int = 0) -> bytes:
    """Read the address of the only meter on the bus (13H to AAAAAAAAAAAA)."""
    return encode_frame(WILDCARD_ADDRESS, Function.READ_ADDRESS, b"", preamble=preamble)


def write_request(address: str, di: int, value, password, operator, *, preamble: int = 0) -> bytes:
    """Write data (14H): DI + password (4) + operator (4) + value."""
    data = (
        _di_bytes(di, 2007)
        + _hex4(password, "password", level_first=True)
        + _hex4(operator, "operator", level_first=False)
        + _encode_item_value(di, value, 2007)
    )
    return encode_frame(address, Function.WRITE, data, preamble=preamble)


def broadcast_time(when: dt.datetime, *, preamble: int = 0) -> bytes:
    """Broadcast time (08H to 999999999999), data ssmmhhDDMMYY; meters do not answer."""
    return encode_frame(
        BROADCAST_ADDRESS, Function.BROADCAST_TIME, _datetime6(when), preamble=preamble
    )


def relay_request(
    address: str,
    command: RelayCommand | int,
    password,
    operator,
    valid_until: dt.datetime,
    *,
    preamble: int = 0,
) -> bytes:
    """Relay control (1CH): password, operator, N1 command, N2 reserved, validity time."""
    if not isinstance(command, int) or command not in RelayCommand._value2member_map_:
        raise ValueRangeError(f"unknown relay command {show(command)}")
    command = int(command)
    data = (
        _hex4(password, "password", level_first=True)
        + _hex4(operator, "operator", level_first=False)
        + bytes((command, 0))
        + _datetime6(valid_until)
    )
    return encode_frame(address, Function.RELAY, data, preamble=preamble)


class ReadResult(NamedTuple):
    di: int
    value: object  # Decimal | int | str | datetime | date | time | tuple | bytes
    unit: str
    name: str = ""
    raw: bytes = b""
    has_follow_up: bool = False
    seq: int | None = None


def _raise_if_error(frame: Frame) -> None:
    if frame.is_error:
        error = frame.data[0] if frame.data else 0
        raise MeterErrorReply(
            f"meter {frame.address} error reply to {frame.function:02X}H: "
            f"{ErrorBits(error & 0x7F).name or 'no error bit'} ({error:02X}H)",
            error=error,
            control=frame.control,
            address=frame.address,
        )


def parse_read_reply(
    frame: Frame, *, address: str | None = None, di: int | None = None
) -> ReadResult:
    """Decode a read reply (91H/B1H, 92H/B2H, 1997: 81H/A1H, 82H).

    With ``address`` and ``di`` (the request's), a reply from another meter or for
    another data identifier raises ReplyMismatchError naming the field, before any value
    is decoded.  Raises MeterErrorReply for an error reply (of the meter asked),
    FrameFormatError if not a read reply, DataFormatError if the data does not match the
    DI's format.
    """
    if address is not None or di is not None:
        check_reply_to(frame, address=address, di=di)
    _raise_if_error(frame)
    fn = frame.control & _FUNCTION_MASK
    if not frame.control & REPLY or fn not in (0x11, 0x12, 0x01, 0x02):
        raise FrameFormatError(f"control {frame.control:02X}H is not a read reply")
    version = 2007 if fn & 0x10 else 1997
    size = 4 if version == 2007 else 2
    data = frame.data
    seq = None
    if fn in (0x12, 0x02):
        if len(data) < size + 1:
            raise DataFormatError("follow-up reply without sequence number")
        seq = data[-1]
        data = data[:-1]
    if len(data) < size:
        raise DataFormatError(f"read reply of {len(data)} bytes has no DI")
    di = int.from_bytes(data[:size], "little")
    raw = data[size:]
    item = (DATA_ITEMS_2007 if version == 2007 else DATA_ITEMS_1997).get(di)
    if item is None:
        return ReadResult(di, raw, "", "", raw, bool(frame.control & FOLLOW_UP), seq)
    return ReadResult(
        di,
        decode_value(item, raw),
        item.unit,
        item.name,
        raw,
        bool(frame.control & FOLLOW_UP),
        seq,
    )


def check_reply_to(
    frame: Frame,
    *,
    address: str | None = None,
    function: int | None = None,
    di: int | None = None,
) -> None:
    """Check ``frame`` is the reply of meter ``address`` to ``function`` and, for a read,
    for data identifier ``di`` (4 bytes in DL/T645-2007, 2 in -1997, opening the data);
    what is not given is not checked.  An error reply carries no identifier: it matches
    on address and function.  Raises ReplyMismatchError naming the field that differs."""
    if not frame.is_reply:
        raise ReplyMismatchError(
            f"control: {frame.control:02X}H is a request, not a reply", field="control"
        )
    if address is not None and frame.address != address:
        raise ReplyMismatchError(
            f"address: reply from meter {frame.address}, meter {address} asked", field="address"
        )
    if function is not None and frame.function != function & _FUNCTION_MASK:
        raise ReplyMismatchError(
            f"function: reply to {frame.function:02X}H, {function & _FUNCTION_MASK:02X}H asked",
            field="function",
        )
    if di is None or frame.is_error:
        return
    size = 2 if frame.version == 1997 else 4
    width = 2 * size
    got = int.from_bytes(frame.data[:size], "little") if len(frame.data) >= size else None
    if got != di:
        replied = "none" if got is None else f"{got:0{width}X}H"
        raise ReplyMismatchError(
            f"data identifier: reply for {replied}, {di:0{width}X}H asked",
            field="data identifier",
        )


def parse_address_reply(frame: Frame) -> str:
    """Address from a read-address reply (93H)."""
    _raise_if_error(frame)
    if frame.control != 0x93:
        raise FrameFormatError(f"control {frame.control:02X}H is not a read-address reply")
    if len(frame.data) != 6:
        raise DataFormatError("read-address reply must carry 6 bytes")
    address = _address_str(frame.data)
    if address is None or "A" in address:
        raise DataFormatError(f"address {frame.data.hex(' ')} is not BCD")
    return address


def check_ack(frame: Frame, function: int) -> None:
    """Check ``frame`` is the normal reply to ``function`` (e.g. 14H write, 1CH relay)."""
    _raise_if_error(frame)
    if frame.control & (REPLY | _FUNCTION_MASK) != REPLY | (function & _FUNCTION_MASK):
        raise FrameFormatError(
            f"control {frame.control:02X}H is not the reply to {function & 0x1F:02X}H"
        )


# === SLAVE SIDE === #


@dataclass(frozen=True, slots=True)
class Request:
    """A master request as a simulated meter sees it (see ``parse_request``).

    ``kind``: read, read_follow_up, read_address, write, broadcast_time, relay, read_1997,
    other.  Fields that do not apply to the kind stay at their defaults.
    """

    frame: Frame
    kind: str
    di: int | None = None
    seq: int | None = None  # read_follow_up
    params: bytes = b""  # read: bytes after the DI (load-profile block count/time)
    password: str = ""  # "PAPPPPPP" as written
    operator: str = ""  # 8 hex digits as written
    value_data: bytes = b""  # write: raw value bytes
    value: object = None  # write: decoded value when the DI is in the table
    relay_command: int | None = None
    valid_until: dt.datetime | None = None
    time: dt.datetime | None = None  # broadcast_time

    @property
    def address(self) -> str:
        return self.frame.address

    @property
    def control(self) -> int:
        return self.frame.control

    @property
    def version(self) -> int:
        return self.frame.version


def parse_request(frame: Frame) -> Request:
    """Decode a master request.  Raises FrameFormatError for a reply, DataFormatError for
    data that does not fit the function (a simulated meter answers with ``ErrorBits.OTHER``).
    """
    if frame.is_reply:
        raise FrameFormatError(f"control {frame.control:02X}H is a reply, not a request")
    fn = frame.control & _FUNCTION_MASK
    data = frame.data
    if fn == Function.READ:
        if len(data) < 4:
            raise DataFormatError("read request without DI")
        return Request(frame, "read", di=int.from_bytes(data[:4], "little"), params=data[4:])
    if fn == Function.READ_FOLLOW_UP:
        if len(data) != 5:
            raise DataFormatError("read follow-up request is DI + SEQ")
        return Request(frame, "read_follow_up", di=int.from_bytes(data[:4], "little"), seq=data[4])
    if fn == Function.READ_ADDRESS:
        return Request(frame, "read_address")
    if fn == Function.WRITE:
        if len(data) < 12:
            raise DataFormatError("write request is DI + password + operator + data")
        di = int.from_bytes(data[:4], "little")
        value_data = data[12:]
        item = data_item(di)
        value = decode_value(item, value_data) if item is not None else None
        return Request(
            frame,
            "write",
            di=di,
            password=_password_str(data[4:8]),
            operator=data[8:12][::-1].hex().upper(),
            value_data=value_data,
            value=value,
        )
    if fn == Function.BROADCAST_TIME:
        if len(data) != 6:
            raise DataFormatError("broadcast time carries ssmmhhDDMMYY")
        return Request(frame, "broadcast_time", time=_parse_datetime6(data))
    if fn == Function.RELAY:
        if len(data) != 16:
            raise DataFormatError("relay control is password + operator + N1..N8")
        return Request(
            frame,
            "relay",
            password=_password_str(data[0:4]),
            operator=data[4:8][::-1].hex().upper(),
            relay_command=data[8],
            valid_until=_parse_datetime6(data[10:16]),
        )
    if fn == Function.READ_1997:
        if len(data) < 2:
            raise DataFormatError("1997 read request without DI")
        return Request(frame, "read_1997", di=int.from_bytes(data[:2], "little"))
    return Request(frame, "other", params=data)


def build_read_reply(
    address: str,
    di: int,
    value,
    *,
    version: int = 2007,
    follow_up: bool = False,
    seq: int | None = None,
    preamble: int = 0,
) -> bytes:
    """Normal read reply: 91H (1997: 81H), B1H when ``follow_up``; with ``seq`` it is a
    follow-up reply 92H/B2H carrying the sequence number last."""
    fn = Function.READ if version == 2007 else Function.READ_1997
    data = _di_bytes(di, version) + _encode_item_value(di, value, version)
    if seq is not None:
        if version != 2007 or not 0 <= seq <= 0xFF:
            raise ValueRangeError("seq is a byte (2007 follow-up replies only)")
        fn = Function.READ_FOLLOW_UP
        data += bytes((seq,))
    control = REPLY | fn | (FOLLOW_UP if follow_up else 0)
    return encode_frame(address, control, data, preamble=preamble)


def build_error_reply(address: str, control: int, error_bits: int, *, preamble: int = 0) -> bytes:
    """Error reply to a request of ``control`` (its function is kept): C | 0xC0 + error byte."""
    if not 0 <= int(error_bits) <= 0xFF:
        raise ValueRangeError("error bits are one byte")
    return encode_frame(
        address,
        REPLY | ERROR | (control & _FUNCTION_MASK),
        bytes((int(error_bits),)),
        preamble=preamble,
    )


def build_ack(address: str, control: int, *, preamble: int = 0) -> bytes:
    """Normal reply without data (write 94H, relay 9CH, ...)."""
    return encode_frame(address, REPLY | (control & _FUNCTION_MASK), b"", preamble=preamble)


def build_address_reply(address: str, *, preamble: int = 0) -> bytes:
    """Reply to read-address (93H) carrying the meter's address."""
    return encode_frame(
        address, REPLY | Function.READ_ADDRESS, _address_bytes(address), preamble=preamble
    )
