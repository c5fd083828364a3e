"""G2 MQTT schema for 4G meters: topics, payloads, typed errors with field paths (X1)."""

import json
from collections.abc import Mapping
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
    """Numbers are read as Decimal, never float: every decimal the store keeps survives."""
    raw = (
        b'{"v":1,"msg_id":"r","ts":"2025-01-31T12:00:00Z",'
        b'"forward_kwh":9999999999.9999,"relay":"off"}'
    )
    reading = decode("reading", raw)
    assert reading.forward_kwh == Decimal("9999999999.9999")
    assert float(reading.forward_kwh) != reading.forward_kwh  # a float would round it
    assert b"9999999999.9999" in encode(reading)


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


# === FIELD SAFETY (X1) === #

OTHER_DIGITS = [
    "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",  # Arabic-Indic
    "\uff10" * 12,  # fullwidth zeros
    "00001234567\u0969",  # one Devanagari digit
]


@pytest.mark.parametrize("address", OTHER_DIGITS)
def test_addresses_are_ascii_digits_only(address):
    assert address[:-1].isdigit()  # what \d would have let through
    with pytest.raises(SchemaError):
        topic_for(address, "reading")
    with pytest.raises(SchemaError):
        subscription("reading", address)
    with pytest.raises(SchemaError) as info:
        parse_topic(f"prepaid/v1/{address}/reading")
    assert info.value.path == "topic"


@pytest.mark.parametrize(
    "text",
    [
        "nul\u0000byte",
        "bell\u0007",
        "line\nbreak",
        "del\u007f",
        "c1\u0085",
        "lone \ud800",
        "\udfff",
    ],
)
def test_text_refuses_control_characters_and_lone_surrogates(text):
    event = {"v": 1, "msg_id": "e", "ts": "2025-01-31T12:00:00Z", "event": "fault", "code": 1}
    payload = json.dumps({**event, "detail": text}).encode()  # escaped: valid JSON
    with pytest.raises(SchemaError) as info:
        decode("event", payload)
    assert info.value.path == "detail"
    with pytest.raises(SchemaError):
        encode(Event("e", TS, "fault", code=1, detail=text))
    with pytest.raises(SchemaError):
        encode(Event("e", TS, "fault", code=1, detail=text), validate=False)


def test_text_keeps_printable_unicode():
    message = Event("e", TS, "fault", code=1, detail="Zähler 电表 ✓ \U0001f50c")
    assert decode("event", encode(message)) == message


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("forward_kwh", "1e-20000"),  # PostgreSQL numeric cannot store it
        ("forward_kwh", "1e400"),
        ("forward_kwh", "1E+10000000000"),
        ("forward_kwh", "0.00001"),  # the store keeps 4 decimals
        ("forward_kwh", "-0.0001"),
        ("reverse_kwh", "12.34567"),
        ("voltage_v", "229.815"),  # 2 decimals
        ("current_a", "4.3501"),  # 3 decimals
        ("pf", "0.9801"),
        ("power_kw", "100000.1"),
        ("balance", "1e13"),
        ("balance", "0.00005"),
        ("status_word", "4294967296"),
        ("status_word", "1" + "0" * 400),
    ],
)
def test_numbers_the_store_cannot_keep_are_refused(field, raw):
    payload = reading_payload()
    payload[field] = "@"
    wire = dumps(payload).replace(b'"@"', raw.encode())
    with pytest.raises(SchemaError) as info:
        decode("reading", wire)
    assert info.value.path == field


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("forward_kwh", "1234.5600000", Decimal("1234.56")),  # trailing zeros do not count
        ("forward_kwh", "1E+3", Decimal(1000)),
        ("voltage_v", "229.81", Decimal("229.81")),
        ("current_a", "4.351", Decimal("4.351")),
        ("balance", "-0.0001", Decimal("-0.0001")),
    ],
)
def test_numbers_within_the_store_precision_are_kept(field, raw, value):
    payload = reading_payload()
    payload[field] = "@"
    reading = decode("reading", dumps(payload).replace(b'"@"', raw.encode()))
    assert getattr(reading, field) == value
    assert -getattr(reading, field).as_tuple().exponent <= 4


def test_price_keeps_six_decimals():
    assert decode("cmd", command("set_price", {"price": 0.651234})).params["price"] == Decimal(
        "0.651234"
    )
    with pytest.raises(SchemaError) as info:
        decode("cmd", command("set_price", {"price": 0.6512345}))
    assert info.value.path == "params.price"


class _Weird(Mapping):
    """A mapping whose contents cannot be read."""

    def __init__(self, **_):
        pass

    def __getitem__(self, key):
        raise RuntimeError("broken mapping")

    def __iter__(self):
        raise RuntimeError("broken mapping")

    def __len__(self):
        return 1


_MALFORMED = [
    Reading("r", TS, Decimal("1e999999999"), "on"),  # its "f" form is a 1 GB string
    Reading("r", TS, Decimal("1e-999999999"), "on"),
    Reading("r", TS, Decimal("sNaN"), "on"),
    Reading("r", TS, Decimal("-Infinity"), "on"),
    Reading("r", TS, 1.5, "on"),
    Reading("r", TS, Decimal(1), "on", tou_kwh=5),
    Reading("r", TS, Decimal(1), "on", tou_kwh={1: Decimal(1)}),
    Reading("r", TS, Decimal(1), "on", tou_kwh=_Weird(peak=1)),
    Reading("r", TS, Decimal(1), "on", status_word=10**5000),  # str() of it: ValueError
    Reading("r", "2025-01-31", Decimal(1), "on"),
    Reading(object(), TS, Decimal(1), "on"),
    Reading("r", TS, Decimal(1), b"on"),
    Event("e", TS, "fault", code=1, detail="x" * 10_000_000),
    Event("e", TS, "fault", code=1, detail="\ud800"),  # UTF-8 cannot encode it
    Event("e", TS, "fault", code=1, detail=["nested"] * 2),
    Command("m", "c", TS, "set_price", params="price=1"),
    Command("m", "c", TS, "set_price", params={"price": {"deep": {"er": {"and": [[[[[1]]]]]}}}}),
    Command("m", "c", TS, "time_sync", params={"time": datetime(2025, 1, 1)}),
    Command("m", "c", TS, "relay_on", expires="tomorrow"),
    Status(
        "s", datetime(1, 1, 1, tzinfo=timezone(__import__("datetime").timedelta(hours=1))), "on"
    ),
    Ack("a", TS, "c", "ok", "on", duplicate=Decimal("sNaN")),
    Ack("a", TS, "c", "ok", "on", balance=Decimal("1E+5000")),
]


@pytest.mark.parametrize("message", _MALFORMED)
@pytest.mark.parametrize("validate", [True, False])
def test_encoders_raise_only_schema_errors(message, validate):
    try:
        payload = encode(message, validate=validate)
    except SchemaError as error:
        assert len(str(error)) < 300
        return
    assert not validate  # only an unvalidated payload may carry a value a receiver refuses
    assert len(payload) <= ms.MAX_PAYLOAD_BYTES
    payload.decode("utf-8")


def test_encode_refuses_what_is_not_a_message():
    for thing in (None, "reading", {"v": 1}, ms._Message()):
        with pytest.raises(SchemaError):
            encode(thing)


def test_recursive_params_are_refused():
    params: dict = {}
    params["self"] = params
    with pytest.raises(SchemaError):
        encode(Command("m", "c", TS, "relay_on", params=params), validate=False)


@pytest.mark.parametrize(
    "topic",
    [None, b"prepaid/v1/000012345678/reading", "prepaid/v1/" + "0" * 10**6 + "/reading", ""],
)
def test_parse_message_raises_only_schema_errors_on_any_topic(topic):
    with pytest.raises(SchemaError) as info:
        parse_message(topic, b"{}")
    assert len(str(info.value)) < 300


_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**200, max_value=2**14000),
    st.floats(),
    st.decimals(),
    st.decimals(places=8),
    st.builds(lambda e, m: Decimal(f"{m}E{e}"), st.integers(-(10**9), 10**9), st.integers(0, 99)),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xDFFF), max_size=10),
    st.binary(max_size=10),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5) | st.integers(), st.integers() | st.text(), max_size=3),
)


def _messages(any_value):
    """Every message class with each field drawn from ``any_value`` or from a valid value."""
    ok_ts = st.just(TS)
    return st.one_of(
        st.builds(
            Reading,
            st.just("r") | any_value,
            ok_ts | any_value,
            st.just(Decimal(1)) | any_value,
            st.just("on") | any_value,
            reverse_kwh=any_value,
            tou_kwh=any_value | st.dictionaries(st.sampled_from(ms.TOU_BANDS), any_value),
            voltage_v=any_value,
            pf=any_value,
            balance=any_value,
            status_word=any_value,
        ),
        st.builds(
            Event,
            st.just("e"),
            ok_ts | any_value,
            st.sampled_from(ms.EVENT_TYPES) | any_value,
            code=any_value,
            detail=any_value,
            relay=any_value,
        ),
        st.builds(
            Command,
            st.just("m"),
            st.just("c") | any_value,
            ok_ts,
            st.sampled_from(ms.COMMAND_TYPES),
            params=any_value
            | st.dictionaries(st.sampled_from(["price", "on", "time", "token"]), any_value),
            expires=any_value,
        ),
        st.builds(
            Ack,
            st.just("a"),
            ok_ts,
            st.just("c") | any_value,
            st.sampled_from(["ok", "failed"]),
            st.just("on") | any_value,
            error=any_value,
            balance=any_value,
            duplicate=any_value,
        ),
        st.builds(Status, any_value, ok_ts, st.sampled_from(["online", "offline"]) | any_value),
    )


@settings(max_examples=400, deadline=None)
@given(message=_messages(_ANY), validate=st.booleans())
def test_fuzz_encoders_raise_only_schema_errors(message, validate):
    try:
        payload = encode(message, validate=validate)
    except SchemaError:
        return
    assert len(payload) <= ms.MAX_PAYLOAD_BYTES
    if validate:
        assert decode(message.kind, payload) == decode(
            message.kind, encode(decode(message.kind, payload))
        )


_readings = st.builds(
    Reading,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", fullmatch=True),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(timezone.utc),
    ).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
    st.decimals(0, 10**10, places=4),
    st.sampled_from(ms.RELAY_STATES),
    reverse_kwh=st.none() | st.decimals(0, 10**10, places=2),
    tou_kwh=st.dictionaries(st.sampled_from(ms.TOU_BANDS), st.decimals(0, 10**10, places=4)),
    voltage_v=st.none() | st.decimals(0, 100000, places=2),
    current_a=st.none() | st.decimals(0, 100000, places=3),
    power_kw=st.none() | st.decimals(-100000, 100000, places=4),
    pf=st.none() | st.decimals(-1, 1, places=3),
    balance=st.none() | st.decimals(-(10**12), 10**12, places=4),
    status_word=st.none() | st.integers(0, 2**32 - 1),
)


@settings(max_examples=300, deadline=None)
@given(_readings)
def test_fuzz_valid_readings_round_trip(reading):
    payload = encode(reading)
    assert decode("reading", payload) == reading
    assert encode(reading, validate=False) == payload


_topics = st.one_of(
    st.builds(
        "prepaid/v1/{}/{}".format,
        st.text(alphabet="0123456789\u0660\uff10+#/", min_size=11, max_size=13),
        st.sampled_from(ms.KINDS) | st.text(max_size=8),
    ),
    st.text(max_size=60),
    st.binary(max_size=20),
    st.none(),
    st.integers(),
)


@settings(max_examples=300, deadline=None)
@given(topic=_topics, payload=st.binary(max_size=100) | st.text(max_size=100) | st.none())
def test_fuzz_parse_message_any_topic_and_payload(topic, payload):
    try:
        address, _message = parse_message(topic, payload)
    except SchemaError:
        return
    assert address.isascii() and address.isdigit() and len(address) == 12
