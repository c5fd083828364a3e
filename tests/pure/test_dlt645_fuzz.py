"""G2/X1 fuzzing of every DL/T645 decoder: arbitrary bytes, truncations, bit flips, chunked
streams with garbage.  Only the typed errors may come out, never another exception, and
every call returns (no hang)."""

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prepaid_core.protocols.dlt645 import (
    ChecksumError,
    DLT645Error,
    Frame,
    Framer,
    IncompleteFrameError,
    build_error_reply,
    build_read_reply,
    decode,
    encode_frame,
    parse_frame,
    parse_read_reply,
    parse_request,
    read_request,
    relay_request,
    write_request,
)
from prepaid_core.protocols.dlt645_data import DATA_ITEMS_1997, DATA_ITEMS_2007, decode_value

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

addresses = st.text(alphabet="0123456789", min_size=12, max_size=12)
controls = st.integers(0, 255)
payloads = st.binary(max_size=64)
frames = st.builds(Frame, addresses, controls, payloads)

KNOWN = [
    read_request("000000000001", 0x00010000),
    build_read_reply("000000000001", 0x00900200, Decimal("12.34")),
    build_error_reply("000000000001", 0x11, 0x02),
    relay_request("000000000001", 0x1A, "02000000", "00000000", dt.datetime(2030, 1, 1)),
    write_request("000000000001", 0x04001001, Decimal(20), "02000000", "00000000"),
]
valid_frames = st.one_of(
    st.sampled_from(KNOWN),
    st.builds(lambda f: f.encode(), frames),
)


@FUZZ
@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes(data):
    try:
        used, frame = decode(data)
    except DLT645Error as exc:
        assert 0 < exc.used <= len(data)
        return
    assert 0 <= used <= len(data)
    if frame is not None:
        assert used >= 12 + len(frame.data)


@FUZZ
@given(st.binary(max_size=300))
def test_parse_frame_arbitrary_bytes(data):
    try:
        parse_frame(data)
    except DLT645Error:
        pass


@FUZZ
@given(valid_frames, st.data())
def test_truncations_are_incomplete(frame, data):
    cut = data.draw(st.integers(0, len(frame) - 1))
    try:
        parse_frame(frame[:cut])
    except IncompleteFrameError:
        pass
    assert decode(frame[:cut]) == (0, None) or frame[0] != 0x68


@FUZZ
@given(valid_frames, st.data())
def test_bit_flips(frame, data):
    position = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(frame)
    flipped[position] ^= 1 << bit
    try:
        parse_frame(bytes(flipped))
    except DLT645Error as exc:
        if position in range(1, 7) or position == 8 or 10 <= position < len(frame) - 1:
            assert isinstance(exc, ChecksumError)
    else:
        raise AssertionError("a flipped frame was accepted")


@FUZZ
@given(frames)
def test_reply_and_request_parsers(frame):
    for parser in (parse_read_reply, parse_request):
        try:
            parser(frame)
        except DLT645Error:
            pass


@FUZZ
@given(st.sampled_from(list(DATA_ITEMS_2007.values()) + list(DATA_ITEMS_1997.values())), payloads)
def test_decode_value_arbitrary(item, data):
    try:
        decode_value(item, data)
    except DLT645Error:
        pass


@FUZZ
@given(
    st.lists(st.tuples(st.binary(max_size=20), valid_frames), min_size=1, max_size=8),
    st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_framer_recovers_every_frame(pieces, chunk_sizes):
    """Frames interleaved with arbitrary garbage, fed in arbitrary chunks: every frame sent
    comes out, in order (garbage may add frames of its own, never hide one)."""
    stream = b"".join(garbage + frame for garbage, frame in pieces)
    framer = Framer()
    out = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = chunk_sizes[i % len(chunk_sizes)]
        out += framer.feed(stream[pos : pos + size])
        pos += size
        i += 1
    sent = [parse_frame(frame) for _, frame in pieces]
    it = iter(out)
    assert all(any(f == g for g in it) for f in sent), (sent, out)
    assert framer.pending <= 12 + 255


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_framer_arbitrary_stream(stream, chunk_sizes):
    framer = Framer()
    pos = 0
    i = 0
    while pos < len(stream):
        size = chunk_sizes[i % len(chunk_sizes)]
        for frame in framer.feed(stream[pos : pos + size]):
            assert isinstance(frame, Frame)
        pos += size
        i += 1
    assert framer.pending <= len(stream)
    assert all(isinstance(e, DLT645Error) for e in framer.errors)


@FUZZ
@given(addresses, controls, payloads)
def test_encode_decode_round_trip(address, control, data):
    wire = encode_frame(address, control, data)
    assert parse_frame(wire) == Frame(address, control, data)
    assert decode(wire) == (len(wire), Frame(address, control, data))
