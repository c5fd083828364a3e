"""Fuzz every codec of the pure package with a million inputs each (X1, G2).

Run: ``python benchmarks/fuzz_codecs.py [--count 1000000] [--codecs dlt645_frame,...]``.
Not a test (the CI runs the hypothesis fuzz tests of ``tests/pure``); this is the long run.

For each codec, inputs are random (bytes, JSON, any Python value) or valid frames,
payloads and tokens with 1-4 mutations (bit flips, byte changes, insertions, deletions,
truncations, splices of two samples). It prints per codec: the inputs run, the outcomes
by result or error type, the unexpected exceptions (any other type: the exit status is 1),
and the slowest input's time per byte against the slowest valid input's (both timed again,
best of repeats, so that a pause of the machine is not taken for a slow input; an input
shorter than a typical valid one is charged as if it had its length, so that the fixed cost
of a call does not make every 1-byte input "slow"; encoders are timed per input). The framers are
also timed on hostile 1 MB streams against a valid stream of the same length.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import reprlib
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prepaid_core import tokens
from prepaid_core.protocols import dlt645, modbus
from prepaid_core.protocols import dlt645_data as dd
from prepaid_core.protocols import mqtt_schema as ms
from prepaid_core.protocols.modbus_maps import REGISTER_MAPS

METER = "000012345678"
KEY = tokens.derive_meter_key(bytes(range(32)), METER)
TS = dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.timezone.utc)
SLOW_CANDIDATES = 8  # slowest inputs timed again
REPEATS = 50


# === MUTATIONS === #


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """1-4 random edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        at = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[at % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[at % len(out)] = rng.randrange(256)
        elif op == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del out[at : at + rng.randint(1, 8)]
        elif op == 4:
            del out[at:]
        elif op == 5:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            out[at:] = other[cut:]
        else:
            out[at:at] = bytes([rng.choice(b"\x68\x16\xfe\x00\xff\x22\x7b\x7d\x5c\x30")])
    return bytes(out)


def bytes_input(rng: random.Random, pool: list[bytes], max_random: int = 300) -> bytes:
    if rng.random() < 0.3:
        return rng.randbytes(rng.randint(0, max_random))
    return mutate(rng, rng.choice(pool), pool)


_ANY = [
    None,
    True,
    0,
    -1,
    2**64,
    10**5000,
    1.5,
    float("nan"),
    float("inf"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-Infinity"),
    Decimal("1e999999999"),
    Decimal("1e-999999999"),
    Decimal("0.000000001"),
    Decimal("12.345678"),
    "",
    "x" * 5000,
    "\x00",
    "\ud800",
    "\u0661\u0662",
    "on",
    b"bytes",
    [1, [2, [3]]],
    {"k": object()},
    {1: 2},
    object(),
    dt.datetime(2025, 1, 1),
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    dt.date(2025, 1, 1),
]


def any_value(rng: random.Random, valid, odds: float):
    """``valid``, or with probability ``odds`` something hostile or random."""
    roll = rng.random()
    if roll >= odds:
        return valid
    if roll < 0.75 * odds:
        return rng.choice(_ANY)
    return rng.choice(
        [
            rng.randint(-(2**70), 2**70),
            Decimal(rng.randint(-(10**9), 10**9)).scaleb(rng.randint(-30, 30)),
            rng.randbytes(5).decode("latin-1"),
        ]
    )


# === CODECS: (generate input, run it, expected error types, byte size) === #


class Codec:
    name = ""
    unit = "byte"  # what the time is divided by: a byte of input, or one input (encoders)
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, rng: random.Random):
        self.rng = rng

    def generate(self):
        raise NotImplementedError

    def run(self, item) -> str:
        """Decode or encode one input; returns the outcome's name."""
        raise NotImplementedError

    def size(self, item) -> int:
        return max(len(item), 1)

    def valid_inputs(self) -> list:
        raise NotImplementedError


def _dlt645_frames(rng: random.Random) -> list[bytes]:
    frames = []
    for i in range(300):
        address = f"{rng.randrange(10**12):012d}"
        item = rng.choice(list(dd.DATA_ITEMS_2007.values()))
        frames.append(dlt645.read_request(address, item.di, preamble=rng.randint(0, 4)))
        frames.append(dlt645.build_read_reply(address, 0x00010000, Decimal(i) / 100))
        frames.append(dlt645.build_error_reply(address, 0x11, 0x02))
        frames.append(
            dlt645.encode_frame(address, rng.randrange(256), rng.randbytes(rng.randint(0, 40)))
        )
    return frames


class Dlt645Frame(Codec):
    name = "dlt645_frame"
    errors = (dlt645.DLT645Error,)

    def __init__(self, rng):
        super().__init__(rng)
        self.pool = _dlt645_frames(rng)

    def generate(self):
        return bytes_input(self.rng, self.pool)

    def run(self, item):
        try:
            _used, frame = dlt645.decode(item)
        except dlt645.DLT645Error as exc:
            if not 0 < exc.used <= len(item):
                raise AssertionError(f"used {exc.used} out of 1..{len(item)}") from exc
            frame = None
        if frame is not None:
            for parse in (dlt645.parse_read_reply, dlt645.parse_request):
                try:
                    parse(frame)
                except dlt645.DLT645Error:
                    pass
            if dlt645.parse_frame(frame.encode()) != frame:
                raise AssertionError("frame does not round-trip")
        dlt645.parse_frame(item)
        return "frame" if frame else "none"

    def valid_inputs(self):
        return self.pool[:50]


class Dlt645Stream(Codec):
    """A stream of frames and garbage, fed to one ``Framer`` in random chunks."""

    name = "dlt645_stream"
    errors = ()

    def __init__(self, rng):
        super().__init__(rng)
        self.pool = _dlt645_frames(rng)

    def generate(self):
        rng = self.rng
        parts = [bytes_input(rng, self.pool, 40) for _ in range(rng.randint(1, 6))]
        stream = b"".join(parts)
        cuts = sorted(rng.randrange(len(stream) + 1) for _ in range(rng.randint(0, 5)))
        return stream, cuts

    def run(self, item):
        stream, cuts = item
        framer = dlt645.Framer()
        frames = 0
        previous = 0
        for cut in [*cuts, len(stream)]:
            frames += len(framer.feed(stream[previous:cut]))
            previous = cut
        framed = framer.discarded + framer.pending
        if framed > len(stream) or framer.steps > 4 * len(stream) + 50:
            raise AssertionError("framer accounting or work out of bounds")
        return f"{min(frames, 3)}{'+' if frames > 2 else ''} frames"

    def size(self, item):
        return max(len(item[0]), 1)

    def valid_inputs(self):
        return [(b"".join(self.pool[i : i + 5]), []) for i in range(0, 250, 5)]


class Dlt645Data(Codec):
    name = "dlt645_data"
    errors = (dlt645.DLT645Error,)

    def __init__(self, rng):
        super().__init__(rng)
        self.items = list(dd.DATA_ITEMS_2007.values()) + list(dd.DATA_ITEMS_1997.values())
        self.pool = []
        for item in self.items:
            for _ in range(20):
                raw = bytes(
                    rng.randrange(10) * 16 + rng.randrange(10) for _ in range(max(item.length, 1))
                )
                try:
                    dd.decode_value(item, raw)
                except dlt645.DLT645Error:
                    continue
                self.pool.append((item, raw))
                break

    def generate(self):
        rng = self.rng
        item, raw = rng.choice(self.pool)
        if rng.random() < 0.2:
            item = rng.choice(self.items)
        return item, bytes_input(
            rng, [r for _, r in self.pool[:200]], 40
        ) if rng.random() < 0.5 else mutate(rng, raw, [raw])

    def run(self, item):
        di, raw = item
        value = dd.decode_value(di, raw)
        try:
            again = dd.decode_value(di, dd.encode_value(di, value))
        except dlt645.DLT645Error:
            return "decoded, not re-encodable"
        if again != value:
            raise AssertionError(f"{di.di:08X}: {value!r} does not round-trip: {again!r}")
        return "decoded"

    def size(self, item):
        return max(len(item[1]), 1)

    def valid_inputs(self):
        return self.pool[:50]


class ModbusRtu(Codec):
    name = "modbus_rtu"
    errors = (modbus.ModbusCodecError,)

    def __init__(self, rng):
        super().__init__(rng)
        self.requests = [
            r
            for m in REGISTER_MAPS.values()
            for r in modbus.build_read_requests(rng.randint(1, 247), m)
        ]
        # every register each request asks for (maps reach up to 4000H and beyond)
        registers = {
            a: rng.randrange(65536)
            for r in self.requests
            for a in range(r.address, r.address + r.count)
        }
        self.responses = [modbus.answer_request(r, registers) for r in self.requests]
        writes = [(m, f.name) for m in REGISTER_MAPS.values() for f in m.fields if f.writable]
        self.writes = [modbus.build_write(1, m, name, 1) for m, name in writes]
        self.pool = (
            [bytes(r) for r in self.requests] + self.responses + [bytes(w) for w in self.writes]
        )

    def generate(self):
        rng = self.rng
        index = rng.randrange(len(self.requests))
        return index, bytes_input(rng, self.pool), rng.random() < 0.5

    def run(self, item):
        index, data, server = item
        used, frame = modbus.decode_frame(data, server=server)
        if not 0 <= used <= len(data):
            raise AssertionError("used out of range")
        outcome = "frame" if frame else "none"
        try:
            modbus.decode_read_response(data, self.requests[index])
            outcome += ", response decoded"
        except modbus.ModbusCodecError:
            pass
        try:
            modbus.answer_request(data, dict.fromkeys(range(200), 1))
        except modbus.ModbusCodecError:
            pass
        write = self.writes[index % len(self.writes)]
        try:
            modbus.check_write_response(data, write)
        except modbus.ModbusCodecError:
            pass
        return outcome

    def size(self, item):
        return max(len(item[1]), 1)

    def valid_inputs(self):
        return [(i, self.responses[i], False) for i in range(min(50, len(self.responses)))]


def _valid_messages(rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    for i in range(200):
        reading = ms.Reading(
            f"r-{i}",
            TS,
            Decimal(rng.randrange(10**8)) / 100,
            rng.choice(ms.RELAY_STATES),
            reverse_kwh=Decimal(i),
            tou_kwh={"peak": Decimal(i), "valley": Decimal("1.5")},
            voltage_v=Decimal("229.8"),
            current_a=Decimal("4.351"),
            power_kw=Decimal("-0.98"),
            pf=Decimal("0.98"),
            balance=Decimal("-12.3456"),
            status_word=i,
        )
        event = ms.Event(f"e-{i}", TS, "fault", code=i, detail=f"chip {i} é", relay="off")
        command = ms.Command(f"m-{i}", f"c-{i}", TS, "set_price", {"price": Decimal("0.651234")})
        ack = ms.Ack(f"a-{i}", TS, f"c-{i}", "failed", "on", error="busy", balance=Decimal(1))
        status = ms.Status(f"s-{i}", TS, "online")
        for message in (reading, event, command, ack, status):
            out.append((message.kind, ms.encode(message)))
    return out


class MqttParse(Codec):
    name = "mqtt_parse"
    errors = (ms.SchemaError,)

    def __init__(self, rng):
        super().__init__(rng)
        self.pool = _valid_messages(rng)
        self.payloads = [p for _, p in self.pool]

    def _json_mutation(self, payload: bytes) -> bytes:
        rng = self.rng
        obj = json.loads(payload)
        key = rng.choice([*list(obj), "extra"])
        value = rng.choice(
            [
                None,
                -1,
                10**400,
                "1e-20000",
                "\u0000",
                "\ud800",
                "x" * 300,
                [1],
                {"a": 1},
                True,
                "٠١",
            ]
        )
        text = json.dumps({**obj, key: value})
        for old, new in (('"1e-20000"', "1e-20000"), ('"\\u0000"', '"\\u0000"')):
            text = text.replace(old, new)
        return text.encode("utf-8", "surrogatepass")

    def generate(self):
        rng = self.rng
        kind, payload = rng.choice(self.pool)
        address = (
            METER
            if rng.random() < 0.8
            else rng.choice(["٠" * 12, "12", "+", "#", METER + "0", "\x00" * 12])
        )
        topic = (
            f"prepaid/v1/{address}/{kind}"
            if rng.random() < 0.9
            else rng.randbytes(8).decode("latin-1")
        )
        roll = rng.random()
        if roll < 0.3:
            payload = self._json_mutation(payload)
        elif roll < 0.9:
            payload = mutate(rng, payload, self.payloads)
        else:
            payload = rng.randbytes(rng.randint(0, 300))
        return topic, payload

    def run(self, item):
        topic, payload = item
        _address, message = ms.parse_message(topic, payload)
        if ms.decode(message.kind, ms.encode(message)) != message:
            raise AssertionError("a parsed message does not round-trip")
        return "parsed"

    def size(self, item):
        return max(len(item[1]), 1)

    def valid_inputs(self):
        return [(ms.topic_for(METER, kind), payload) for kind, payload in self.pool[:50]]


class MqttEncode(Codec):
    name = "mqtt_encode"
    errors = (ms.SchemaError,)

    def generate(self):
        rng = self.rng
        v = lambda valid: any_value(rng, valid, 0.15)  # noqa: E731
        kind = rng.randrange(5)
        if kind == 0:
            message = ms.Reading(
                v("r-1"), v(TS), v(Decimal("12.34")), v("on"), reverse_kwh=v(None),
                tou_kwh=v({"peak": v(Decimal(1))}), voltage_v=v(Decimal("230.1")),
                current_a=v(None), power_kw=v(None), pf=v(Decimal("0.9")), balance=v(None),
                status_word=v(0),
            )  # fmt: skip
        elif kind == 1:
            message = ms.Event(v("e-1"), v(TS), v("fault"), code=v(3), detail=v("x"), relay=v(None))
        elif kind == 2:
            params = v({"price": v(Decimal("0.65"))})
            message = ms.Command(v("m-1"), v("c-1"), v(TS), v("set_price"), params, expires=v(None))
        elif kind == 3:
            message = ms.Ack(
                v("a-1"),
                v(TS),
                v("c-1"),
                v("ok"),
                v("on"),
                error=v(None),
                balance=v(None),
                duplicate=v(False),
            )
        else:
            message = ms.Status(v("s-1"), v(TS), v("online"))
        return message, rng.random() < 0.7

    def run(self, item):
        message, validate = item
        payload = ms.encode(message, validate=validate)
        if len(payload) > ms.MAX_PAYLOAD_BYTES:
            raise AssertionError("payload over the limit")
        if validate and ms.decode(message.kind, payload) != ms.decode(
            message.kind, ms.encode(ms.decode(message.kind, payload))
        ):
            raise AssertionError("encoded payload does not round-trip")
        return "encoded"

    unit = "input"

    def size(self, item):
        return 1

    def valid_inputs(self):
        """One message of each kind with every field set, validated."""
        messages = [ms.decode(kind, payload) for kind, payload in _valid_messages(self.rng)[:5]]
        return [(message, True) for message in messages]


class TokensDecode(Codec):
    name = "tokens_decode"
    errors = (tokens.TokenError,)

    def __init__(self, rng):
        super().__init__(rng)
        self.binary = []
        self.keypad = []
        for i in range(1, 200):
            kind = rng.choice(list(tokens.TokenKind))
            amount = Decimal(rng.randint(1, 9999)) / 100 if kind in (0, 2) else Decimal(0)
            token = tokens.Token(METER, kind, amount, i)
            self.binary.append(tokens.encode_token(KEY, token))
            self.keypad.append(tokens.encode_keypad_token(KEY, token).encode())

    def generate(self):
        rng = self.rng
        form = rng.randrange(3)
        if form == 0:
            return 0, bytes_input(rng, self.binary, 60)
        if form == 1:
            text = bytes_input(rng, self.keypad, 30).decode("latin-1")
            return 1, text if rng.random() < 0.8 else text.translate(
                {48 + d: 0x660 + d for d in range(10)}
            )
        text = tokens.token_to_text(rng.choice(self.binary)).encode()
        return 2, bytes_input(rng, [text], 80).decode("latin-1")

    def run(self, item):
        form, data = item
        if form == 0:
            return f"binary {tokens.decode_token(KEY, METER, data).kind.name}"
        if form == 1:
            return f"keypad {tokens.decode_keypad_token(KEY, METER, data).kind.name}"
        return f"text {tokens.decode_token(KEY, METER, tokens.token_from_text(data)).kind.name}"

    def size(self, item):
        return max(len(item[1]), 1)

    def valid_inputs(self):
        return [(0, b) for b in self.binary[:25]] + [(1, k.decode()) for k in self.keypad[:25]]


class TokensEncode(Codec):
    name = "tokens_encode"
    errors = (tokens.TokenError,)

    def generate(self):
        rng = self.rng
        v = lambda valid: any_value(rng, valid, 0.3)  # noqa: E731
        kind = rng.choice(list(tokens.TokenKind))
        amount = Decimal(rng.randint(1, 9999)) / 100 if kind in (0, 2) else Decimal(0)
        token = tokens.Token(v(METER), v(kind), v(amount), v(rng.randint(1, 262143)))
        return token, rng.random() < 0.5

    def run(self, item):
        token, keypad = item
        if keypad:
            digits = tokens.encode_keypad_token(KEY, token)
            back = tokens.decode_keypad_token(KEY, METER, digits)
        else:
            back = tokens.decode_token(KEY, METER, tokens.encode_token(KEY, token))
        if (back.kind, back.amount, back.sequence) != (token.kind, token.amount, token.sequence):
            raise AssertionError("token does not round-trip")
        return "encoded"

    unit = "input"

    def size(self, item):
        return 1

    def valid_inputs(self):
        return [
            (tokens.Token(METER, tokens.TokenKind.CREDIT, Decimal("12.5"), i), i % 2 == 0)
            for i in range(1, 20)
        ]


CODECS = [
    Dlt645Frame,
    Dlt645Stream,
    Dlt645Data,
    ModbusRtu,
    MqttParse,
    MqttEncode,
    TokensDecode,
    TokensEncode,
]


# === RUNNING === #


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 120
_REPR.maxlevel = 3


def _show(item) -> str:
    try:
        return _REPR.repr(item)
    except Exception as exc:  # a hostile value may not even print
        return f"<{type(item).__name__}: repr failed with {type(exc).__name__}>"


def _best_time(codec: Codec, item, per: int) -> float:
    """Best of ``REPEATS`` runs of one input, per byte of ``max(its size, per)``."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        try:
            codec.run(item)
        except codec.errors:
            pass
        best = min(best, time.perf_counter() - start)
    return best / max(codec.size(item), per)


def fuzz(codec: Codec, count: int) -> tuple[dict, list[str]]:
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    slowest: list[tuple[float, int]] = []  # (seconds per byte, index) of the slowest
    kept: dict[int, object] = {}
    perf = time.perf_counter
    sizes = sorted(codec.size(item) for item in codec.valid_inputs())
    typical = sizes[len(sizes) // 2]  # a short input is charged as a typical one
    started = perf()
    for index in range(count):
        item = codec.generate()
        start = perf()
        try:
            outcomes[codec.run(item)] += 1
        except codec.errors as exc:
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # what the run is looking for
            outcomes[f"UNEXPECTED {type(exc).__name__}"] += 1
            if len(unexpected) < 10:
                unexpected.append(f"{type(exc).__name__}: {str(exc)[:200]} <- {_show(item)}")
        per_byte = (perf() - start) / max(codec.size(item), typical)
        if len(slowest) < SLOW_CANDIDATES or per_byte > slowest[0][0]:
            slowest.append((per_byte, index))
            kept[index] = item
            slowest.sort()
            if len(slowest) > SLOW_CANDIDATES:
                kept.pop(slowest.pop(0)[1], None)
    elapsed = perf() - started
    worst = max((_best_time(codec, kept[i], typical), i) for _, i in slowest)
    valid = sorted(_best_time(codec, item, typical) for item in codec.valid_inputs())
    valid_worst = valid[-1]  # the slowest valid input (e.g. a keypad token, not a binary one)
    return {
        "inputs": count,
        "seconds": elapsed,
        "outcomes": dict(outcomes.most_common()),
        "slowest_per_byte": worst[0],
        "slowest_input": _show(kept[worst[1]]),
        "valid_per_byte": valid_worst,
    }, unexpected


def _stream_rate(feed, data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        feed(data)
        best = min(best, time.perf_counter() - start)
    return best / len(data)


def _dlt645_feed(data: bytes, chunk: int = 4096) -> None:
    framer = dlt645.Framer()
    for i in range(0, len(data), chunk):
        framer.feed(data[i : i + chunk])


def _modbus_feed(data: bytes, chunk: int = 4096, server: bool = False) -> None:
    buffer = b""
    for i in range(0, len(data), chunk):
        buffer += data[i : i + chunk]
        while True:
            used, frame = modbus.decode_frame(buffer, server=server)
            buffer = buffer[used:]
            if frame is None:
                break


def streams(size: int) -> list[tuple[str, str, float, float]]:
    """ns per byte of hostile streams against a valid stream, for both framers."""
    rng = random.Random(645)
    reply = dlt645.build_read_reply("000000000001", 0x00010000, Decimal("123.45"))
    bad = reply[:-2] + bytes([reply[-2] ^ 1]) + reply[-1:]
    dlt = {
        "68H flood": b"\x68" * size,
        "68H x6 + 16H": (b"\x68" * 6 + b"\x16") * (size // 7),
        "headers L=200": (b"\x68" + bytes(6) + b"\x68\x00\xc8") * (size // 10),
        "bad checksums": bad * (size // len(bad)),
        "random": rng.randbytes(size),
    }
    request = bytes(modbus.build_read_requests(1, REGISTER_MAPS["acrel_prepaid_1p"])[0])
    response = modbus.answer_request(request, dict.fromkeys(range(200), 1))
    mb = {
        "03 F0 (245-byte claims)": b"\x03\xf0" * (size // 2),
        "exception codes": b"\x01\x83" * (size // 2),
        "10H flood": b"\x10" * size,
        "random": rng.randbytes(size),
    }
    rows = []
    valid = _stream_rate(_dlt645_feed, (reply * (size // len(reply) + 1))[:size])
    for name, data in dlt.items():
        rows.append(("dlt645 Framer", name, _stream_rate(_dlt645_feed, data), valid))
    valid = _stream_rate(_modbus_feed, (response * (size // len(response) + 1))[:size])
    for name, data in mb.items():
        rows.append(("modbus decode_frame", name, _stream_rate(_modbus_feed, data), valid))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000, help="inputs per codec")
    parser.add_argument("--codecs", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument(
        "--stream-bytes", type=int, default=1_000_000, help="size of the timed streams"
    )
    args = parser.parse_args(argv)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs what it cannot decode
    chosen = [c for c in CODECS if not args.codecs or c.name in args.codecs.split(",")]
    failed = False
    for cls in chosen:
        codec = cls(random.Random(f"{args.seed}-{cls.name}"))
        report, unexpected = fuzz(codec, args.count)
        ratio = report["slowest_per_byte"] / report["valid_per_byte"]
        print(
            f"{codec.name}: {report['inputs']:,} inputs in {report['seconds']:.1f} s; "
            f"slowest input {report['slowest_per_byte'] * 1e9:,.0f} ns/{codec.unit}, slowest "
            f"valid {report['valid_per_byte'] * 1e9:,.0f} ns/{codec.unit} (x{ratio:.1f})"
        )
        for outcome, n in report["outcomes"].items():
            print(f"    {n:>9,}  {outcome}")
        print(f"    slowest: {report['slowest_input']}")
        for line in unexpected:
            print(f"    UNEXPECTED {line}")
        failed |= bool(unexpected)
        sys.stdout.flush()
    if args.stream_bytes:
        print(f"streams of {args.stream_bytes:,} bytes fed by 4096 (ns/byte, best of 3):")
        for framer, name, rate, valid in streams(args.stream_bytes):
            line = f"{framer:20s} {name:24s} {rate * 1e9:8.1f}  valid {valid * 1e9:6.1f}"
            print(f"    {line}  x{rate / valid:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
