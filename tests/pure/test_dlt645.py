"""G2 DL/T645-2007/1997 codec, X1 bad input: byte vectors, round trips, error replies,
signed BCD, stream resynchronisation, split frames, bit flips."""

import datetime as dt
from decimal import Decimal

import pytest

from prepaid_core.errors import PrepaidError
from prepaid_core.protocols import dlt645
from prepaid_core.protocols.dlt645 import (
    ChecksumError,
    DLT645Error,
    ErrorBits,
    Frame,
    FrameFormatError,
    Framer,
    Function,
    IncompleteFrameError,
    MeterErrorReply,
    RelayCommand,
    ValueRangeError,
    broadcast_time,
    build_ack,
    build_address_reply,
    build_error_reply,
    build_read_reply,
    check_ack,
    decode,
    encode_frame,
    parse_address_reply,
    parse_frame,
    parse_read_reply,
    parse_request,
    read_address_request,
    read_follow_up_request,
    read_request,
    relay_request,
    write_request,
)
from prepaid_core.protocols.dlt645_data import (
    DATA_ITEMS_1997,
    DATA_ITEMS_2007,
    DataFormatError,
    MeterStatus3,
    bcd_to_int,
    data_item,
    decode_value,
    encode_value,
    int_to_bcd,
    int_to_signed_bcd,
    signed_bcd_to_int,
)

METER = "000000000001"
H = bytes.fromhex


def cs(frame_without_tail: bytes) -> int:
    """Reference checksum: sum from the first 68H, computed independently of the codec."""
    start = frame_without_tail.index(0x68)
    return sum(frame_without_tail[start:]) % 256


# === ENCODING VECTORS (hand-checked) === #


@pytest.mark.parametrize(
    "address, di, expected",
    [
        # forward active total of 000000000001; CS = D0+01+11+04+33+33+34+33 = 1B3 -> B3
        (METER, 0x00010000, "68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16"),
        # combined active total 00000000
        (METER, 0x00000000, "68 01 00 00 00 00 00 68 11 04 33 33 33 33 B2 16"),
        # voltage A 02010100: DI low byte first 00 01 01 02 -> 33 34 34 35
        (METER, 0x02010100, "68 01 00 00 00 00 00 68 11 04 33 34 34 35 B6 16"),
        # remaining amount 00900200 of meter 123456789012
        ("123456789012", 0x00900200, "68 12 90 78 56 34 12 68 11 04 33 35 C3 33 F9 16"),
    ],
)
def test_read_request_vectors(address, di, expected):
    frame = read_request(address, di)
    assert frame == H(expected)
    assert frame[-2] == cs(frame[:-2])


def test_read_request_preamble():
    assert read_request(METER, 0x00010000, preamble=4)[:5] == H("FE FE FE FE 68")


@pytest.mark.parametrize(
    "frame, expected",
    [
        # read address: 68 AA*6 68 13 00 DF 16 (the standard's well-known vector)
        (read_address_request(), "68 AA AA AA AA AA AA 68 13 00 DF 16"),
        # broadcast time 2024-01-02 03:04:05 -> ss mm hh DD MM YY = 05 04 03 02 01 24 (+33)
        (
            broadcast_time(dt.datetime(2024, 1, 2, 3, 4, 5)),
            "68 99 99 99 99 99 99 68 08 06 38 37 36 35 34 57 D9 16",
        ),
        # DL/T645-1997 read 9010: control 01, DI 10 90 (+33 = 43 C3)
        (read_request(METER, 0x9010, version=1997), "68 01 00 00 00 00 00 68 01 02 43 C3 DA 16"),
        # error reply to a read: D1, ERR = 02 (no data requested) +33 = 35
        (
            build_error_reply(METER, 0x11, ErrorBits.NO_DATA),
            "68 01 00 00 00 00 00 68 D1 01 35 D8 16",
        ),
        # write / relay acknowledgements without data
        (build_ack(METER, 0x14), "68 01 00 00 00 00 00 68 94 00 65 16"),
        (build_ack(METER, 0x1C), "68 01 00 00 00 00 00 68 9C 00 6D 16"),
        # read-address reply carries the address (+33)
        (
            build_address_reply("123456789012"),
            "68 12 90 78 56 34 12 68 93 06 45 C3 AB 89 67 45 " + "%02X 16",
        ),
        # forward active total = 123456.78 kWh: 78 56 34 12 (+33 = AB 89 67 45)
        (
            build_read_reply(METER, 0x00010000, Decimal("123456.78")),
            "68 01 00 00 00 00 00 68 91 08 33 33 34 33 AB 89 67 45 17 16",
        ),
    ],
)
def test_encode_vectors(frame, expected):
    if "%02X" in expected:
        expected = expected % cs(H(expected.split(" %02X")[0]))
    assert frame == H(expected)
    assert frame[-2] == cs(frame[:-2])
    assert frame[-1] == 0x16


def test_relay_request_vector():
    frame = relay_request(
        METER, RelayCommand.TRIP, "02123456", "00000001", dt.datetime(2024, 12, 31, 23, 59, 59)
    )
    body = (
        "68 01 00 00 00 00 00 68 1C 10 "
        "35 89 67 45 "  # PA=02, P0..P2 = 56 34 12 (+33)
        "34 33 33 33 "  # operator 00000001, low byte first (+33)
        "4D 33 "  # N1 = 1A trip, N2 reserved (+33)
        "8C 8C 56 64 45 57"  # 59 59 23 31 12 24 = ssmmhhDDMMYY (+33)
    )
    assert frame == H(body) + bytes((cs(H(body)), 0x16))


def test_write_request_vector():
    # alarm amount 1 = 20.00 yuan: DI 01 10 00 04, password 02 000000, operator 12345678
    frame = write_request(METER, 0x04001001, Decimal("20.00"), "02000000", "12345678")
    body = (
        "68 01 00 00 00 00 00 68 14 10 "
        "34 43 33 37 "  # DI (+33)
        "35 33 33 33 "  # password
        "AB 89 67 45 "  # operator 78 56 34 12 (+33)
        "33 53 33 33"  # 00 20 00 00 = 000020.00 (+33)
    )
    assert frame == H(body) + bytes((cs(H(body)), 0x16))


@pytest.mark.parametrize("command", list(RelayCommand))
def test_relay_commands_round_trip(command):
    until = dt.datetime(2030, 6, 1, 12, 0, 0)
    frame = relay_request(METER, command, "98000000", 0x11223344, until, preamble=2)
    request = parse_request(parse_frame(frame))
    assert request.kind == "relay"
    assert request.relay_command == command
    assert request.valid_until == until
    assert request.password == "98000000"
    assert request.operator == "11223344"
    assert request.address == METER


# === DATA ITEMS: BCD, SIGNED BCD, UNITS === #


@pytest.mark.parametrize(
    "di, value, data, unit",
    [
        (0x00010000, Decimal("123456.78"), "78 56 34 12", "kWh"),
        (0x00010100, Decimal("0.01"), "01 00 00 00", "kWh"),
        (0x00020000, Decimal("999999.99"), "99 99 99 99", "kWh"),
        (0x00000000, Decimal("10.50"), "50 10 00 00", "kWh"),
        (0x02010100, Decimal("220.1"), "01 22", "V"),
        (0x02010300, Decimal("0.0"), "00 00", "V"),
        (0x02020100, Decimal("1.234"), "34 12 00", "A"),
        (0x02020100, Decimal("-1.234"), "34 12 80", "A"),  # signed: top bit of highest byte
        (0x02020200, Decimal("-799.999"), "99 99 F9", "A"),
        (0x02030000, Decimal("-0.5000"), "00 50 80", "kW"),
        (0x02030000, Decimal("12.3456"), "56 34 12", "kW"),
        (0x02060000, Decimal("-0.866"), "66 88", ""),
        (0x02060000, Decimal("1.000"), "00 10", ""),
        (0x00900200, Decimal("88.88"), "88 88 00 00", "yuan"),
        (0x00900201, Decimal("5.00"), "00 05 00 00", "yuan"),
        (0x03330201, 17, "17 00", ""),
        (0x03330601, Decimal("1500.00"), "00 00 15 00", "yuan"),
        (0x03330101, dt.datetime(2024, 5, 6, 7, 8), "08 07 06 05 24", ""),
        (0x05060001, dt.datetime(2025, 3, 2, 0, 0), "00 00 02 03 25", ""),
        (0x04001001, Decimal("20.00"), "00 20 00 00", "yuan"),
        (0x04001002, Decimal("5.00"), "00 05 00 00", "yuan"),
        (0x04001004, Decimal("50.00"), "00 50 00 00", "yuan"),
        (0x04050101, Decimal("1.2345"), "45 23 01 00", "yuan/kWh"),
        (0x04050104, Decimal("0.3000"), "00 30 00 00", "yuan/kWh"),
        (0x04000503, 0x0210, "10 02", ""),  # binary, not BCD
        (0x04000401, "123456789012", "12 90 78 56 34 12", ""),
        (0x04000101, dt.date(2024, 3, 17), "00 17 03 24", ""),  # 17 March 2024 is a Sunday
        (0x04000101, dt.date(2025, 1, 1), "03 01 01 25", ""),  # Wednesday
        (0x04000102, dt.time(13, 45, 9), "09 45 13", ""),
        (
            0x0001FF00,
            (
                Decimal("100.00"),
                Decimal("10.00"),
                Decimal("20.00"),
                Decimal("30.00"),
                Decimal("40.00"),
            ),
            "00 00 01 00 00 10 00 00 00 20 00 00 00 30 00 00 00 40 00 00",
            "kWh",
        ),
        (
            0x05060101,  # last daily frozen forward active energy: total, tariffs 1-4
            (
                Decimal("16.00"),
                Decimal("1.00"),
                Decimal("2.00"),
                Decimal("3.00"),
                Decimal("10.00"),
            ),
            "00 16 00 00 00 01 00 00 00 02 00 00 00 03 00 00 00 10 00 00",
            "kWh",
        ),
        (
            0x0201FF00,
            (Decimal("220.0"), Decimal("221.5"), Decimal("0.0")),
            "00 22 15 22 00 00",
            "V",
        ),
    ],
)
def test_read_reply_values(di, value, data, unit):
    frame_bytes = build_read_reply(METER, di, value)
    frame = parse_frame(frame_bytes)
    assert frame.control == 0x91
    assert frame.data == di.to_bytes(4, "little") + H(data)
    result = parse_read_reply(frame)
    assert result.di == di
    assert result.value == value
    assert type(result.value) is type(value)
    assert result.unit == unit
    assert result.name == DATA_ITEMS_2007[di].name
    assert result.raw == H(data)


@pytest.mark.parametrize(
    "di, value, data",
    [
        (0x9010, Decimal("123456.78"), "78 56 34 12"),
        (0x9020, Decimal("1.00"), "00 01 00 00"),
        (0x901F, (Decimal("5.00"), Decimal("1.00")), "00 05 00 00 00 01 00 00"),
        (0xB611, Decimal("220"), "20 02"),
    ],
)
def test_read_reply_1997(di, value, data):
    frame = parse_frame(build_read_reply(METER, di, value, version=1997))
    assert frame.control == 0x81
    assert frame.version == 1997
    assert frame.data == di.to_bytes(2, "little") + H(data)
    assert parse_read_reply(frame).value == value


def test_read_request_1997_parses_as_request():
    request = parse_request(parse_frame(read_request(METER, 0x901F, version=1997)))
    assert (request.kind, request.di, request.version) == ("read_1997", 0x901F, 1997)


def test_purchase_count_vendor_four_bytes():
    frame = Frame(METER, 0x91, (0x03330201).to_bytes(4, "little") + H("34 12 00 00"))
    assert parse_read_reply(frame).value == 1234


def test_unknown_di_gives_raw_bytes():
    frame = parse_frame(build_read_reply(METER, 0x04800001, b"\x01\x02\x03"))
    result = parse_read_reply(frame)
    assert (result.value, result.unit, result.name) == (b"\x01\x02\x03", "", "")
    with pytest.raises(ValueRangeError):
        build_read_reply(METER, 0x04800001, Decimal(1))


def _sample(item):
    return {
        "num": Decimal("-0.5") if item.signed else Decimal(1),
        "int": 42,
        "bin": 0x1234 & ((1 << (8 * item.length)) - 1),
        "addr": "000012345678",
        "date": dt.date(2026, 2, 28),
        "time": dt.time(23, 59, 58),
        "ymdhm": dt.datetime(2026, 2, 28, 23, 59),
        "ymdhms": dt.datetime(2026, 2, 28, 23, 59, 58),
    }[item.kind]


@pytest.mark.parametrize(
    "version, item",
    [(2007, i) for i in DATA_ITEMS_2007.values()] + [(1997, i) for i in DATA_ITEMS_1997.values()],
    ids=lambda x: getattr(x, "name", str(x)),
)
def test_every_item_round_trips(version, item):
    value = _sample(item)
    if item.block:
        value = (value, value)
    frame = parse_frame(build_read_reply(METER, item.di, value, version=version))
    result = parse_read_reply(frame)
    assert result.value == value
    assert result.unit == item.unit
    assert decode_value(item, encode_value(item, value)) == value


@pytest.mark.parametrize(
    "data, value",
    [("34 12", 1234), ("00", 0), ("99 99 99 99", 99999999), ("", 0)],
)
def test_bcd(data, value):
    assert bcd_to_int(H(data)) == value
    if data:
        assert int_to_bcd(value, len(H(data))) == H(data)


@pytest.mark.parametrize(
    "data, value",
    [("34 12 80", -1234), ("34 12 00", 1234), ("00 00 80", 0), ("99 99 F9", -799999)],
)
def test_signed_bcd(data, value):
    assert signed_bcd_to_int(H(data)) == value
    if value:
        assert int_to_signed_bcd(value, 3) == H(data)


@pytest.mark.parametrize("bad", ["1A", "A0", "FF 00", "12 3F"])
def test_bcd_rejects_hex_nibbles(bad):
    with pytest.raises(DataFormatError):
        bcd_to_int(H(bad))


@pytest.mark.parametrize(
    "di, value",
    [
        (0x00010000, Decimal("1000000.00")),  # XXXXXX.XX overflows
        (0x00010000, Decimal("-1")),  # unsigned
        (0x02020100, Decimal("800.000")),  # signed, top digit <= 7
        (0x02010100, "not a number"),
        (0x02010100, True),
        (0x04000401, "12345"),
        (0x04000101, "2024-01-01"),
        (0x0001FF00, Decimal(1)),  # block needs a sequence
        (0x00010000, b"\x00\x00"),  # wrong raw length
    ],
)
def test_value_range_errors(di, value):
    with pytest.raises(ValueRangeError):
        build_read_reply(METER, di, value)


def test_values_round_half_up():
    frame = parse_frame(build_read_reply(METER, 0x00010000, Decimal("1.005")))
    assert parse_read_reply(frame).value == Decimal("1.01")


def test_reply_with_bad_bcd_is_data_format_error():
    frame = Frame(METER, 0x91, (0x00010000).to_bytes(4, "little") + H("7A 56 34 12"))
    with pytest.raises(DataFormatError):
        parse_read_reply(frame)


@pytest.mark.parametrize("length", [0, 3, 5])
def test_reply_with_wrong_length_is_data_format_error(length):
    frame = Frame(METER, 0x91, (0x00010000).to_bytes(4, "little") + bytes(length))
    with pytest.raises(DataFormatError):
        parse_read_reply(frame)


def test_status_word_3():
    word = MeterStatus3.to_word(relay_off=True, pre_trip_alarm=True, prepaid_type=2)
    assert word == 0x0250
    status = MeterStatus3.from_word(word)
    assert status.relay_off and status.pre_trip_alarm and not status.relay_command_off
    assert status.prepaid_type == 2
    frame = parse_frame(build_read_reply(METER, 0x04000503, word))
    assert MeterStatus3.from_word(parse_read_reply(frame).value).relay_off


def test_data_item_lookup():
    assert data_item(0x00900200).unit == "yuan"
    assert data_item(0x9010, version=1997).name == "forward_active_total"
    assert data_item(0x12345678) is None
    assert "vendor" in data_item(0x03330201).note


# === ERROR REPLIES, ACKS, FOLLOW-UP === #


@pytest.mark.parametrize("bits", [*ErrorBits, ErrorBits.OTHER | ErrorBits.UNAUTHORIZED])
def test_error_reply_raises_meter_error(bits):
    frame = parse_frame(build_error_reply(METER, 0x11, bits))
    assert frame.is_reply and frame.is_error and frame.function == 0x11
    with pytest.raises(MeterErrorReply) as info:
        parse_read_reply(frame)
    assert info.value.error == bits
    assert info.value.address == METER
    assert isinstance(info.value, DLT645Error)


@pytest.mark.parametrize("function", [0x14, 0x1C])
def test_check_ack(function):
    check_ack(parse_frame(build_ack(METER, function)), function)
    with pytest.raises(MeterErrorReply) as info:
        check_ack(parse_frame(build_error_reply(METER, function, ErrorBits.UNAUTHORIZED)), function)
    assert info.value.error == ErrorBits.UNAUTHORIZED
    with pytest.raises(FrameFormatError):
        check_ack(parse_frame(build_ack(METER, 0x11)), function)


def test_parse_read_reply_refuses_requests():
    with pytest.raises(FrameFormatError):
        parse_read_reply(parse_frame(read_request(METER, 0x00010000)))


def test_follow_up_frames():
    first = parse_frame(build_read_reply(METER, 0x00010000, Decimal(1), follow_up=True))
    assert first.control == 0xB1 and first.has_follow_up
    assert parse_read_reply(first).has_follow_up
    request = parse_request(parse_frame(read_follow_up_request(METER, 0x00010000, 1)))
    assert (request.kind, request.di, request.seq) == ("read_follow_up", 0x00010000, 1)
    last = parse_frame(build_read_reply(METER, 0x00010000, Decimal(2), seq=1))
    assert last.control == 0x92 and not last.has_follow_up
    result = parse_read_reply(last)
    assert (result.value, result.seq) == (Decimal("2.00"), 1)


def test_frame_properties():
    frame = Frame(METER, 0xD1, b"\x02")
    assert (frame.is_reply, frame.is_error, frame.has_follow_up, frame.function) == (
        True,
        True,
        False,
        0x11,
    )
    assert frame.encode(preamble=1)[:2] == b"\xfe\x68"
    with pytest.raises(AttributeError):
        frame.control = 1  # frozen


# === SLAVE SIDE === #


def test_parse_requests():
    read = parse_request(parse_frame(read_request(METER, 0x00900200)))
    assert (read.kind, read.di, read.address) == ("read", 0x00900200, METER)
    address = parse_request(parse_frame(read_address_request()))
    assert (address.kind, address.address) == ("read_address", dlt645.WILDCARD_ADDRESS)
    when = dt.datetime(2025, 7, 8, 9, 10, 11)
    bcast = parse_request(parse_frame(broadcast_time(when)))
    assert (bcast.kind, bcast.time, bcast.address) == (
        "broadcast_time",
        when,
        dlt645.BROADCAST_ADDRESS,
    )
    write = parse_request(
        parse_frame(write_request(METER, 0x04050101, Decimal("0.5678"), "02123456", "00000007"))
    )
    assert write.kind == "write"
    assert (write.di, write.value, write.password, write.operator) == (
        0x04050101,
        Decimal("0.5678"),
        "02123456",
        "00000007",
    )
    other = parse_request(Frame(METER, 0x16, b"\x01"))
    assert other.kind == "other"


def test_parse_request_refuses_replies_and_short_data():
    with pytest.raises(FrameFormatError):
        parse_request(parse_frame(build_ack(METER, 0x14)))
    with pytest.raises(DataFormatError):
        parse_request(Frame(METER, 0x11, b"\x00\x01"))
    with pytest.raises(DataFormatError):
        parse_request(Frame(METER, 0x1C, bytes(10)))
    with pytest.raises(DataFormatError):
        parse_request(Frame(METER, 0x08, H("00 00 00 32 13 24")))  # 32 Dec


def test_simulated_meter_conversation():
    """A master and a tiny simulated meter talk through the public API only."""
    balance = {0x00900200: Decimal("35.20"), 0x00010000: Decimal("1024.00")}

    def meter(wire: bytes) -> bytes:
        request = parse_request(parse_frame(wire))
        if request.address not in (METER, dlt645.WILDCARD_ADDRESS):
            return b""
        if request.kind == "read_address":
            return build_address_reply(METER)
        if request.kind == "read":
            if request.di not in balance:
                return build_error_reply(METER, request.control, ErrorBits.NO_DATA)
            return build_read_reply(METER, request.di, balance[request.di], preamble=4)
        if request.kind == "relay":
            if request.password != "02123456":
                return build_error_reply(METER, request.control, ErrorBits.UNAUTHORIZED)
            return build_ack(METER, request.control)
        return build_error_reply(METER, request.control, ErrorBits.OTHER)

    assert parse_address_reply(parse_frame(meter(read_address_request()))) == METER
    reply = parse_read_reply(parse_frame(meter(read_request(METER, 0x00900200))))
    assert (reply.value, reply.unit) == (Decimal("35.20"), "yuan")
    with pytest.raises(MeterErrorReply):
        parse_read_reply(parse_frame(meter(read_request(METER, 0x02010100))))
    until = dt.datetime(2030, 1, 1)
    ok = meter(relay_request(METER, RelayCommand.TRIP, "02123456", "00000001", until))
    check_ack(parse_frame(ok), Function.RELAY)
    bad = meter(relay_request(METER, RelayCommand.TRIP, "02000000", "00000001", until))
    with pytest.raises(MeterErrorReply):
        check_ack(parse_frame(bad), Function.RELAY)


# === ADDRESSES === #


@pytest.mark.parametrize(
    "address, wire",
    [
        ("000000000001", "01 00 00 00 00 00"),
        ("123456789012", "12 90 78 56 34 12"),
        ("999999999999", "99 99 99 99 99 99"),
        ("AAAAAAAAAAAA", "AA AA AA AA AA AA"),
        ("aaaaaaaa0001", "01 00 AA AA AA AA"),  # wildcard high bytes, normalised upper case
    ],
)
def test_addresses(address, wire):
    frame = read_request(address, 0x00010000)
    assert frame[1:7] == H(wire)
    assert parse_frame(frame).address == address.upper()


@pytest.mark.parametrize("address", ["1", "00000000000A", "0000000000001", "A0000000000B", 12])
def test_bad_addresses(address):
    with pytest.raises(ValueRangeError):
        read_request(address, 0x00010000)


def test_non_bcd_address_on_the_wire_is_format_error():
    body = H("68 01 00 00 00 0F 00 68 11 00")
    with pytest.raises(FrameFormatError):
        parse_frame(body + bytes((cs(body), 0x16)))


# === STREAM DECODING === #

GOOD = read_request(METER, 0x00010000)
REPLY = build_read_reply(METER, 0x00900200, Decimal("12.34"))


def test_decode_contract():
    assert decode(GOOD) == (16, Frame(METER, 0x11, H("00 00 01 00")))
    assert decode(b"") == (0, None)
    assert decode(GOOD[:5]) == (0, None)  # incomplete: nothing consumed
    assert decode(b"\x01\x02" + GOOD[:12]) == (2, None)  # garbage consumed, frame waits
    assert decode(b"\x00\xfe\x16") == (3, None)  # garbage only
    assert decode(b"\xfe\xfe\xfe\xfe" + GOOD)[0] == 20  # preamble counted in used
    used, frame = decode(b"xyz" + GOOD + REPLY)
    assert (used, frame.control) == (19, 0x11)


def test_decode_bad_frame_reports_used():
    bad = bytearray(GOOD)
    bad[12] ^= 0x01
    with pytest.raises(ChecksumError) as info:
        decode(b"\x00\x00" + bytes(bad))
    assert info.value.used == 3  # garbage + the first 68H


def test_framer_byte_by_byte():
    framer = Framer()
    stream = GOOD + b"\xfe\xfe" + REPLY
    frames = []
    for b in stream:
        frames += framer.feed(bytes((b,)))
    assert [f.control for f in frames] == [0x11, 0x91]
    assert framer.pending == 0
    assert not framer.errors


@pytest.mark.parametrize("split", range(1, len(GOOD)))
def test_framer_split_anywhere(split):
    framer = Framer()
    assert framer.feed(GOOD[:split]) == []
    assert framer.feed(GOOD[split:] + REPLY) == [parse_frame(GOOD), parse_frame(REPLY)]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00",
        b"\x68",
        b"\x68\x68",
        b"\xff" * 40,
        b"\x68\x01\x02\x03\x04\x05\x06\x68\x11",
        H("16 33 68 AA"),
    ],
)
def test_framer_garbage_before_and_between(garbage):
    errors = []
    framer = Framer(on_error=errors.append)
    frames = framer.feed(garbage + GOOD + garbage + REPLY + garbage + GOOD)
    frames += framer.feed(b"")
    assert [f.control for f in frames] == [0x11, 0x91, 0x11]
    assert all(isinstance(e, DLT645Error) for e in errors)


def test_framer_bad_frame_then_good_frame():
    errors = []
    framer = Framer(on_error=errors.append)
    bad = bytearray(REPLY)
    bad[14] ^= 0x40  # a data byte
    frames = framer.feed(GOOD + bytes(bad) + GOOD)
    assert [f.control for f in frames] == [0x11, 0x11]
    assert len(errors) == 1 and isinstance(errors[0], ChecksumError)
    assert list(framer.errors) == errors and framer.error_count == 1


def test_framer_wrong_length_byte_does_not_swallow_next_frame():
    bad = bytearray(GOOD)
    bad[9] = 0x50  # says 80 data bytes
    framer = Framer()
    frames = framer.feed(bytes(bad) + REPLY)
    assert frames == [parse_frame(REPLY)]
    assert isinstance(framer.errors[0], FrameFormatError)


def test_framer_wrong_end_byte():
    bad = bytearray(GOOD)
    bad[-1] = 0x17
    framer = Framer()
    assert framer.feed(bytes(bad) + GOOD) == [parse_frame(GOOD)]
    assert isinstance(framer.errors[0], FrameFormatError)


def test_data_length_over_limit():
    long_frame = encode_frame(METER, 0x91, bytes(201))
    with pytest.raises(FrameFormatError):
        decode(long_frame)
    assert decode(long_frame, max_data_length=255) == (
        len(long_frame),
        Frame(METER, 0x91, bytes(201)),
    )


# === ONE-SHOT PARSING AND BIT FLIPS === #


@pytest.mark.parametrize("cut", range(0, len(REPLY)))
def test_truncated_frames_are_incomplete(cut):
    with pytest.raises(IncompleteFrameError):
        parse_frame(REPLY[:cut])


def test_trailing_bytes_are_format_error():
    with pytest.raises(FrameFormatError):
        parse_frame(GOOD + b"\x00")
    with pytest.raises(FrameFormatError):
        parse_frame(b"\x00" + GOOD)


# address, control, data and checksum bytes; the length byte (9) moves the frame's end
@pytest.mark.parametrize("position", [*range(1, 7), 8, *range(10, len(REPLY) - 1)])
@pytest.mark.parametrize("bit", range(8))
def test_bit_flip_in_checked_bytes_is_checksum_error(position, bit):
    flipped = bytearray(REPLY)
    flipped[position] ^= 1 << bit
    with pytest.raises(ChecksumError):
        parse_frame(bytes(flipped))


@pytest.mark.parametrize("position", range(len(REPLY)))
@pytest.mark.parametrize("bit", range(8))
def test_bit_flip_anywhere_is_a_typed_error(position, bit):
    flipped = bytearray(REPLY)
    flipped[position] ^= 1 << bit
    with pytest.raises(DLT645Error):
        parse_frame(bytes(flipped))
    framer = Framer()
    assert framer.feed(bytes(flipped) + GOOD)[-1:] == [parse_frame(GOOD)]


def test_errors_are_value_errors():
    for cls in (ChecksumError, FrameFormatError, IncompleteFrameError, MeterErrorReply):
        assert issubclass(cls, DLT645Error)
        assert issubclass(cls, PrepaidError)
        assert issubclass(cls, ValueError)


def test_encode_frame_limits():
    with pytest.raises(ValueRangeError):
        encode_frame(METER, 0x100)
    with pytest.raises(ValueRangeError):
        encode_frame(METER, 0x11, bytes(256))
    with pytest.raises(ValueRangeError):
        encode_frame(METER, 0x11, preamble=5)
    with pytest.raises(ValueRangeError):
        read_request(METER, 1 << 32)
    with pytest.raises(ValueRangeError):
        relay_request(METER, 0x99, "02000000", "00000000", dt.datetime(2030, 1, 1))
    with pytest.raises(ValueRangeError):
        relay_request(METER, RelayCommand.TRIP, "02GG0000", "00000000", dt.datetime(2030, 1, 1))
