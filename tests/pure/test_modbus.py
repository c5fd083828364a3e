"""G2 Modbus-RTU codec on pymodbus, X1 bad input: request vectors with CRC, coalescing,
response decoding with scales, word/byte orders, CT/PT, exceptions, slave answers, fuzz."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prepaid_core.errors import PrepaidError
from prepaid_core.protocols.modbus import (
    ExceptionCode,
    Field,
    ModbusCodecError,
    ModbusCRCError,
    ModbusExceptionResponse,
    ModbusFrameError,
    ModbusIncompleteError,
    ReadRequest,
    RegisterMap,
    RelayControl,
    answer_request,
    build_read_requests,
    build_relay_write,
    build_write,
    check_write_response,
    decode_frame,
    decode_read_response,
    encode_register_values,
    register_map,
)
from prepaid_core.protocols.modbus_maps import REGISTER_MAPS

H = bytes.fromhex
ACREL = register_map("acrel_prepaid_1p")
SDM = register_map("eastron_sdm120")


def crc16(data: bytes) -> bytes:
    """Reference Modbus CRC (bitwise, independent of pymodbus), low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def with_crc(hex_body: str) -> bytes:
    body = H(hex_body)
    return body + crc16(body)


def one_field_map(*fields, **kw):
    return RegisterMap("test", tuple(fields), **kw)


# === REQUEST VECTORS === #


@pytest.mark.parametrize(
    "unit, regmap, names, expected",
    [
        (1, ACREL, ["total_energy"], "01 03 00 00 00 02 C4 0B"),
        (
            1,
            one_field_map(Field("a", 0, "uint32"), Field("b", 2, "uint32"), Field("c", 4, "int16")),
            None,
            "01 03 00 00 00 05 85 C9",
        ),
        (1, SDM, ["voltage"], "01 04 00 00 00 02 71 CB"),
        # the Modbus specification's example: unit 11H, registers 006BH..006DH
        (
            0x11,
            one_field_map(Field("x", 0x6B, "uint16"), Field("y", 0x6C, "uint32")),
            None,
            "11 03 00 6B 00 03 76 87",
        ),
    ],
)
def test_read_request_vectors(unit, regmap, names, expected):
    [request] = build_read_requests(unit, regmap, names)
    assert request == H(expected)
    assert request[-2:] == crc16(request[:-2])
    assert isinstance(request, bytes) and isinstance(request, ReadRequest)


def test_write_single_register_vector():
    regmap = one_field_map(Field("setpoint", 1, "uint16", writable=True))
    request = build_write(1, regmap, "setpoint", 3)
    assert request == H("01 06 00 01 00 03 98 0B")


def test_write_32_bit_uses_function_16():
    request = build_write(1, ACREL, "alarm_amount_1", Decimal("20.00"))
    assert request == with_crc("01 10 00 25 00 02 04 00 00 07 D0")


def test_relay_write():
    trip = build_relay_write(7, ACREL, close=False)
    close = build_relay_write(7, ACREL, close=True)
    assert trip == with_crc("07 06 00 31 00 55")
    assert close == with_crc("07 06 00 31 00 AA")


def test_coil_write():
    request = build_write(1, ACREL, "relay_coil", True)
    assert request == with_crc("01 05 00 00 FF 00")


def test_read_only_field_refuses_write():
    with pytest.raises(ModbusCodecError):
        build_write(1, ACREL, "total_energy", 1)
    with pytest.raises(ModbusCodecError):
        build_relay_write(1, SDM, close=True)


# === COALESCING === #


def test_coalescing_contiguous_only():
    requests = build_read_requests(1, ACREL, ["voltage", "current", "total_energy", "frequency"])
    assert [(r.function, r.address, r.count) for r in requests] == [
        (3, 0, 2),
        (3, 10, 2),
        (3, 14, 1),
    ]
    assert [f.name for f in requests[1].fields] == ["voltage", "current"]


def test_coalescing_with_gap():
    requests = build_read_requests(
        1, ACREL, ["voltage", "current", "total_energy", "frequency"], max_gap=8
    )
    assert [(r.address, r.count) for r in requests] == [(0, 15)]


def test_coalescing_respects_max_registers_and_tables():
    regmap = one_field_map(
        *(Field(f"r{i}", i * 2, "uint32") for i in range(10)),
        Field("in", 0, "uint16", table="input"),
        Field("coil", 3, "coil", table="coil"),
        max_registers=8,
    )
    requests = build_read_requests(2, regmap)
    assert [(r.function, r.address, r.count) for r in requests] == [
        (1, 3, 1),
        (3, 0, 8),
        (3, 8, 8),
        (3, 16, 4),
        (4, 0, 1),
    ]
    assert requests[0].response_length == 6
    assert requests[1].response_length == 21


def test_whole_maps_build():
    for regmap in REGISTER_MAPS.values():
        requests = build_read_requests(1, regmap)
        names = [f.name for r in requests for f in r.fields]
        assert sorted(names) == sorted(regmap.names)
        for r in requests:
            assert r[-2:] == crc16(r[:-2])


def test_unknown_field_and_bad_unit():
    with pytest.raises(ModbusCodecError):
        build_read_requests(1, ACREL, ["nope"])
    with pytest.raises(ModbusCodecError):
        build_read_requests(0, ACREL)
    with pytest.raises(ModbusCodecError):
        build_read_requests(248, ACREL)


# === RESPONSE DECODING === #


def test_decode_total_energy():
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    response = with_crc("01 03 04 00 01 E2 40")  # 0x0001E240 = 123456 -> 1234.56 kWh
    assert decode_read_response(response, request) == {"total_energy": Decimal("1234.56")}


@pytest.mark.parametrize(
    "field, registers, value",
    [
        (Field("v", 0, "uint16", Decimal("0.1"), "V"), "08 FD", Decimal("230.1")),
        (Field("i", 0, "uint16", Decimal("0.01"), "A"), "02 0D", Decimal("5.25")),
        (Field("p", 0, "int16", Decimal("0.001"), "kW"), "FB 50", Decimal("-1.200")),
        (Field("pf", 0, "int16", Decimal("0.001")), "03 B6", Decimal("0.950")),
        (Field("e", 0, "uint32", Decimal("0.01")), "00 01 E2 40", Decimal("1234.56")),
        (
            Field("e", 0, "uint32", Decimal("0.01"), word_order="little"),
            "E2 40 00 01",
            Decimal("1234.56"),
        ),
        (
            Field("e", 0, "uint32", Decimal("0.01"), word_order="little", byte_order="little"),
            "40 E2 01 00",
            Decimal("1234.56"),
        ),
        (Field("b", 0, "int32", Decimal("0.01")), "FF FF FF 9C", Decimal("-1.00")),
        (Field("f", 0, "float32"), "43 66 00 00", Decimal("230")),
        (Field("f", 0, "float32", Decimal("0.001")), "C4 7A 00 00", Decimal("-1.000")),
    ],
)
def test_decode_types_and_scales(field, registers, value):
    regmap = one_field_map(field)
    [request] = build_read_requests(1, regmap)
    raw = H(registers)
    response = bytes((1, 3, len(raw))) + raw
    response += crc16(response)
    result = decode_read_response(response, request)[field.name]
    assert result == value
    assert isinstance(result, Decimal)
    # and back: the simulator helper gives the same registers
    words = encode_register_values(regmap, {field.name: value})
    assert b"".join(words[a].to_bytes(2, "big") for a in sorted(words)) == raw


def test_ct_pt_multipliers():
    names = ["total_energy", "voltage", "current", "active_power", "power_factor"]
    requests = build_read_requests(1, ACREL, names)
    values = {
        "total_energy": Decimal("10.00"),
        "voltage": Decimal("100.0"),
        "current": Decimal("5.00"),
        "active_power": Decimal("0.500"),
        "power_factor": Decimal("0.900"),
        "sharp_energy": 0,
        "peak_energy": 0,
        "flat_energy": 0,
        "valley_energy": 0,
    }
    registers = encode_register_values(ACREL, values)
    out = {}
    for request in requests:
        out.update(decode_read_response(answer_request(request, registers), request, ct=50, pt=100))
    assert out == {
        "total_energy": Decimal("50000.00"),  # x CT x PT
        "voltage": Decimal("10000.0"),  # x PT
        "current": Decimal("250.00"),  # x CT
        "active_power": Decimal("2500.000"),  # x CT x PT
        "power_factor": Decimal("0.900"),  # unchanged
    }
    # primary-side values encode back to the same registers
    secondary = encode_register_values(ACREL, {k: values[k] for k in names})
    assert encode_register_values(ACREL, out, ct=50, pt=100) == secondary


@pytest.mark.parametrize(
    "response, code",
    [
        ("01 83 02 C0 F1", ExceptionCode.ILLEGAL_ADDRESS),  # classic vector
        (with_crc("01 83 01").hex(), ExceptionCode.ILLEGAL_FUNCTION),
        (with_crc("01 83 04").hex(), ExceptionCode.DEVICE_FAILURE),
        (with_crc("01 83 0B").hex(), ExceptionCode.GATEWAY_NO_RESPONSE),
    ],
)
def test_exception_responses(response, code):
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    with pytest.raises(ModbusExceptionResponse) as info:
        decode_read_response(H(response), request)
    assert info.value.exception_code == code
    assert info.value.function == 3
    assert isinstance(info.value, ModbusCodecError)


def test_exception_response_with_bad_crc():
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    with pytest.raises(ModbusCRCError):
        decode_read_response(H("01 83 02 C0 F2"), request)


@pytest.mark.parametrize(
    "response, error",
    [
        ("01 03 04 00 01 E2 40 00 00", ModbusCRCError),
        (with_crc("02 03 04 00 01 E2 40").hex(), ModbusFrameError),  # other unit
        (with_crc("01 04 04 00 01 E2 40").hex(), ModbusFrameError),  # other function
        (with_crc("01 03 02 00 01").hex(), ModbusFrameError),  # wrong byte count
        (with_crc("01 03 04 00 01 E2 40").hex() + "00", ModbusFrameError),  # trailing byte
        ("01 03 04 00 01 E2", ModbusIncompleteError),
        ("01 03", ModbusIncompleteError),
        ("", ModbusIncompleteError),
    ],
)
def test_bad_responses(response, error):
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    with pytest.raises(error):
        decode_read_response(H(response), request)


def test_bit_flips_in_response_are_crc_errors():
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    good = with_crc("01 03 04 00 01 E2 40")
    for position in range(3, len(good)):
        for bit in range(8):
            flipped = bytearray(good)
            flipped[position] ^= 1 << bit
            with pytest.raises(ModbusCRCError):
                decode_read_response(bytes(flipped), request)


def test_check_write_response():
    request = build_relay_write(1, ACREL, close=False)
    check_write_response(bytes(request), request)  # 06H response echoes the request
    with pytest.raises(ModbusExceptionResponse):
        check_write_response(with_crc("01 86 02"), request)
    with pytest.raises(ModbusFrameError):
        check_write_response(with_crc("01 06 00 31 00 AA"), request)


# === SLAVE SIDE === #


def test_answer_read_and_write():
    registers = encode_register_values(
        ACREL, {"remaining_balance": Decimal("-3.50"), "relay_state": 0, "relay_control": 0}
    )
    coils = {0: False}
    [request] = build_read_requests(5, ACREL, ["remaining_balance"])
    assert answer_request(request, registers) == with_crc("05 03 04 FF FF FE A2")
    assert decode_read_response(answer_request(request, registers), request) == {
        "remaining_balance": Decimal("-3.50")
    }
    trip = build_relay_write(5, ACREL, close=False)
    response = answer_request(trip, registers, unit_id=5)
    check_write_response(response, trip)
    assert registers[0x31] == 0x55
    coil = build_write(5, ACREL, "relay_coil", True)
    check_write_response(answer_request(coil, registers, coils=coils), coil)
    assert coils[0] is True
    [read_coil] = build_read_requests(5, ACREL, ["relay_coil"])
    assert decode_read_response(answer_request(read_coil, registers, coils=coils), read_coil) == {
        "relay_coil": Decimal(1)
    }
    alarm = build_write(5, ACREL, "alarm_amount_1", Decimal("12.34"))
    registers.update({0x25: 0, 0x26: 0})
    check_write_response(answer_request(alarm, registers), alarm)
    assert (registers[0x25], registers[0x26]) == (0, 1234)


def test_answer_exceptions_and_silence():
    registers = {0: 1}
    [request] = build_read_requests(1, ACREL, ["total_energy"])  # needs 0 and 1
    assert answer_request(request, registers) == H("01 83 02 C0 F1")
    assert answer_request(request, registers, unit_id=2) == b""
    assert answer_request(with_crc("01 2B 0E 01 00"), registers) == with_crc("01 AB 01")
    assert answer_request(with_crc("01 03 00 00 00 00"), registers) == with_crc("01 83 03")
    broadcast = build_write(0, one_field_map(Field("x", 0, writable=True)), "x", 7)
    assert answer_request(broadcast, registers, unit_id=1) == b""
    assert registers[0] == 7
    with pytest.raises(ModbusCRCError):
        answer_request(bytes(request)[:-1] + b"\x00", registers)
    with pytest.raises(ModbusIncompleteError):
        answer_request(b"\x01\x03", registers)


# === STREAM SPLITTING === #


def test_decode_frame_stream():
    [request] = build_read_requests(1, ACREL, ["total_energy"])
    response = with_crc("01 03 04 00 01 E2 40")
    assert decode_frame(request, server=True) == (8, bytes(request))
    assert decode_frame(response, server=False) == (9, response)
    assert decode_frame(response[:5], server=False) == (0, None)
    used, frame = decode_frame(b"\x00\xff" + response, server=False)
    assert (used, frame) == (11, response)
    bad = bytearray(response)
    bad[4] ^= 1
    used, frame = decode_frame(bytes(bad) + response, server=False)
    assert frame == response and used == 2 * len(response)


def test_decode_frame_byte_by_byte():
    [request] = build_read_requests(3, ACREL, ["voltage", "current"])
    buf = b""
    got = []
    for b in b"\x00" + request + request:
        buf += bytes((b,))
        used, frame = decode_frame(buf, server=True)
        buf = buf[used:]
        if frame:
            got.append(frame)
    assert got == [bytes(request), bytes(request)]


def test_errors_are_value_errors():
    for cls in (ModbusCRCError, ModbusFrameError, ModbusIncompleteError, ModbusExceptionResponse):
        assert issubclass(cls, ModbusCodecError)
        assert issubclass(cls, PrepaidError)
        assert issubclass(cls, ValueError)


def test_field_validation():
    for bad in (
        {"type": "uint64"},
        {"table": "eeprom"},
        {"type": "coil"},
        {"apply": "ctx"},
        {"word_order": "middle"},
    ):
        with pytest.raises(ValueError):
            Field("x", 0, **bad)
    with pytest.raises(ValueError):
        RegisterMap("dup", (Field("x", 0), Field("x", 1)))
    with pytest.raises(ValueError):
        RegisterMap("relay", (Field("x", 0),), relay=RelayControl("y", 1, 0))
    with pytest.raises(ModbusCodecError):
        register_map("no-such-model")
    with pytest.raises(ModbusCodecError):
        encode_register_values(ACREL, {"voltage": Decimal("99999")})
    with pytest.raises(ModbusCodecError):
        encode_register_values(ACREL, {"voltage": "abc"})


# === FUZZ === #

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REQUESTS = [r for m in REGISTER_MAPS.values() for r in build_read_requests(1, m)]


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(REQUESTS))
def test_fuzz_decode_read_response(data, request):
    try:
        decode_read_response(data, request)
    except ModbusCodecError:
        pass


@FUZZ
@given(st.sampled_from(REQUESTS), st.data())
def test_fuzz_mutated_responses(request, data):
    seed = data.draw(st.integers(0, 0xFFFF))
    registers = {
        a: (a * 40503 + seed) & 0xFFFF
        for a in range(request.address, request.address + request.count)
    }
    coils = {a: bool((seed >> a) & 1) for a in range(8)}
    response = bytearray(answer_request(request, registers, coils=coils))
    try:
        decoded = decode_read_response(bytes(response), request)
    except ModbusFrameError:  # a float32 register holding NaN or infinity
        assert any(f.type == "float32" for f in request.fields)
    else:
        assert set(decoded) == {f.name for f in request.fields}
    position = data.draw(st.integers(0, len(response) - 1))
    response[position] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(response)))
    try:
        decode_read_response(bytes(response[:cut]), request)
    except ModbusCodecError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_answer_request(data):
    registers = {a: a for a in range(64)}
    try:
        answer = answer_request(data, registers, coils={0: True})
    except ModbusCodecError:
        return
    assert isinstance(answer, bytes)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_decode_frame(data, server):
    used, frame = decode_frame(data, server=server)
    assert 0 <= used <= len(data)
    if frame is not None:
        assert frame[-2:] == crc16(frame[:-2])
