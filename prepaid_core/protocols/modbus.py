"""Modbus-RTU for meters: register maps, request building, response decoding (G2).

Framing, CRC and PDU encoding come from pymodbus; nothing here does I/O. This module adds
what pymodbus does not know: which registers a meter model has (``register_map``), how to
coalesce them into few requests (``build_read_requests``), how raw registers become
``Decimal`` values (``decode_read_response``: type, word/byte order, scale, CT/PT), writes
(``build_write``, ``build_relay_write``), a stream splitter (``decode_frame``), the
simulated meter's side (``encode_register_values``, ``answer_request``) and typed errors
(``ModbusCodecError``).

See docs/protocols.md.
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Iterable, Mapping, MutableMapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    WriteSingleCoilRequest,
    WriteSingleCoilResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

from prepaid_core.protocols.modbus_maps import REGISTER_MAPS
from prepaid_core.protocols.modbus_registers import (
    Field,
    ModbusCodecError,
    RegisterMap,
    RegisterMapError,
    RelayControl,
    build_register_map,
)

__all__ = [
    "ExceptionCode",
    "Field",
    "ModbusCRCError",
    "ModbusCodecError",
    "ModbusExceptionResponse",
    "ModbusFrameError",
    "ModbusIncompleteError",
    "ReadRequest",
    "RegisterMap",
    "RegisterMapError",
    "RelayControl",
    "WriteRequest",
    "answer_request",
    "build_read_requests",
    "build_relay_write",
    "build_write",
    "check_write_response",
    "decode_frame",
    "decode_read_response",
    "decode_registers",
    "encode_register_values",
    "register_map",
]

# === ERRORS === #


class ModbusCRCError(ModbusCodecError):
    """CRC mismatch."""


class ModbusFrameError(ModbusCodecError):
    """Not the frame expected (unit, function, byte count, trailing bytes)."""


class ModbusIncompleteError(ModbusCodecError):
    """A one-shot decoder was given a frame cut short."""


class ExceptionCode(enum.IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_ADDRESS = 0x02
    ILLEGAL_VALUE = 0x03
    DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    DEVICE_BUSY = 0x06
    NEGATIVE_ACKNOWLEDGE = 0x07
    MEMORY_PARITY_ERROR = 0x08
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_NO_RESPONSE = 0x0B


class ModbusExceptionResponse(ModbusCodecError):
    """The slave answered with an exception response."""

    def __init__(self, function: int, exception_code: int, unit_id: int = 0):
        try:
            label = ExceptionCode(exception_code).name
        except ValueError:
            label = f"code {exception_code:#04x}"
        super().__init__(f"unit {unit_id}: exception {label} to function {function:#04x}")
        self.function = function
        self.exception_code = exception_code
        self.unit_id = unit_id


# === REGISTER MAPS === #


def register_map(model: str | Mapping | RegisterMap) -> RegisterMap:
    """The register map ``model`` stands for: a shipped map of ``modbus_maps`` by name, a
    map in its plain form (a map kept as data, see ``build_register_map``) or a map."""
    if isinstance(model, RegisterMap):
        return model
    if isinstance(model, Mapping):
        return build_register_map(model)
    try:
        return REGISTER_MAPS[model]
    except (KeyError, TypeError):
        raise ModbusCodecError(f"no register map for model {model!r}") from None


# === RAW VALUE CONVERSION === #

_ONE = Decimal(1)


def _registers_to_bytes(field: Field, registers) -> bytes:
    words = list(registers)
    if field.word_order == "little":
        words.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    if field.byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def _bytes_to_registers(field: Field, raw: bytes) -> list[int]:
    if field.byte_order == "little":
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    if field.word_order == "little":
        words.reverse()
    return words


def _raw_value(field: Field, registers) -> Decimal:
    raw = _registers_to_bytes(field, registers)
    t = field.type
    if t == "float32":
        f = struct.unpack(">f", raw)[0]
        if f != f or f in (float("inf"), float("-inf")):
            raise ModbusFrameError(f"{field.name}: float32 is not a number")
        return Decimal(f"{f:.7g}")
    if t.startswith("bcd"):
        digits = raw.hex()
        if not digits.isdigit():
            raise ModbusFrameError(f"{field.name}: {digits} is not BCD")
        return Decimal(int(digits))
    return Decimal(int.from_bytes(raw, "big", signed=t.startswith("int")))


def decode_registers(field: Field, registers) -> Decimal:
    """The engineering value (scaled, before CT/PT) of ``field`` from its raw registers:
    what a meter reads back from a write (simulators)."""
    return _raw_value(field, [int(w) & 0xFFFF for w in registers]) * field.scale


_MAX_FLOAT32 = Decimal("3.4e38")  # about the largest float32
_MAX_REGISTERS = Decimal(2**32)  # beyond every integer type of one or two registers


def _to_registers(field: Field, value, ct=1, pt=1) -> list[int]:
    """Engineering value -> raw registers (inverse of scale and multiplier)."""
    try:
        d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        raw = d / field.scale / field.multiplier(ct, pt)
    except (InvalidOperation, TypeError, ValueError, ArithmeticError) as exc:
        raise ModbusCodecError(f"{field.name}: bad value {str(value)[:40]!r}") from exc
    t = field.type
    if not raw.is_finite() or abs(raw) > _MAX_FLOAT32:
        raise ModbusCodecError(f"{field.name}: {str(value)[:40]} does not fit {t}")
    if t == "float32":
        return _bytes_to_registers(field, struct.pack(">f", float(raw)))
    if abs(raw) > _MAX_REGISTERS:  # before quantize, which cannot round past 28 digits
        raise ModbusCodecError(f"{field.name}: {str(value)[:40]} does not fit {t}")
    n = int(raw.quantize(_ONE, rounding=ROUND_HALF_UP))
    if t.startswith("bcd"):
        width = 4 * field.count
        if not 0 <= n < 10**width:
            raise ModbusCodecError(f"{field.name}: {value} does not fit {t}")
        return _bytes_to_registers(field, bytes.fromhex(f"{n:0{width}d}"))
    bits = 16 * field.count
    signed = t.startswith("int")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= n <= hi:
        raise ModbusCodecError(f"{field.name}: {value} does not fit {t}")
    return _bytes_to_registers(field, n.to_bytes(2 * field.count, "big", signed=signed))


def encode_register_values(
    regmap: RegisterMap, values: Mapping[str, object], *, ct=1, pt=1
) -> dict[int, int | bool]:
    """Engineering values by field name -> raw register values by address (simulators).

    Coils come out as ``bool``; keep them in a separate mapping for ``answer_request``.
    """
    out: dict[int, int | bool] = {}
    for name, value in values.items():
        field = regmap[name]
        if field.type == "coil":
            out[field.address] = bool(value)
            continue
        for i, word in enumerate(_to_registers(field, value, ct, pt)):
            out[field.address + i] = word
    return out


# === MASTER SIDE === #

_CLIENT_DECODER = DecodePDU(is_server=False)
_SERVER_DECODER = DecodePDU(is_server=True)
_FRAMER = FramerRTU(_CLIENT_DECODER)
_READ_REQUESTS = {
    3: ReadHoldingRegistersRequest,
    4: ReadInputRegistersRequest,
    1: ReadCoilsRequest,
}


def _crc_ok(frame: bytes) -> bool:
    return FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))


class ReadRequest(bytes):
    """A read request frame (``bytes``) that remembers what it asked for."""

    unit_id: int
    function: int
    address: int
    count: int
    fields: tuple[Field, ...]

    @property
    def response_length(self) -> int:
        """Length of the normal response frame (an exception response is 5 bytes)."""
        if self.function == 1:
            return 5 + (self.count + 7) // 8
        return 5 + 2 * self.count


class WriteRequest(bytes):
    """A write request frame (``bytes``); a normal response echoes 8 bytes."""

    unit_id: int
    function: int
    address: int
    field: Field

    response_length = 8


def _check_unit(unit_id: int) -> None:
    if not isinstance(unit_id, int) or not 0 <= unit_id <= 247:
        raise ModbusCodecError(f"unit id {unit_id!r} is not 0..247")


def build_read_requests(
    unit_id: int, regmap: RegisterMap, names: Iterable[str] | None = None, *, max_gap: int = 0
) -> list[ReadRequest]:
    """Read requests for ``names`` (all fields if None), contiguous registers coalesced.

    Fields of the same table whose registers follow each other (or leave at most
    ``max_gap`` unused registers between them) share one request, up to
    ``regmap.max_registers`` registers.
    """
    _check_unit(unit_id)
    if unit_id == 0:
        raise ModbusCodecError("unit 0 is broadcast: nobody answers a broadcast read")
    fields = regmap.fields if names is None else [regmap[n] for n in dict.fromkeys(names)]
    groups: list[list[Field]] = []
    for field in sorted(fields, key=lambda f: (f.function, f.address)):
        limit = 2000 if field.table == "coil" else regmap.max_registers
        if groups:
            group = groups[-1]
            start = group[0].address
            end = max(f.address + f.count for f in group)
            if (
                field.function == group[0].function
                and field.address <= end + max_gap
                and max(end, field.address + field.count) - start <= limit
            ):
                group.append(field)
                continue
        groups.append([field])
    requests = []
    for group in groups:
        start = group[0].address
        count = max(f.address + f.count for f in group) - start
        function = group[0].function
        pdu = _READ_REQUESTS[function](address=start, count=count, dev_id=unit_id)
        req = ReadRequest(_FRAMER.buildFrame(pdu))
        req.unit_id, req.function, req.address, req.count = unit_id, function, start, count
        req.fields = tuple(group)
        requests.append(req)
    return requests


def _response_pdu(data: bytes, unit_id: int, function: int) -> ModbusPDU:
    """Check one complete response frame and decode its PDU with pymodbus."""
    data = bytes(data)
    if len(data) < 5:
        raise ModbusIncompleteError(f"{len(data)} bytes: a response is at least 5")
    if data[0] != unit_id:
        raise ModbusFrameError(f"response from unit {data[0]}, asked unit {unit_id}")
    if data[1] == function | 0x80:
        if len(data) != 5:
            raise ModbusFrameError("exception response must be 5 bytes")
        if not _crc_ok(data):
            raise ModbusCRCError("CRC mismatch in exception response")
        raise ModbusExceptionResponse(function, data[2], unit_id)
    if data[1] != function:
        raise ModbusFrameError(f"function {data[1]:#04x} in response, asked {function:#04x}")
    pdu_class = _CLIENT_DECODER.lookupPduClass(data)
    if pdu_class is None:  # pragma: no cover - functions we send are all known
        raise ModbusFrameError(f"unknown function {function:#04x}")
    size = pdu_class.calculateRtuFrameSize(data)
    if len(data) < size:
        raise ModbusIncompleteError(f"{len(data)} bytes, frame is {size}")
    if len(data) > size:
        raise ModbusFrameError(f"{len(data) - size} bytes after the frame")
    if not _crc_ok(data):
        raise ModbusCRCError("CRC mismatch")
    pdu = _CLIENT_DECODER.decode(data[1:-2])
    if pdu is None:
        raise ModbusFrameError("pymodbus could not decode the PDU")
    return pdu


def decode_read_response(data: bytes, request: ReadRequest, *, ct=1, pt=1) -> dict[str, Decimal]:
    """Values of ``request.fields`` from its response frame (one complete frame).

    Raises ModbusExceptionResponse, ModbusCRCError, ModbusIncompleteError, ModbusFrameError.
    """
    pdu = _response_pdu(data, request.unit_id, request.function)
    if request.function == 1:
        if data[2] != (request.count + 7) // 8:
            raise ModbusFrameError(f"byte count {data[2]} for {request.count} coils")
        bits = pdu.bits
        return {
            f.name: Decimal(int(bool(bits[f.address - request.address]))) for f in request.fields
        }
    registers = pdu.registers
    if len(registers) != request.count or data[2] != 2 * request.count:
        raise ModbusFrameError(f"byte count {data[2]} for {request.count} registers")
    out = {}
    for f in request.fields:
        offset = f.address - request.address
        value = _raw_value(f, registers[offset : offset + f.count]) * f.scale
        if f.apply:
            value *= f.multiplier(ct, pt)
        out[f.name] = value
    return out


def build_write(unit_id: int, regmap: RegisterMap, name: str, value, *, ct=1, pt=1) -> WriteRequest:
    """Write one writable field: 06H (16-bit), 10H (32-bit) or 05H (coil)."""
    _check_unit(unit_id)
    field = regmap[name]
    if not field.writable:
        raise ModbusCodecError(f"{regmap.model}: field {name!r} is read-only")
    if field.type == "coil":
        pdu: ModbusPDU = WriteSingleCoilRequest(
            address=field.address, bits=[bool(value)], dev_id=unit_id
        )
    else:
        registers = _to_registers(field, value, ct, pt)
        if field.count == 1:
            pdu = WriteSingleRegisterRequest(
                address=field.address, registers=registers, dev_id=unit_id
            )
        else:
            pdu = WriteMultipleRegistersRequest(
                address=field.address, registers=registers, dev_id=unit_id
            )
    req = WriteRequest(_FRAMER.buildFrame(pdu))
    req.unit_id, req.function, req.address, req.field = (
        unit_id,
        pdu.function_code,
        field.address,
        field,
    )
    return req


def build_relay_write(unit_id: int, regmap: RegisterMap, close: bool) -> WriteRequest:
    """Trip (``close=False``) or close (``close=True``) the relay of a meter of ``regmap``."""
    if regmap.relay is None:
        raise ModbusCodecError(f"{regmap.model}: no relay control in the register map")
    relay = regmap.relay
    return build_write(
        unit_id, regmap, relay.field, relay.close_value if close else relay.trip_value
    )


def check_write_response(data: bytes, request: WriteRequest) -> None:
    """Check the response to a write (echo of address/value for 05H/06H, count for 10H)."""
    if request.unit_id == 0:
        raise ModbusCodecError("broadcast writes get no response")
    _response_pdu(data, request.unit_id, request.function)
    if bytes(data)[2:6] != bytes(request)[2:6]:
        raise ModbusFrameError("write response does not echo the request")


def decode_frame(buf: bytes, *, server: bool) -> tuple[int, bytes | None]:
    """Split one RTU frame off a byte stream: ``(used, frame | None)``.

    ``server=True`` decodes requests (a simulated meter), False responses.  Bytes that do
    not start a frame with a valid CRC are skipped one at a time and counted in ``used``;
    an incomplete frame returns ``(used, None)``, unless a complete frame follows it
    inside the bytes it claims (a corrupted byte count must not swallow the next frame).
    Never raises on bad input.

    Linear in ``len(buf)``: frame sizes come from tables built once from pymodbus's PDU
    classes, every CRC is checked in O(1) from running CRC registers (``_CrcScan``), and
    the look for a complete frame after an incomplete one is done once per call.
    """
    buf = bytes(buf)
    rules = _SERVER_RULES if server else _CLIENT_RULES
    decoder = _SERVER_DECODER if server else _CLIENT_DECODER
    crc = _CrcScan(buf)
    n = len(buf)
    pos = 0
    later = -1  # a complete frame found after an incomplete start (-1: not looked yet)
    while n - pos >= 4:
        rule = rules[buf[pos + 1]]
        if rule is None:  # not a function code: the common case in garbage, inlined
            pos += 1
            continue
        if rule[0] == _FIXED:
            size = rule[1]
        else:
            size = _size_at(rules, decoder, buf, pos)
        if size < 0 or size > _MAX_RTU:
            pos += 1
            continue
        if size == 0 or size > n - pos:
            if later <= pos:
                later = _complete_frame_after(rules, decoder, crc, pos + 1)
            if later > pos:
                pos += 1
                continue
            return pos, None
        if crc.frame_ok(pos, size):
            return pos + size, buf[pos : pos + size]
        pos += 1
    return pos, None


_MAX_RTU = 256
_FIXED, _BYTE_COUNT, _ASK_PYMODBUS = range(3)


def _size_rules(decoder: DecodePDU) -> tuple:
    """Per function code: how pymodbus sizes its RTU frame, read from its PDU classes."""
    rules = []
    for code in range(256):
        if code & 0x80:
            rules.append((_FIXED, ExceptionResponse.rtu_frame_size))
            continue
        pdu = decoder.pdu_table.get(code, (None, None))[decoder.pdu_inx]
        if pdu is None:
            rules.append(None)
        elif code in decoder.pdu_sub_table:  # sub-function codes: pymodbus decides
            rules.append((_ASK_PYMODBUS, 0))
        elif pdu.rtu_frame_size:
            rules.append((_FIXED, pdu.rtu_frame_size))
        elif pdu.rtu_byte_count_pos:
            rules.append((_BYTE_COUNT, pdu.rtu_byte_count_pos))
        else:
            rules.append(None)  # pymodbus cannot size it either
    return tuple(rules)


_SERVER_RULES = _size_rules(_SERVER_DECODER)
_CLIENT_RULES = _size_rules(_CLIENT_DECODER)


def _size_at(rules: tuple, decoder: DecodePDU, buf: bytes, pos: int) -> int:
    """Frame size if a frame starts at ``pos``: -1 not a frame, 0 size not known yet."""
    rule = rules[buf[pos + 1]]
    if rule is None:
        return -1
    kind, value = rule
    if kind == _FIXED:
        return value
    if kind == _BYTE_COUNT:
        if len(buf) - pos < value + 1:
            return 0
        return buf[pos + value] + value + 3
    view = buf[pos : pos + 16]  # sub-function codes sit in the first bytes
    try:
        pdu_class = decoder.lookupPduClass(view)
        if pdu_class is None:
            return -1
        return pdu_class.calculateRtuFrameSize(view)
    except Exception:  # pymodbus raises what it likes on odd bytes: not a frame
        return -1


def _complete_frame_after(rules: tuple, decoder: DecodePDU, crc: _CrcScan, pos: int) -> int:
    """Start of the first complete frame with a valid CRC at or after ``pos``, or -1."""
    buf = crc.buf
    n = len(buf)
    for p in range(pos, n - 3):
        size = _size_at(rules, decoder, buf, p)
        if 4 <= size <= n - p and crc.frame_ok(p, size):
            return p
    return -1


def _crc_step(register: int) -> int:
    """The CRC register after one zero byte (the linear part of a CRC step)."""
    return (register >> 8) ^ _CRC_TABLE[register & 0xFF]


_CRC_TABLE = FramerRTU.crc16_table


@functools.cache
def _crc_shift(length: int) -> tuple[list[int], list[int]]:
    """Tables of the linear map "run ``length`` zero bytes through the CRC register":
    ``shift(x) = low[x & 0xFF] ^ high[x >> 8]``."""
    images = [1 << bit for bit in range(16)]
    for _ in range(length):
        images = [_crc_step(image) for image in images]
    low, high = [0] * 256, [0] * 256
    for value in range(1, 256):
        bit = (value & -value).bit_length() - 1
        low[value] = low[value & (value - 1)] ^ images[bit]
        high[value] = high[value & (value - 1)] ^ images[bit + 8]
    return low, high


class _CrcScan:
    """CRC-16/MODBUS of any slice of ``buf`` in O(1), from running CRC registers.

    ``P[k]`` is the register after ``buf[:k]`` from zero. The CRC is linear, so the
    register after ``buf[p:q]`` from 0xFFFF is ``shift(q - p)(0xFFFF ^ P[p]) ^ P[q]``;
    a frame (data then its CRC, low byte first) leaves the register at zero. Registers
    are computed on demand, once per byte."""

    __slots__ = ("buf", "registers")

    def __init__(self, buf: bytes):
        self.buf = buf
        self.registers = [0]

    def frame_ok(self, start: int, size: int) -> bool:
        registers = self.registers
        if len(registers) <= start + size:
            register, table, buf = registers[-1], _CRC_TABLE, self.buf
            for byte in buf[len(registers) - 1 : start + size]:
                register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
                registers.append(register)
        low, high = _crc_shift(size)
        shifted = 0xFFFF ^ registers[start]
        return low[shifted & 0xFF] ^ high[shifted >> 8] == registers[start + size]


# === SLAVE SIDE === #


def _exception(unit_id: int, function: int, code: int) -> bytes:
    return _FRAMER.buildFrame(ExceptionResponse(function, code, device_id=unit_id))


def answer_request(
    frame_bytes: bytes,
    register_values: Mapping[int, int],
    *,
    unit_id: int | None = None,
    coils: Mapping[int, bool] | None = None,
) -> bytes:
    """The response a meter with ``register_values`` (address -> 16-bit value, used for
    both holding and input registers) and ``coils`` sends to one request frame.

    Returns ``b""`` when a real meter stays silent: the request is for another unit
    (``unit_id`` given) or a broadcast (unit 0; writes are still applied).  Writes update
    ``register_values`` / ``coils`` in place when they are mutable.  Unknown addresses get
    exception 02H, unknown functions 01H, bad values 03H.  A bad CRC or a truncated frame
    raises ModbusCRCError / ModbusIncompleteError (a meter stays silent: catch them).
    """
    data = bytes(frame_bytes)
    if len(data) < 4:
        raise ModbusIncompleteError("a request is at least 4 bytes")
    if not _crc_ok(data):
        raise ModbusCRCError("CRC mismatch in request")
    unit, function = data[0], data[1]
    if unit_id is not None and unit not in (unit_id, 0):
        return b""
    coils = {} if coils is None else coils
    try:
        pdu = _SERVER_DECODER.decode(data[1:-2])
    except Exception:  # pymodbus may raise several types on odd PDUs
        pdu = None
    if function not in (1, 3, 4, 5, 6, 16):
        return b"" if unit == 0 else _exception(unit, function & 0x7F, 0x01)
    if pdu is None:  # a known function with a count or length pymodbus refuses
        return b"" if unit == 0 else _exception(unit, function, 0x03)
    if function in (1, 3, 4):
        answer = _answer_read(pdu, function, unit, register_values, coils)
        if isinstance(answer, int):
            return _exception(unit, function, answer)
    else:
        answer = _apply_write(pdu, data, unit, register_values, coils)
        if isinstance(answer, int):
            return b"" if unit == 0 else _exception(unit, function, answer)
    return b"" if unit == 0 else _FRAMER.buildFrame(answer)


def _answer_read(pdu, function: int, unit: int, register_values, coils) -> ModbusPDU | int:
    """The response to a read (01H, 03H, 04H), or the exception code refusing it."""
    addresses = range(pdu.address, pdu.address + pdu.count)
    if function == 1:
        if not 1 <= pdu.count <= 2000 or any(a not in coils for a in addresses):
            return 0x02
        return ReadCoilsResponse(bits=[bool(coils[a]) for a in addresses], dev_id=unit)
    if not 1 <= pdu.count <= 125 or any(a not in register_values for a in addresses):
        return 0x02
    regs = [int(register_values[a]) & 0xFFFF for a in addresses]
    cls = ReadHoldingRegistersResponse if function == 3 else ReadInputRegistersResponse
    return cls(registers=regs, dev_id=unit)


def _apply_write(pdu, data: bytes, unit: int, register_values, coils) -> ModbusPDU | int:
    """A write (05H, 06H, 10H) applied to the mutable maps and its response, or the
    exception code refusing it (nothing applied)."""
    function = data[1]
    if function == 5:
        if pdu.address not in coils:
            return 0x02
        if data[4:6] not in (b"\xff\x00", b"\x00\x00"):
            return 0x03
        if isinstance(coils, MutableMapping):
            coils[pdu.address] = bool(pdu.bits[0])
        return WriteSingleCoilResponse(address=pdu.address, bits=pdu.bits, dev_id=unit)
    if function == 6:
        if pdu.address not in register_values:
            return 0x02
        if isinstance(register_values, MutableMapping):
            register_values[pdu.address] = pdu.registers[0]
        return WriteSingleRegisterResponse(
            address=pdu.address, registers=pdu.registers, dev_id=unit
        )
    addresses = range(pdu.address, pdu.address + pdu.count)
    if not 1 <= pdu.count <= 123 or len(pdu.registers) != pdu.count or data[6] != 2 * pdu.count:
        return 0x03
    if any(a not in register_values for a in addresses):
        return 0x02
    if isinstance(register_values, MutableMapping):
        for a, v in zip(addresses, pdu.registers, strict=True):
            register_values[a] = v
    return WriteMultipleRegistersResponse(address=pdu.address, count=pdu.count, dev_id=unit)
