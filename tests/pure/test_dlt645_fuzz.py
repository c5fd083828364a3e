"""G2/X1 fuzzing of every DL/T645 decoder: arbitrary bytes, truncations, bit flips, chunked
streams with garbage.  Only the typed errors may come out, never another exception, and
every call returns (no hang)."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prepaid_core.protocols.dlt645 import (
    ChecksumError,
    DLT645Error,
    Frame,
    Framer,
    IncompleteFrameError,
    broadcast_time,
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
from prepaid_core.protocols.dlt645_data import (
    DATA_ITEMS_1997,
    DATA_ITEMS_2007,
    decode_value,
    encode_value,
)

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


# === THE STREAM FRAMER: SAME FRAMES AS ONE FRAME AT A TIME, IN LINEAR WORK (X1) === #

from prepaid_core.protocols import dlt645  # noqa: E402


def reference_feed(chunks, max_data_length=200):
    """The framer's contract spelled out with the one-frame decoder (``decode``'s loop)."""
    buf = bytearray()
    frames = []
    for chunk in chunks:
        buf += chunk
        pos = 0
        while pos < len(buf):
            try:
                new_pos, frame = dlt645._decode_at(buf, pos, max_data_length)
            except DLT645Error as exc:
                pos += max(exc.used, 1)
                continue
            pos = new_pos
            if frame is None:
                break
            frames.append(frame)
        del buf[:pos]
    return frames, len(buf)


def feed_all(framer, chunks):
    frames = []
    for chunk in chunks:
        frames += framer.feed(chunk)
    return frames


def split(stream, sizes):
    chunks, pos, i = [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        chunks.append(stream[pos : pos + size])
        pos += size
        i += 1
    return chunks


_dense = st.binary(max_size=40).map(lambda b: bytes(x if x % 3 else 0x68 for x in b))
_piece = st.one_of(
    valid_frames, st.binary(max_size=30), _dense, st.sampled_from([b"\x16", b"\x68"])
)
_mutated = st.tuples(valid_frames, st.integers(0, 300), st.integers(0, 255)).map(
    lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1 :]
)


@FUZZ
@given(
    st.lists(st.one_of(_piece, _mutated), max_size=12),
    st.lists(st.integers(1, 300), min_size=1, max_size=8),
    st.sampled_from([200, 255, 30]),
)
def test_framer_matches_the_one_frame_decoder(pieces, sizes, max_data_length):
    """Same frames and same bytes kept as the frame-at-a-time loop, whatever the chunks:
    the bulk skips and the remembered look-ahead never change a decision."""
    chunks = split(b"".join(pieces), sizes)
    framer = Framer(max_data_length=max_data_length)
    frames = feed_all(framer, chunks)
    assert (frames, framer.pending) == reference_feed(chunks, max_data_length)
    framed = sum(12 + len(f.data) for f in frames)
    assert framer.discarded + framed + framer.pending == sum(map(len, chunks))


_FRAME = build_read_reply("000000000001", 0x00010000, Decimal("123.45"))
_BAD_CHECKSUM = _FRAME[:-2] + bytes([_FRAME[-2] ^ 1]) + _FRAME[-1:]
ADVERSARIAL = {
    "68H flood": b"\x68" * 60_000,
    "68H x6 + 16H": b"\x68\x68\x68\x68\x68\x68\x16" * 8_000,
    "68H x6 + 00H": b"\x68\x68\x68\x68\x68\x68\x00" * 8_000,
    "headers with L=200": (b"\x68" + bytes(6) + b"\x68\x00\xc8") * 6_000,
    "bad checksums": _BAD_CHECKSUM * 3_000,
    "frames cut short": (_FRAME[:-3] + b"\x68") * 3_000,
    "random": bytes(random.Random(21).randrange(256) for _ in range(60_000)),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 10**9])
def test_framer_work_is_linear(name, chunk):
    """Positions examined one by one (``steps``) stay within a small constant per byte
    fed, for hostile streams cut anywhere; twice the input is at most twice the work."""
    data = ADVERSARIAL[name]
    half, full = Framer(), Framer()
    feed_all(half, split(data[: len(data) // 2], [chunk]))
    feed_all(full, split(data, [chunk]))
    assert full.steps <= 4 * len(data)
    assert full.steps <= 2 * half.steps + 600
    assert full.error_count <= 1 + len(data) // 12  # a run of bad starts is reported once


def test_flood_of_68h_is_skipped_in_bulk():
    """1 MB of 68H (1.5 s before): a handful of positions looked at, one error reported."""
    errors = []
    framer = Framer(on_error=errors.append)
    assert framer.feed(b"\x68" * 1_000_000) == []
    assert framer.steps < 1_000
    assert len(errors) == 1 and framer.error_count == 1
    assert framer.pending < 12 + 200
    assert framer.feed(bytes(250) + _FRAME) == [parse_frame(_FRAME)]  # and then frames again


# === ENCODERS: ONLY DLT645Error ON ANY VALUE (X1) === #

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(10**5000),  # no str() past 4300 digits: its error message raised ValueError
    st.floats(),
    st.decimals(),
    st.builds(lambda e: Decimal(f"1E{e}"), st.integers(-(10**9), 10**9)),  # decimal.Overflow
    st.text(max_size=14),
    st.text(alphabet="0123456789A\u0660\u0969\uff10", min_size=12, max_size=12),
    st.binary(max_size=8),
    st.datetimes(),
    st.dates(),
    st.times(),
    st.tuples(st.integers(), st.integers()),
)
_ITEMS = sorted(DATA_ITEMS_2007.values(), key=lambda i: i.di) + sorted(
    DATA_ITEMS_1997.values(), key=lambda i: i.di
)


@FUZZ
@given(
    address=st.just("000000000001") | _ANY_VALUE,
    item=st.sampled_from(_ITEMS),
    value=_ANY_VALUE,
    control=st.integers(0, 255) | _ANY_VALUE,
    data=st.binary(max_size=8) | _ANY_VALUE,
    when=st.just(dt.datetime(2030, 1, 1)) | _ANY_VALUE,
    command=st.sampled_from([0x1A, 0x1B]) | _ANY_VALUE,
    password=st.just("02000000") | _ANY_VALUE,
)
def test_encoders_raise_only_dlt645_errors(
    address, item, value, control, data, when, command, password
):
    calls = [
        lambda: encode_value(item, value),
        lambda: encode_frame(address, control, data),
        lambda: read_request(address, item.di if value is None else value),
        lambda: write_request(address, item.di, value, password, "00000000"),
        lambda: relay_request(address, command, password, "00000000", when),
        lambda: broadcast_time(when),
        lambda: build_read_reply(address, item.di, value),
    ]
    for call in calls:
        try:
            frame = call()
        except DLT645Error:
            continue
        assert isinstance(frame, bytes)


@pytest.mark.parametrize("address", ["\u0660" * 12, "00000000000\u0969", "\uff10" * 12])
def test_addresses_are_ascii_digits_only(address):
    with pytest.raises(DLT645Error):
        read_request(address, 0x00010000)  # bytes.fromhex raised ValueError
