"""G2 MQTT schema for 4G meters: topics, payloads, typed errors with field paths (X1)."""

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core.protocols import mqtt_schema as ms
from prepaid_core.protocols.mqtt_schema import (
    Ack,
    Command,
    Event,
    Reading,
    SchemaError,
    Status,
    decode,
    encode,
    parse_message,
    parse_topic,
    subscription,
    topic_for,
)

ADDR = "000012345678"
TS = datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)


def reading_payload(**changes):
    payload = {
        "v": 1,
        "msg_id": "r-1",
        "ts": "2025-01-31T12:00:00Z",
        "forward_kwh": 1234.56,
        "reverse_kwh": 0.5,
        "tou_kwh": {"sharp": 100.1, "peak": 400, "flat": 500, "valley": 234.46},
        "voltage_v": 229.8,
        "current_a": 4.35,
        "power_kw": 0.98,
        "pf": 0.98,
        "balance": -3.25,
        "relay": "on",
        "status_word": 0,
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not Ellipsis}


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


# === TOPICS === #


def test_topics():
    assert topic_for(ADDR, "reading") == "prepaid/v1/000012345678/reading"
    assert parse_topic("prepaid/v1/000012345678/cmd") == (ADDR, "cmd")
    assert subscription("ack") == "prepaid/v1/+/ack"
    assert subscription("cmd", ADDR) == "prepaid/v1/000012345678/cmd"
    assert set(ms.SERVER_SUBSCRIPTIONS) == {
        "prepaid/v1/+/reading",
        "prepaid/v1/+/event",
        "prepaid/v1/+/ack",
        "prepaid/v1/+/status",
    }


@pytest.mark.parametrize(
    "topic",
    [
        "prepaid/v2/000012345678/reading",
        "prepaid/v1/00001234567/reading",
        "prepaid/v1/000012345678/readings",
        "prepaid/v1/000012345678/reading/x",
        "other/v1/000012345678/reading",
        "prepaid/v1/+/reading",
        "",
    ],
)
def test_bad_topics(topic):
    with pytest.raises(SchemaError) as info:
        parse_topic(topic)
    assert info.value.path == "topic"


def test_topic_for_refuses_bad_address_and_kind():
    with pytest.raises(SchemaError):
        topic_for("12", "reading")
    with pytest.raises(SchemaError):
        topic_for(ADDR, "readings")


# === ROUND TRIPS === #


def test_reading_decodes_with_decimals():
    address, reading = parse_message(topic_for(ADDR, "reading"), dumps(reading_payload()))
    assert address == ADDR
    assert isinstance(reading, Reading)
    assert reading.forward_kwh == Decimal("1234.56")
    assert isinstance(reading.forward_kwh, Decimal)
    assert reading.tou_kwh == {
        "sharp": Decimal("100.1"),
        "peak": Decimal(400),
        "flat": Decimal(500),
        "valley": Decimal("234.46"),
    }
    assert reading.balance == Decimal("-3.25")
    assert reading.ts == TS


def test_decimal_precision_is_kept():
    raw = (
        b'{"v":1,"msg_id":"r","ts":"2025-01-31T12:00:00Z",'
        b'"forward_kwh":0.1000000000000000055511,"relay":"off"}'
    )
    reading = decode("reading", raw)
    assert reading.forward_kwh == Decimal("0.1000000000000000055511")
    assert b"0.1000000000000000055511" in encode(reading)


@pytest.mark.parametrize(
    "message",
    [
        Reading("r-2", TS, Decimal("12.34"), "off", balance=Decimal("-1.0000")),
        Event("e-1", TS, "fault", code=17, detail="metering chip", relay="off"),
        Event("e-2", TS, "tamper_magnet"),
        Command("m-1", "c-1", TS, "relay_off"),
        Command("m-2", "c-2", TS, "set_price", {"price": Decimal("0.6512")}, expires=TS),
        Command("m-3", "c-3", TS, "set_thresholds", {"alarm1": Decimal(20), "alarm2": Decimal(5)}),
        Command("m-4", "c-4", TS, "time_sync", {"time": TS}),
        Command("m-5", "c-5", TS, "credit_token", {"token": "1" * 20}),
        Command("m-6", "c-6", TS, "credit_token", {"token": "A" * 64}),
        Command("m-7", "c-7", TS, "protect", {"on": True}),
        Ack("a-1", TS, "c-1", "ok", "off", balance=Decimal("5.5")),
        Ack("a-2", TS, "c-2", "failed", "on", error="expired", duplicate=True),
        Status("s-1", TS, "offline"),
    ],
)
def test_round_trip(message):
    payload = encode(message)
    assert decode(message.kind, payload) == message
    obj = json.loads(payload)
    assert obj["v"] == 1 and obj["msg_id"] == message.msg_id


def test_ts_with_fraction_and_offset():
    reading = decode("reading", dumps(reading_payload(ts="2025-01-31T12:00:00.5+00:00")))
    assert reading.ts == TS.replace(microsecond=500000)
    assert ms.format_ts(reading.ts) == "2025-01-31T12:00:00.500Z"


# === ERRORS WITH PATHS === #


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"msg_id": ...}, "msg_id"),
        ({"msg_id": ""}, "msg_id"),
        ({"msg_id": "x" * 65}, "msg_id"),
        ({"msg_id": "a b"}, "msg_id"),
        ({"ts": "2025-01-31 12:00:00"}, "ts"),
        ({"ts": "2025-01-31T12:00:00"}, "ts"),
        ({"ts": "2025-01-31T12:00:00+01:00"}, "ts"),
        ({"ts": "2025-02-30T12:00:00Z"}, "ts"),
        ({"ts": 1738324800}, "ts"),
        ({"forward_kwh": ...}, "forward_kwh"),
        ({"forward_kwh": "12.5"}, "forward_kwh"),
        ({"forward_kwh": -1}, "forward_kwh"),
        ({"forward_kwh": True}, "forward_kwh"),
        ({"forward_kwh": 1e20}, "forward_kwh"),
        ({"tou_kwh": {"peak": -1}}, "tou_kwh.peak"),
        ({"tou_kwh": {"noon": 1}}, "tou_kwh.noon"),
        ({"tou_kwh": [1, 2]}, "tou_kwh"),
        ({"pf": 1.5}, "pf"),
        ({"relay": "closed"}, "relay"),
        ({"relay": ...}, "relay"),
        ({"status_word": 1.5}, "status_word"),
        ({"extra": 1}, "extra"),
    ],
)
def test_reading_errors_name_the_field(changes, path):
    with pytest.raises(SchemaError) as info:
        decode("reading", dumps(reading_payload(**changes)))
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


def command(cmd, params=None, **extra):
    obj = {"v": 1, "msg_id": "m-1", "cmd_id": "c-1", "ts": "2025-01-31T12:00:00Z", "cmd": cmd}
    if params is not None:
        obj["params"] = params
    obj.update(extra)
    return dumps({key: value for key, value in obj.items() if value is not Ellipsis})


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (command("explode"), "cmd"),
        (command("set_price"), "params.price"),
        (command("set_price", {"price": 0}), "params.price"),
        (command("set_price", {"price": "1"}), "params.price"),
        (command("set_price", {"price": 1, "currency": "EUR"}), "params.currency"),
        (command("set_thresholds", {"alarm1": 1, "alarm2": 5}), "params.alarm1"),
        (command("set_thresholds", {"alarm1": 10}), "params.alarm2"),
        (command("protect", {"on": 1}), "params.on"),
        (command("time_sync", {"time": "yesterday"}), "params.time"),
        (command("credit_token", {"token": "123"}), "params.token"),
        (command("relay_on", {"now": True}), "params.now"),
        (command("relay_on", "on"), "params"),
        (command("relay_on", cmd_id=...), "cmd_id"),
        (command("relay_on", expires="soon"), "expires"),
    ],
)
def test_command_errors_name_the_field(payload, path):
    with pytest.raises(SchemaError) as info:
        decode("cmd", payload)
    assert info.value.path == path


def test_fault_event_needs_code_and_failed_ack_needs_error():
    with pytest.raises(SchemaError) as info:
        decode(
            "event", dumps({"v": 1, "msg_id": "e", "ts": "2025-01-31T12:00:00Z", "event": "fault"})
        )
    assert info.value.path == "code"
    ack = {
        "v": 1,
        "msg_id": "a",
        "ts": "2025-01-31T12:00:00Z",
        "cmd_id": "c",
        "result": "failed",
        "relay": "on",
    }
    with pytest.raises(SchemaError) as info:
        decode("ack", dumps(ack))
    assert info.value.path == "error"


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b"null",
        b'{"v": NaN}',
        b'{"v": Infinity}',
        b'{"v": 1, "v": 1}',
        b"[" * 3000,
        b'{"v": 1, "pad": "' + b"x" * 5000 + b'"}',
        b'{"v": 1e999999999}',
        b'{"v": 1' + b"0" * 4400 + b"}",
    ],
)
def test_malformed_payloads(payload):
    with pytest.raises(SchemaError):
        decode("reading", payload)


def test_unknown_kind():
    with pytest.raises(SchemaError):
        decode("telemetry", b"{}")


def test_encode_refuses_invalid_messages():
    with pytest.raises(SchemaError) as info:
        encode(Reading("r", TS, Decimal(-1), "on"))
    assert info.value.path == "forward_kwh"
    with pytest.raises(SchemaError):
        encode(Reading("r", TS, Decimal("NaN"), "on"))
    with pytest.raises(SchemaError):
        encode(Status("s", datetime(2025, 1, 1), "online"))  # naive time


# === FUZZ === #

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(ms.KINDS), payload=st.binary(max_size=200))
def test_fuzz_random_bytes_only_schema_errors(kind, payload):
    try:
        decode(kind, payload)
    except SchemaError:
        pass


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(ms.KINDS), obj=_json)
def test_fuzz_random_json_only_schema_errors(kind, obj):
    try:
        decode(kind, json.dumps(obj))
    except SchemaError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(reading_payload())),
    value=_json,
)
def test_fuzz_mutated_reading_only_schema_errors(key, value):
    try:
        message = decode("reading", dumps(reading_payload(**{key: value})))
    except SchemaError as error:
        assert error.path.split(".")[0] in (key, "")
        return
    assert decode("reading", encode(message)) == message
