"""Modbus-RTU stream splitting (G2, X1): the table-driven ``decode_frame`` takes the
same decisions as pymodbus's own frame sizing and CRC, in work linear in its input; every
decoder and encoder raises only ``ModbusCodecError``."""

import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

from prepaid_core.protocols import modbus
from prepaid_core.protocols.modbus import (
    ModbusCodecError,
    build_read_requests,
    build_write,
    check_write_response,
    decode_frame,
    register_map,
)
from prepaid_core.protocols.modbus_maps import REGISTER_MAPS

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACREL = register_map("acrel_prepaid_1p")
REQUESTS = [r for m in REGISTER_MAPS.values() for r in build_read_requests(7, m)]


def _crc(body: bytes) -> bytes:
    return FramerRTU.compute_CRC(body).to_bytes(2, "big")


def _pymodbus_size(decoder, buf, pos):
    view = buf[pos:]
    try:
        pdu_class = decoder.lookupPduClass(view)
        if pdu_class is None:
            return -1
        return pdu_class.calculateRtuFrameSize(view)
    except Exception:
        return -1


def reference_decode_frame(buf, server):
    """The contract spelled out with pymodbus itself, one position and one CRC at a time."""
    buf = bytes(buf)
    decoder = DecodePDU(is_server=server)
    n, pos = len(buf), 0

    def ok(p, size):
        return FramerRTU.check_CRC(
            buf[p : p + size - 2], int.from_bytes(buf[p + size - 2 : p + size], "big")
        )

    while n - pos >= 4:
        size = _pymodbus_size(decoder, buf, pos)
        if size < 0 or size > 256:
            pos += 1
            continue
        if size == 0 or size > n - pos:
            if any(
                4 <= (s := _pymodbus_size(decoder, buf, p)) <= n - p and ok(p, s)
                for p in range(pos + 1, n - 3)
            ):
                pos += 1
                continue
            return pos, None
        if ok(pos, size):
            return pos + size, buf[pos : pos + size]
        pos += 1
    return pos, None


def frames_of(stream, server):
    out = []
    while True:
        used, frame = decode_frame(stream, server=server)
        stream = stream[used:]
        if frame is None:
            return out, stream
        out.append(frame)


def _body(unit, function, rest):
    body = bytes([unit, function]) + rest
    return body + _crc(body)


_frames = st.one_of(
    st.sampled_from([bytes(r) for r in REQUESTS]),
    st.builds(_body, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=12)),
    st.builds(
        lambda unit, fc, regs: _body(unit, fc, bytes([len(regs)]) + regs),
        st.integers(0, 255),
        st.sampled_from([1, 2, 3, 4, 12, 17, 23]),
        st.binary(max_size=40),
    ),
    st.builds(
        lambda unit, fc, sub, rest: _body(unit, fc, sub.to_bytes(2, "big") + rest),
        st.integers(0, 255),
        st.sampled_from([8, 43]),
        st.integers(0, 30),
        st.binary(max_size=6),
    ),
)
_garbage = st.one_of(st.binary(max_size=30), st.sampled_from([b"\x03\xf0" * 20, b"\x10" * 30]))
_mutated = st.tuples(_frames, st.integers(0, 100), st.integers(1, 255)).map(
    lambda t: (
        t[0][: t[1] % len(t[0])]
        + bytes([t[0][t[1] % len(t[0])] ^ t[2]])
        + t[0][t[1] % len(t[0]) + 1 :]
    )
)


@FUZZ
@given(
    st.lists(st.one_of(_frames, _garbage, _mutated), max_size=10), st.booleans(), st.integers(0, 40)
)
def test_decode_frame_matches_pymodbus(pieces, server, cut):
    """Same ``(used, frame)`` as sizing every position with pymodbus and checking every
    CRC with pymodbus, on whole and cut streams."""
    stream = b"".join(pieces)
    for buf in (stream, stream[: len(stream) - cut]):
        assert decode_frame(buf, server=server) == reference_decode_frame(buf, server)
        assert decode_frame(bytearray(buf), server=server) == reference_decode_frame(buf, server)


@FUZZ
@given(st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=8), st.lists(st.integers(0, 40)))
def test_requests_between_line_noise_all_come_out(requests, gaps):
    """Zero bytes (a line idling low) between requests: every request comes out, in order."""
    gaps = gaps + [0] * len(requests)
    stream = b"".join(bytes(gap) + bytes(r) for gap, r in zip(gaps, requests, strict=False))
    out, rest = frames_of(stream, server=True)
    assert out == [bytes(r) for r in requests] and rest == b""


class _Work:
    """Counts the per-position work of ``decode_frame``: positions sized by the slow
    path, CRC checks, and CRC registers computed (one per byte it reads)."""

    def __init__(self, monkeypatch):
        self.sizes = self.checks = self.registers = 0
        size_at, frame_ok = modbus._size_at, modbus._CrcScan.frame_ok

        def counted_size_at(*args):
            self.sizes += 1
            return size_at(*args)

        def counted_frame_ok(scan, start, size):
            before = len(scan.registers)
            try:
                return frame_ok(scan, start, size)
            finally:
                self.checks += 1
                self.registers += len(scan.registers) - before

        monkeypatch.setattr(modbus, "_size_at", counted_size_at)
        monkeypatch.setattr(modbus._CrcScan, "frame_ok", counted_frame_ok)

    @property
    def total(self):
        return self.sizes + self.checks + self.registers


ADVERSARIAL = {
    "03 F0 (a 245-byte response at every other byte)": b"\x03\xf0" * 20_000,
    "10H flood (write-multiple requests)": b"\x10" * 40_000,
    "exception codes": b"\x01\x83" * 20_000,
    "random": random.Random(21).randbytes(40_000),
    "cut requests": b"".join(bytes(r)[:-1] for r in REQUESTS) * 300,
}


def split_like_the_collector(data, server, chunk, work):
    """Feed ``data`` by ``chunk`` bytes and split it as the simulator's collector does;
    check the work of every call against the length of the buffer it was given."""
    buffer = b""
    for i in range(0, len(data), chunk):
        buffer += data[i : i + chunk]
        while True:
            before = work.total
            used, frame = decode_frame(buffer, server=server)
            assert work.total - before <= 4 * len(buffer) + 16
            buffer = buffer[used:]
            if frame is None:
                break
        assert len(buffer) < 256  # only an incomplete frame start is kept


@pytest.mark.parametrize("chunk", [7, 4096, 10**9])
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_decode_frame_work_is_linear(name, chunk, monkeypatch):
    """A hostile stream split as the collector does: each call's sizing, CRC checks and
    CRC bytes stay within a constant per byte of its buffer, and what is kept between
    calls stays under one frame (pymodbus sizing every position with a copy of the rest
    of the buffer, a CRC per candidate and a rescan of the tail per incomplete start
    were quadratic: 20 KB of "03 F0" took 0.35 s, 1 MB would take 16 s)."""
    data = ADVERSARIAL[name]
    work = _Work(monkeypatch)
    for server in (True, False):
        split_like_the_collector(data, server, chunk, work)
    assert work.total <= 2 * 4 * (len(data) + (len(data) // min(chunk, len(data)) + 1) * 260)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([*REQUESTS, build_write(1, ACREL, "price", 1)]))
def test_check_write_response_raises_only_codec_errors(data, request):
    try:
        if hasattr(request, "field"):
            check_write_response(data, request)
        else:
            modbus.decode_read_response(data, request)
    except ModbusCodecError:
        pass


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=5),
    st.builds(lambda e: Decimal(f"1E{e}"), st.integers(-(10**6), 10**6)),
)
WRITABLE = [(m, f.name) for m in REGISTER_MAPS.values() for f in m.fields if f.writable]


@FUZZ
@given(st.sampled_from(WRITABLE), _values, st.integers(-5, 300))
def test_build_write_raises_only_codec_errors(field, value, unit):
    regmap, name = field
    try:
        request = build_write(unit, regmap, name, value)
    except ModbusCodecError:
        return
    assert decode_frame(request, server=True) == (len(request), bytes(request))
