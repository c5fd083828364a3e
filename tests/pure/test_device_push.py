"""G5/X1: the device API's checks of a push, of command answers and of poll reports."""

from datetime import datetime
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_core import device_push as dp
from prepaid_core.device_push import DeviceApiError, Refusal
from prepaid_core.gateway_runner.mapping import EVENT_MAP

NOW = datetime(2030, 5, 1, 12, 0, 0)
READING_KEYS = frozenset({"address", "read_at", "forward_total", "voltage"})


# === MESSAGES === #
@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ([], "bad_payload", "the body must be a JSON object"),
        ({"readings": {}}, "bad_payload", "'readings' must be a list"),
        ({"clocks": [{}] * (dp.MAX_BATCH + 1)}, "batch_too_large", "at most 5000 clocks"),
        ({"readings": [], "events": []}, "bad_payload", "nothing to do"),
    ],
)
def test_a_malformed_push_is_refused_as_a_whole(payload, code, message):
    with pytest.raises(DeviceApiError) as caught:
        dp.push_lists(payload)
    assert caught.value.code == code and message in caught.value.message
    assert caught.value.to_dict()["error"]["code"] == code


def test_push_lists_are_the_message_lists_themselves():
    readings = [{"address": "1"}]
    lists = dp.push_lists({"readings": readings})
    assert lists["readings"] is readings
    assert lists == {"readings": readings, "events": [], "daily_frozen": [], "clocks": []}


@pytest.mark.parametrize("payload", [{"limit": 0}, {"limit": 1001}, {"limit": "5"}, [], None])
def test_fetch_limit_refused_out_of_range(payload):
    with pytest.raises(DeviceApiError, match="from 1 to 1000"):
        dp.fetch_limit(payload)


def test_fetch_limit_defaults_to_100():
    assert dp.fetch_limit({}) == 100 and dp.fetch_limit({"limit": 7}) == 7


# === TEXTS === #
def test_text_array_escapes_quotes_and_backslashes():
    assert dp.text_array([]) == "{}"
    assert dp.text_array(["a", "b"]) == '{"a","b"}'
    assert dp.text_array(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'


def test_device_text_escapes_nul_and_surrogates_and_cuts():
    assert dp.device_text("a\x00b", 10) == "a\\x00b"
    assert dp.device_text("x\ud800y", 10) == "x\\ud800y"
    assert dp.device_text("abcdef", 3) == "abc"
    assert dp.device_text(12, 3) == ""


def test_keys_text_names_five_and_counts_the_rest():
    assert dp.keys_text({"b", "a"}) == "a, b"
    assert dp.keys_text({f"k{i}" for i in range(7)}) == "k0, k1, k2, k3, k4 (and 2 more)"


# === TIMES === #
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2030-01-02 03:04:05", datetime(2030, 1, 2, 3, 4, 5)),
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5)),
        ("2030-01-02T03:04:05.123Z", datetime(2030, 1, 2, 3, 4, 5)),
        ("2030-01-02", datetime(2030, 1, 2)),
        (None, NOW),
        ("", NOW),
    ],
)
def test_parse_time_reads_utc_texts(value, expected):
    assert dp.parse_time(value, "event_at", NOW) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "bad time"),
        ("Z", "bad time"),
        (20300102, "bad time"),
        ("2030-01-02\n03:04:05", "bad time"),
        ("2" * 65, "bad time"),
        ("1999-12-31 23:59:59", "event_at: 1999-12-31 23:59:59 is not between 2000 and 2100"),
    ],
)
def test_parse_time_refuses_what_is_not_a_time_in_range(value, reason):
    with pytest.raises(DeviceApiError, match=reason):
        dp.parse_time(value, "event_at", NOW)


def test_required_time_must_be_given():
    with pytest.raises(ValueError, match="frozen_at: a time is required"):
        dp.required_time(None, "frozen_at")


# === READINGS === #
def test_check_readings_keeps_well_formed_rows_and_their_addresses():
    readings = [
        {"address": "001", "read_at": "2030-01-01", "forward_total": 1},
        {"address": 2, "read_at": "2030-01-01", "forward_total": 1},
    ]
    refused = []
    good, addresses = dp.check_readings(readings, refused, READING_KEYS)
    assert good == [0, 1] and addresses == {"001", "2"} and refused == []
    assert readings[1]["address"] == "2"  # a number becomes its text in the row


def test_check_readings_refuses_each_misshapen_row_with_its_reason():
    readings = [
        "not a dict",
        {"address": "001", "read_at": "t"},
        {"address": "002", "read_at": "t", "forward_total": 1, "colour": "red"},
        {"address": "bad\x01", "read_at": "t", "forward_total": 1},
        {"address": 1.5, "read_at": "t", "forward_total": 1},
        {"address": "003", "read_at": "t", "forward_total": 1},
    ]
    refused = []
    good, addresses = dp.check_readings(readings, refused, READING_KEYS)
    assert good == [5] and addresses == {"003"}
    assert refused[0] == Refusal(0, "not an object")
    assert refused[1] == Refusal(1, "missing forward_total", "001")
    assert refused[2] == Refusal(2, "unknown keys colour", "002")
    assert refused[3].index == 4 and "is not a text" in refused[3].reason
    assert refused[4].index == 3 and "control or invalid character" in refused[4].reason
    assert refused[4].address is None


@given(st.lists(st.text(max_size=70), max_size=20))
def test_check_readings_keeps_exactly_the_storable_addresses(texts):
    readings = [{"address": t, "read_at": "t", "forward_total": 1} for t in texts]
    refused = []
    good, addresses = dp.check_readings(readings, refused, READING_KEYS)
    for index, text in enumerate(texts):
        try:
            dp.to_address(text)
        except ValueError:
            assert index not in good
        else:
            assert index in good and text in addresses
    assert sorted(good + [r.index for r in refused]) == list(range(len(texts)))


# === EVENTS, DAILY FREEZES, CLOCKS (one checker) === #
@pytest.mark.parametrize(("key", "noun"), [(k, kind.noun) for k, kind in dp.ITEM_KINDS.items()])
def test_every_item_kind_needs_an_object_with_an_address(key, noun):
    refused = []
    assert dp.check_items(key, [None, {"address": ""}, {}], refused, NOW) == []
    assert [r.reason for r in refused] == [f"{noun} needs an address"] * 3


@pytest.mark.parametrize("key", ["daily_frozen", "clocks"])
def test_freezes_and_clocks_refuse_unknown_keys_with_their_address(key):
    refused = []
    dp.check_items(key, [{"address": "001", "zz": 1, "aa": 2}], refused, NOW)
    assert refused == [Refusal(0, "unknown keys aa, zz", "001")]


def test_events_are_parsed_with_now_for_a_missing_time():
    events = [
        {"address": 7, "event_type": "tamper_cover", "event_id": "e-1", "code": 12},
        {"address": "001", "event_type": "fault", "reason": "", "event_at": "2030-01-01T00:00:00Z"},
    ]
    refused = []
    parsed = dp.check_items("events", events, refused, NOW)
    assert refused == []
    assert parsed == [
        (
            0,
            {
                "address": "7",
                "event_type": "tamper_cover",
                "event_id": "e-1",
                "event_at": NOW,
                "reason": None,
                "code": "12",
            },
        ),
        (
            1,
            {
                "address": "001",
                "event_type": "fault",
                "event_id": None,
                "event_at": datetime(2030, 1, 1),
                "reason": None,
                "code": None,
            },
        ),
    ]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"event_type": "explode"}, "unknown event_type 'explode'"),
        ({"event_type": "fault", "event_id": ""}, "event_id must be 1-128 characters"),
        ({"event_type": "fault", "event_id": "a\x01"}, "control or invalid character"),
        ({"event_type": "fault", "event_at": "soon"}, "bad time 'soon'"),
        ({"event_type": "fault", "reason": "x" * 1001}, "longer than 1000 characters"),
        ({"event_type": "fault", "code": "c\x00"}, "control or invalid character"),
    ],
)
def test_events_refused_with_the_reason_and_their_address(event, reason):
    refused = []
    assert dp.check_items("events", [{"address": "001", **event}], refused, NOW) == []
    assert refused[0].address == "001" and reason in refused[0].reason


def test_freezes_parse_energies_the_total_required():
    refused = []
    frozen = [
        {"address": "001", "frozen_at": "2030-01-01 00:00:00", "forward_total": "12.5"},
        {"address": "002", "frozen_at": "2030-01-01 00:00:00", "tou_peak": 1},
        {"address": "003", "forward_total": 1},
    ]
    parsed = dp.check_items("daily_frozen", frozen, refused, NOW)
    assert parsed == [
        (0, {"address": "001", "frozen_at": datetime(2030, 1, 1), "forward_total": D("12.5")})
    ]
    assert [(r.index, r.address) for r in refused] == [(1, "002"), (2, "003")]
    assert "frozen_at: a time is required" in refused[1].reason


@pytest.mark.parametrize("drift", [1.5, "3", True, dp.MAX_DRIFT_SECONDS + 1])
def test_clocks_refuse_a_drift_that_is_not_a_measurement(drift):
    refused = []
    clock = {"address": "001", "checked_at": "2030-01-01 00:00:00", "drift_seconds": drift}
    assert dp.check_items("clocks", [clock], refused, NOW) == []
    assert "drift_seconds must be an integer" in refused[0].reason


def test_clocks_keep_a_null_drift_but_need_the_key():
    refused = []
    clocks = [
        {"address": "001", "checked_at": "2030-01-01 00:00:00", "drift_seconds": None},
        {"address": "002", "checked_at": "2030-01-01 00:00:00"},
    ]
    parsed = dp.check_items("clocks", clocks, refused, NOW)
    assert parsed == [
        (0, {"address": "001", "checked_at": datetime(2030, 1, 1), "drift_seconds": None})
    ]
    assert refused[0].index == 1


# === COMMAND ANSWERS === #
def test_acks_parsed_with_defaults_and_outcomes():
    acks = dp.parse_acks(
        {
            "acks": [
                {"id": 1, "address": "001", "success": True},
                {"id": 2, "success": False, "delivered": False},
                {"id": 3, "success": False, "permanent": True, "reason": "no\x00"},
                {"id": 4, "success": False, "delivered": False, "permanent": True},
            ]
        }
    )
    assert acks[0] == dp.Ack(1, "001", True, "done", None, True, False)
    assert [ack.outcome for ack in acks] == ["result", "requeue", "fail", "fail"]
    assert acks[1].reason == "failed" and acks[2].reason == "no\\x00"


@pytest.mark.parametrize(
    "ack",
    [
        [],
        {"id": True, "success": True},
        {"id": "1", "success": True},
        {"id": 1, "success": 1},
        {"id": 1, "success": True, "relay_state": "open"},
        {"id": 1, "success": True, "delivered": "no"},
        {"id": 1, "success": True, "permanent": None},
    ],
)
def test_a_malformed_ack_refuses_the_message_with_its_index(ack):
    with pytest.raises(DeviceApiError) as caught:
        dp.parse_acks({"acks": [{"id": 9, "success": True}, ack]})
    assert caught.value.details == [
        {"acks": 1, "reason": "needs an integer 'id' and a boolean 'success'"}
    ]


# === POLL REPORTS === #
def test_poll_report_parsed():
    report = dp.parse_poll_report(
        {
            "started_at": "2030-01-01T00:00:00Z",
            "answered": ["001"],
            "failed": [{"address": "002", "error": "timeout"}],
            "connected": True,
            "errors": ["e"],
            "seconds": 3,
            "stored": "4",
        },
        NOW,
    )
    assert report == dp.PollReport(
        datetime(2030, 1, 1), ["001"], {"002": "timeout"}, True, {"e"}, 3.0, 4
    )
    assert dp.parse_poll_report({}, NOW).started_at == NOW


def test_poll_report_problems_all_named():
    with pytest.raises(DeviceApiError) as caught:
        dp.parse_poll_report(
            {
                "answered": [1],
                "failed": [{"address": "002"}],
                "connected": "yes",
                "errors": "e",
                "seconds": True,
            },
            NOW,
        )
    assert [next(iter(p)) for p in caught.value.details] == [
        "answered",
        "failed",
        "connected",
        "errors",
        "seconds",
    ]


def test_every_event_the_runner_forwards_is_a_device_event():
    assert set(EVENT_MAP.values()) <= dp.DEVICE_EVENTS
    assert dp.CONNECTION_EVENTS.keys() <= dp.DEVICE_EVENTS
    assert "zeroing" in dp.DEVICE_EVENTS and "zeroed" not in dp.DEVICE_EVENTS
