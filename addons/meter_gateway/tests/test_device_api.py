import contextlib
import hashlib
import hmac
import json
import time
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.prepaid_meter.models.prepaid_meter_reading import LARGE_BATCH
from odoo.addons.prepaid_meter.models.prepaid_meter_reading_rejection import MAX_PAYLOAD
from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon

from prepaid_core import readings as validation

from ..models.prepaid_gateway import (
    CLOCK_KEYS,
    FROZEN_KEYS,
    MAX_BATCH,
    PUSH_KINDS,
    PUSHED_READING_KEYS,
    DeviceApiError,
)

PUSH = "/meter_gateway/api/v1/push"
FETCH = "/meter_gateway/api/v1/commands/fetch"
ACK = "/meter_gateway/api/v1/commands/ack"
KEY = "test-gateway-key-0123456789"
HOSTILE = '"@hostile@"'

#: (key, the value as JSON text, what the reason says): one of each kind of value the
#: store cannot keep, in each place of a reading (X1)
HOSTILE_READINGS = [
    ("forward_total", '"1e-20000"', "more than 20 decimals"),
    ("forward_total", '"1E+20000"', "out of range"),
    ("forward_total", '"1e999999"', "out of range"),
    ("forward_total", "1e400", "not a finite number"),
    ("forward_total", "NaN", "not a finite number"),
    ("forward_total", "-Infinity", "not a finite number"),
    ("forward_total", '"Infinity"', "not a finite number"),
    ("forward_total", "1" + "0" * 40, "out of range"),
    ("forward_total", "1" * 5000, "not a finite number"),
    ("forward_total", "1e13", "out of range"),
    ("forward_total", '"0.000000000000000000001"', "more than 20 decimals"),
    ("forward_total", '"' + "9" * 100 + '"', "too long for a number"),
    ("forward_total", "-1", "is negative"),
    ("forward_total", "true", "not a number"),
    ("forward_total", '{"kwh": 1}', "not a number"),
    ("forward_total", "[1]", "not a number"),
    ("forward_total", "[" * 500 + "]" * 500, "not a number"),
    ("forward_total", '"12\\u0000"', "not a number"),
    ("reverse_total", '"1e-20000"', "more than 20 decimals"),
    ("voltage", "1e9", "out of range"),
    ("voltage", '"1E-20000"', "too small to store"),
    ("voltage", "1e-300", "more than 20 decimals"),
    ("current", "true", "not a number"),
    ("power_factor", "5000", "out of range"),
    ("meter_balance", "-1e13", "out of range"),
    ("tou_peak", "NaN", "not a finite number"),
    ("status_word", "4294967296", "out of range"),
    ("status_word", "1" + "0" * 30, "not an integer"),  # (a double: beyond 64 bits)
    ("status_word", "1e400", "not an integer"),
    ("status_word", "true", "not an integer"),
    ("status_word", "3.5", "not an integer"),
    ("read_at", '"0001-01-01T00:00:00+01:00"', "out of range"),
    ("read_at", '"9999-12-31T23:59:59-01:00"', "out of range"),
    ("read_at", '"2200-01-01T00:00:00Z"', "not between 2000 and 2100"),
    ("read_at", '"1999-12-31T23:59:59Z"', "not between 2000 and 2100"),
    ("read_at", '"2026-13-45T00:00:00Z"', "not an ISO 8601"),
    ("read_at", '"2026-03-02T00:00:00\\u0000"', "not a date and time"),
    ("read_at", '"' + "2" * 10000 + '"', "not a date and time"),
    ("read_at", '{"at": 1}', "not a date and time"),
    ("relay_state", '"\\u0000"', "not on or off"),
    ("relay_state", '["on"]', "not on or off"),
    ("address", '"\\u0000"', "control or invalid character"),
    ("address", '"\\ud800"', "control or invalid character"),
    ("address", '"' + "1" * 100 + '"', "longer than 64 characters"),
    ("address", '{"a": 1}', "not a text"),
    ("address", "1" + "0" * 70, "not a text"),
    ('"colo\\u0000ur"', '"red"', "unknown keys colo\\x00ur"),
]
HOSTILE_EVENTS = [
    ("event_type", '["tamper_cover"]', "unknown event_type"),
    ("event_type", '"nope\\u0000"', "unknown event_type"),
    ("event_at", '"0001-01-01 00:00:00"', "not between 2000 and 2100"),
    ("event_at", '"9999-12-31T23:59:59Z"', "not between 2000 and 2100"),
    ("event_at", "12", "bad time"),
    ("event_at", '"\\ud800"', "bad time"),
    ("event_at", '"2026-03-02 00:00:00\\u0000"', "bad time"),
    ("reason", '"a\\u0000b"', "control or invalid character"),
    ("reason", '"' + "x" * 2000 + '"', "longer than 1000 characters"),
    ("code", '{"c": 1}', "not a text"),
    ("code", '"\\ud800"', "control or invalid character"),
    ("event_id", '""', "event_id must be 1-128 characters"),
    ("event_id", '"e\\u0000"', "control or invalid character"),
    ("event_id", "1e400", "event_id must be 1-128 characters"),
    ("address", '"\\u0000"', "control or invalid character"),
    ("address", "null", "an event needs an address"),
]
HOSTILE_FROZEN = [
    ("forward_total", '"1e-20000"', "more than 20 decimals"),
    ("forward_total", "1e400", "not a finite number"),
    ("forward_total", '"1e999999"', "out of range"),
    ("tou_peak", "NaN", "not a finite number"),
    ("frozen_at", '"9999-12-31 23:59:59"', "not between 2000 and 2100"),
    ("frozen_at", '"0001-01-01 00:00:00"', "not between 2000 and 2100"),
    ("address", '"\\ud800"', "control or invalid character"),
    ("colour", '"red"', "unknown keys colour"),
]
HOSTILE_CLOCKS = [
    ("drift_seconds", "1099511627776", "drift_seconds must be an integer"),
    ("drift_seconds", "true", "drift_seconds must be an integer"),
    ("drift_seconds", "1e400", "drift_seconds must be an integer"),
    ("checked_at", '"0001-01-01 00:00:00"', "not between 2000 and 2100"),
    ("checked_at", '"9999-12-31T23:59:59Z"', "not between 2000 and 2100"),
    ("address", '"a\\u0000"', "control or invalid character"),
]
#: any value a JSON message can carry (and a few the store cannot keep)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(
        ["1e-20000", "1e999999", "NaN", "Infinity", "\x00", "\ud800", "2147483648", "9" * 70]
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


class DeviceApiPost:
    """Posts to the device API as the test class's gateway."""

    def _post(self, url, payload, message_id="m-1", key=KEY, gateway=None, raw=None, headers=None):
        all_headers = {
            "Content-Type": "application/json",
            "X-Gateway-Id": str((gateway or self.gateway).id),
            "X-Api-Key": key,
            "X-Message-Id": message_id,
            **(headers or {}),
        }
        body = raw if raw is not None else json.dumps(payload)
        return self.url_open(url, data=body, headers=all_headers)


@tagged("post_install", "-at_install")
class TestDeviceApi(DeviceApiPost, HttpCase, PrepaidMeterCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway._set_api_key(KEY)
        cls.meter2 = cls._create_meter("Power T-102", "000000000102", cls.unit2)
        cls.other_gateway = cls.env["prepaid.gateway"].create(
            {"name": "Other", "gateway_type": "mqtt", "site_id": cls.site.id}
        )
        cls.other_gateway._set_api_key("other-key")
        cls.foreign = cls.env["prepaid.meter"].create(
            {
                "name": "Foreign",
                "address": "000000000999",
                "model_id": cls.ddsy.id,
                "unit_id": cls.unit2.id,
                "gateway_id": cls.other_gateway.id,
                "state": "in_service",
            }
        )

    def _readings(self, meter=None):
        return self.env["prepaid.meter.reading"].search(
            [("meter_id", "=", (meter or self.meter).id)]
        )

    def _rejections(self, kind=None):
        domain = [("gateway_id", "=", self.gateway.id)] + ([("kind", "=", kind)] if kind else [])
        return self.env["prepaid.meter.reading.rejection"].search(domain)

    def _batch(self):
        return {
            "readings": [
                {
                    "address": self.meter.address,
                    "read_at": "2026-03-02T00:00:00Z",
                    "forward_total": 10.5,
                    "relay_state": "on",
                },
                {
                    "address": self.meter.address,
                    "read_at": "2026-03-02T00:30:00Z",
                    "forward_total": 11.25,
                    "power": 1.2,
                },
            ],
            "events": [{"address": self.meter.address, "event_type": "tamper_cover", "code": "C1"}],
        }

    def test_event_delivered_again_under_another_message_is_logged_once(self):
        """A runner killed after Odoo's commit but before its broker acknowledgement gets
        the events again and posts them in another batch (another message id): events
        with an ``event_id`` already logged are skipped, a newer relay state is not
        overwritten by an older one."""
        now = fields.Datetime.now()

        def at(seconds):
            return (now + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

        events = [
            {
                "address": self.meter.address,
                "event_type": "tamper_cover",
                "event_at": at(1),
                "event_id": "e-17",
            },
            {
                "address": self.meter.address,
                "event_type": "relay_off",
                "event_at": at(2),
                "event_id": "e-18",
            },
        ]
        first = self._post(PUSH, {"events": events}, message_id="mqtt-a")
        self.assertEqual(first.json()["events"], 2, first.text)
        # newer news of the relay meanwhile
        self.meter._record_actual_relay("on", at=now + timedelta(seconds=3))
        again = [
            *events,
            {
                "address": self.meter.address,
                "event_type": "tamper_cleared",
                "event_at": at(4),
                "event_id": "e-19",
            },
        ]
        response = self._post(PUSH, {"events": again}, message_id="mqtt-b")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual((response.json()["events"], response.json()["duplicate_events"]), (1, 2))
        logged = self.meter.event_ids.filtered("device_event_id")
        self.assertEqual(
            sorted(logged.mapped("event_type")), ["relay_off", "tamper_cleared", "tamper_cover"]
        )
        self.assertEqual(sorted(logged.mapped("device_event_id")), ["e-17", "e-18", "e-19"])
        self.assertEqual(self.meter.actual_relay_state, "on")
        # an empty event id is refused (the event alone), kept with its reason
        bad = self._post(
            PUSH,
            {"events": [dict(events[0], event_id="")]},
            message_id="mqtt-c",
        )
        self.assertEqual(bad.status_code, 200, bad.text)
        self.assertEqual(
            bad.json()["rejected"], [{"events": 0, "reason": "event_id must be 1-128 characters"}]
        )
        self.assertEqual(self._rejections("event").meter_id, self.meter)

    def test_push_then_replay_changes_nothing(self):
        response = self._post(PUSH, self._batch())
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["stored"], 2)
        self.assertEqual(response.json()["events"], 1)
        self.assertEqual(self._readings().mapped("forward_total"), [11.25, 10.5])
        events = self.meter.event_ids.filtered(lambda e: e.event_type == "tamper_cover")
        self.assertEqual((len(events), events.source, events.code), (1, "device", "C1"))
        self.assertEqual(self.gateway.connection_state, "online")
        # the same message again, even with a different body: same answer, nothing changes
        changed = self._batch()
        changed["readings"][0]["forward_total"] = 99
        replay = self._post(PUSH, changed)
        self.assertEqual(replay.status_code, 200)
        self.assertEqual(replay.headers.get("X-Idempotent-Replay"), "1")
        self.assertEqual(replay.json(), response.json())
        self.assertEqual(len(self._readings()), 2)
        self.assertEqual(
            len(self.meter.event_ids.filtered(lambda e: e.event_type == "tamper_cover")), 1
        )
        message = self.env["meter.gateway.message"].search([("gateway_id", "=", self.gateway.id)])
        self.assertEqual((len(message), message.replay_count), (1, 1))

    def test_meters_found_by_any_address(self):
        """G5: the addresses of a push go to PostgreSQL as one array literal: quotes,
        backslashes, commas and braces are looked up as they are."""
        Meter = self.env["prepaid.meter"]
        odd = ['a"b', "c\\d", "e,f", "{g}", "NULL", " h ", ""]
        # devices name meters by 12 digits; older rows may hold anything (no constraint ran)
        self.env.cr.execute(
            "UPDATE prepaid_meter SET address = %s WHERE id = %s", [odd[0], self.meter.id]
        )
        meters = {odd[0]: self.meter.id}
        for index, address in enumerate(odd[1:]):
            meter = Meter.create(
                {
                    "name": f"Odd {index}",
                    "address": f"0000000077{index:02d}",
                    "model_id": self.ddsy.id,
                    "gateway_id": self.gateway.id,
                    "state": "in_service",
                }
            )
            self.env.cr.execute(
                "UPDATE prepaid_meter SET address = %s WHERE id = %s", [address, meter.id]
            )
            meters[address] = meter.id
        Meter.invalidate_model(["address"])
        found = self.gateway._api_meters_by_address([*odd, 'a"b"', "c\\\\d", "x", "e"])
        self.assertEqual(found, meters)
        self.assertEqual(self.gateway._api_meters_by_address([]), {})
        self.assertEqual(self.gateway._api_meters_by_address(["000000000999"]), {})

    def test_wrong_key_refused(self):
        for kwargs in (
            {"key": "wrong"},
            {"key": ""},
            {"key": "other-key"},  # another gateway's key
        ):
            response = self._post(PUSH, self._batch(), **kwargs)
            self.assertEqual(response.status_code, 401)
            self.assertEqual(response.json()["error"]["code"], "unauthorized")
        response = self.url_open(PUSH, data=json.dumps(self._batch()))
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self._readings())
        self.assertFalse(self.env["meter.gateway.message"].search([]))

    def test_hmac_signature_and_time_window(self):
        body = json.dumps(self._batch()).encode()
        secret = hashlib.sha256(KEY.encode()).hexdigest().encode()

        def signed(timestamp, message_id):
            signature = hmac.new(
                secret, f"{timestamp}.{message_id}.".encode() + body, hashlib.sha256
            ).hexdigest()
            return {"X-Timestamp": str(timestamp), "X-Signature": signature}

        old = int(time.time()) - 3600
        response = self._post(PUSH, None, "h-1", key="", raw=body, headers=signed(old, "h-1"))
        self.assertEqual(response.status_code, 401)
        now = int(time.time())
        tampered = signed(now, "h-2")
        response = self._post(
            PUSH, None, "h-2", key="", raw=body.replace(b"10.5", b"19.5"), headers=tampered
        )
        self.assertEqual(response.status_code, 401)
        response = self._post(PUSH, None, "h-3", key="", raw=body, headers=signed(now, "h-3"))
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(len(self._readings()), 2)

    def test_bad_payloads_clear_errors(self):
        response = self._post(PUSH, None, raw="{not json")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "invalid_json")
        response = self._post(
            PUSH,
            {
                "readings": [
                    {"address": self.meter.address, "read_at": "2026-03-02T00:00:00"},
                    {
                        "address": self.meter.address,
                        "read_at": "2026-03-02T01:00:00",
                        "forward_total": 3,
                        "colour": "red",
                    },
                ]
            },
            message_id="m-2",
        )
        # malformed items are refused one by one (X1), each kept with its reason
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json()["rejected"],
            [
                {"readings": 0, "reason": "missing forward_total"},
                {"readings": 1, "reason": "unknown keys colour"},
            ],
        )
        kept = self._rejections()
        self.assertEqual(kept.mapped("reason"), ["unknown keys colour", "missing forward_total"])
        self.assertEqual(set(kept.mapped("kind")), {"reading"})
        self.assertEqual(kept.gateway_id, self.gateway)
        self.assertIn('"colour": "red"', kept[0].payload)
        # a malformed message is refused as a whole
        response = self._post(PUSH, {"readings": "all of them"}, message_id="m-3")
        self.assertEqual(response.status_code, 400)
        # nested deep: the item alone is refused (kept, cut short), not the message
        deep = "[" * 100000 + "]" * 100000
        response = self._post(PUSH, None, message_id="m-deep", raw=f'{{"readings": [{deep}]}}')
        self.assertEqual(response.status_code, 200, response.text[:200])
        self.assertEqual(response.json()["rejected"], [{"readings": 0, "reason": "not an object"}])
        self.assertLessEqual(len(self._rejections()[0].payload), 100)
        # ... unless it is the body, or only Python's parser reads the body (a NaN)
        for body in (deep, f'{{"readings": [NaN, {deep}]}}'):
            response = self._post(PUSH, None, message_id="m-deep-2", raw=body)
            self.assertEqual(response.status_code, 400, response.text[:200])
        self.assertEqual(response.json()["error"]["code"], "invalid_json")
        response = self._post(PUSH, self._batch(), message_id="")
        self.assertEqual(response.json()["error"]["code"], "bad_request")
        self.assertFalse(self._readings())
        # a message refused for its payload can be sent again, fixed, with the same id
        self.assertEqual(self._post(PUSH, self._batch(), message_id="m-3").status_code, 200)

    def test_daily_frozen_and_clocks_pushed_validated_and_idempotent(self):
        """G3: a collector's runner pushes the daily freezes and clocks it read; a bad item
        is refused alone with its reason (X1: kept in Rejected Readings, the readings beside
        it stored); a resend changes nothing."""
        Daily = self.env["prepaid.meter.reading.daily"]
        frozen = {
            "address": self.meter.address,
            "frozen_at": "2026-03-01T16:00:00Z",  # the meters' midnight at UTC+8
            "forward_total": "123.45",
            "tou_peak": "100.05",
        }
        clock = {
            "address": self.meter.address,
            "checked_at": "2026-03-02T01:00:00Z",
            "drift_seconds": 95,
        }
        bad = [
            ({**frozen, "forward_total": "-1"}, {}, "is negative"),
            ({**frozen, "forward_total": "NaN"}, {}, "not a finite number"),
            ({**frozen, "forward_total": True}, {}, "is not a number"),
            ({**frozen, "frozen_at": "yesterday"}, {}, "bad time"),
            ({**frozen, "frozen_at": None}, {}, "a time is required"),
            ({**frozen, "colour": "red"}, {}, "unknown keys colour"),
            (frozen, {**clock, "drift_seconds": "95"}, "drift_seconds must be an integer"),
            (frozen, {**clock, "drift_seconds": False}, "drift_seconds must be an integer"),
            (
                frozen,
                {"address": self.meter.address, "checked_at": "2026-03-02T01:00:00Z"},
                "drift_seconds must be",
            ),
            (frozen, {**clock, "drift_seconds": 1.5}, "drift_seconds must be an integer"),
            (frozen, {**clock, "checked_at": 12}, "a time is required"),
        ]
        for number, (bad_frozen, bad_clock, reason) in enumerate(bad):
            payload = {"clocks": [bad_clock]} if bad_clock else {"daily_frozen": [bad_frozen]}
            response = self._post(PUSH, payload, message_id=f"m-frozen-bad-{number}")
            self.assertEqual(response.status_code, 200, reason)
            (rejected,) = response.json()["rejected"]
            self.assertIn(reason, rejected["reason"])
            kept = self._rejections()[:1]
            self.assertEqual(kept.kind, "clock" if bad_clock else "daily_frozen")
            self.assertEqual((kept.reason, kept.meter_id), (rejected["reason"], self.meter))
        self.assertFalse(Daily.search([("meter_id", "=", self.meter.id)]))
        self.assertFalse(self.meter.clock_checked_at)
        # good ones
        payload = {
            "daily_frozen": [frozen, {**frozen, "address": self.foreign.address}],
            "clocks": [clock],
        }
        response = self._post(PUSH, payload, message_id="m-frozen")
        self.assertEqual(response.status_code, 200, response.text)
        answer = response.json()
        self.assertEqual((answer["daily_frozen"], answer["clocks"]), (1, 1))
        self.assertEqual(
            answer["rejected"], [{"daily_frozen": 1, "reason": "unknown meter on this gateway"}]
        )
        record = Daily.search([("meter_id", "=", self.meter.id)])
        self.assertEqual(str(record.day), "2026-03-01")
        self.assertAlmostEqual(record.frozen_total, 123.45, places=4)
        self.assertEqual(str(record.frozen_at), "2026-03-01 16:00:00")
        self.assertEqual((self.meter.clock_drift_seconds, self.meter.clock_drifting), (95, True))
        syncs = self.env["meter.gateway.command"].search(
            [("meter_id", "=", self.meter.id), ("kind", "=", "time_sync")]
        )
        self.assertEqual((len(syncs), syncs.origin), (1, "drift"))
        # sent again: the first answer, nothing twice; the same measurement under another
        # message id (a runner restarted) is older news: ignored
        replay = self._post(PUSH, payload, message_id="m-frozen")
        self.assertEqual(replay.headers.get("X-Idempotent-Replay"), "1")
        self.assertEqual(replay.json(), answer)
        again = self._post(PUSH, payload, message_id="m-frozen-2")
        self.assertEqual(again.status_code, 200)
        self.assertEqual(len(Daily.search([("meter_id", "=", self.meter.id)])), 1)
        self.assertEqual(
            self.env["meter.gateway.command"].search_count(
                [("meter_id", "=", self.meter.id), ("kind", "=", "time_sync")]
            ),
            1,
        )
        self.assertEqual(
            len(self.meter.event_ids.filtered(lambda e: e.event_type == "clock_drift")), 1
        )
        # a meter that tells no clock: checked all the same (not asked at every poll)
        unknown = {**clock, "checked_at": "2026-03-03T01:00:00Z", "drift_seconds": None}
        response = self._post(PUSH, {"clocks": [unknown]}, message_id="m-clock-3")
        self.assertEqual(response.json()["clocks"], 1)
        self.assertEqual(str(self.meter.clock_checked_at), "2026-03-03 01:00:00")
        self.assertFalse(self.meter.clock_drifting)

    def test_foreign_meter_and_bad_values_rejected_not_lost(self):
        response = self._post(
            PUSH,
            {
                "readings": [
                    {
                        "address": self.foreign.address,
                        "read_at": "2026-03-02T00:00:00",
                        "forward_total": 1,
                    },
                    {
                        "address": self.meter.address,
                        "read_at": "2026-03-02T00:00:00",
                        "forward_total": "abc",
                    },
                    {
                        "address": self.meter.address,
                        "read_at": "2026-03-02T00:30:00",
                        "forward_total": 2,
                    },
                ]
            },
        )
        self.assertEqual(response.status_code, 200, response.text)
        data = response.json()
        self.assertEqual(data["stored"], 1)
        self.assertEqual(
            data["rejected"][0], {"readings": 0, "reason": "unknown meter on this gateway"}
        )
        self.assertEqual(len(data["rejected"]), 2)
        self.assertFalse(self._readings(self.foreign))

    def test_fetch_and_acknowledge_commands(self):
        self.meter._set_desired_relay("off", "credit exhausted")
        command = self.env["meter.gateway.command"]._queue(self.meter, "relay_off", "cut")
        foreign = self.env["meter.gateway.command"]._queue(self.foreign, "price", "p", {"price": 1})
        response = self._post(FETCH, {"limit": 10}, message_id="f-1")
        self.assertEqual(response.status_code, 200, response.text)
        commands = response.json()["commands"]
        self.assertEqual([c["id"] for c in commands], [command.id])
        self.assertEqual(commands[0]["address"], self.meter.address)
        self.assertEqual(command.state, "sent")
        # replayed fetch: same answer, no second attempt
        self.assertEqual(
            self._post(FETCH, {"limit": 10}, message_id="f-1").json()["commands"], commands
        )
        self.assertEqual(command.attempts, 1)
        response = self._post(
            ACK,
            {
                "acks": [
                    {"id": command.id, "success": True, "relay_state": "off"},
                    {"id": foreign.id, "success": True},
                ]
            },
            message_id="a-1",
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json()["acks"],
            [
                {"id": command.id, "state": "confirmed"},
                {"id": foreign.id, "state": None, "reason": "unknown command"},
            ],
        )
        self.assertEqual(command.state, "confirmed")
        self.assertEqual(foreign.state, "queued")
        self.assertEqual(self.meter.actual_relay_state, "off")
        response = self._post(ACK, {"acks": [{"id": "x"}]}, message_id="a-2")
        self.assertEqual(response.status_code, 400)

    # === X1: a bad item never blocks the good ones === #
    def _push_hostile(self, key, good, template, cases):
        """Push, for each case ``(item key, JSON text of its value, reason)``, the items
        ``good(case number)`` and ``template`` with that value under ``list key``: each
        answer is 200 with the hostile item alone refused, with its reason, and kept in
        Rejected Readings.  Returns ``[(answer, rejection record)]``."""
        Rejection = self.env["prepaid.meter.reading.rejection"]
        results = []
        for number, (name, raw, reason) in enumerate(cases):
            goods = good(number)
            item = {k: v for k, v in template.items() if k != name}
            if name.startswith('"'):  # a key of its own JSON text
                item["@key@"] = "@hostile@"
            else:
                item[name] = "@hostile@"
            body = json.dumps({key: [*goods, item]}).replace(HOSTILE, raw)
            body = body.replace('"@key@"', name)
            before = Rejection.search_count([])
            response = self._post(PUSH, None, message_id=f"hostile-{key}-{number}", raw=body)
            self.assertEqual(response.status_code, 200, f"{name} {raw[:40]}: {response.text}")
            answer = response.json()
            self.assertEqual(len(answer["rejected"]), 1, f"{name} {raw[:40]}: {answer}")
            rejected = answer["rejected"][0]
            self.assertEqual(rejected.get(key), len(goods), rejected)
            self.assertIn(reason, rejected["reason"], f"{name} {raw[:40]}")
            self.assertEqual(Rejection.search_count([]), before + 1)
            kept = Rejection.search([], limit=1)
            self.assertEqual((kept.kind, kept.reason), (PUSH_KINDS[key], rejected["reason"]))
            self.assertEqual(kept.gateway_id, self.gateway)
            self.assertLessEqual(len(kept.payload), MAX_PAYLOAD)
            results.append((answer, kept))
        return results

    def _time(self, days=0, minutes=0):
        return f"{self.t0 + timedelta(days=days, minutes=minutes):%Y-%m-%dT%H:%M:%SZ}"

    def test_hostile_reading_value_refused_alone(self):
        """Issue 21: one reading whose value the store cannot keep (1e-20000, NaN, a huge
        integer, year 1, a NUL...) made the whole batch answer 500.  Each is now refused
        alone with its reason, kept in Rejected Readings; the readings beside it are
        stored."""

        def good(number):
            return [
                {
                    "address": self.meter.address,
                    "read_at": self._time(number, minutes),
                    "forward_total": 10 + number + minutes / 60,
                }
                for minutes in (0, 30)
            ]

        template = {
            "address": self.meter2.address,
            "read_at": self._time(),
            "forward_total": 3.0,
            "voltage": 220.5,
        }
        with mute_logger("odoo.addons.prepaid_meter.models.prepaid_meter_reading"):
            results = self._push_hostile("readings", good, template, HOSTILE_READINGS)
        for (answer, kept), (name, raw, _reason) in zip(results, HOSTILE_READINGS, strict=True):
            self.assertEqual(answer["stored"], 2, f"{name} {raw[:40]}")
            # the meter is known unless its address is what was refused
            meter = self.env["prepaid.meter"] if name == "address" else self.meter2
            self.assertEqual(kept.meter_id, meter, f"{name} {raw[:40]}")
        self.assertEqual(len(self._readings()), 2 * len(HOSTILE_READINGS))
        self.assertFalse(self._readings(self.meter2))
        # what was received is kept, as text PostgreSQL stores (NUL and surrogates escaped)
        payloads = [kept.payload for _answer, kept in results]
        self.assertTrue(any('"address": "\\u0000"' in text for text in payloads))
        self.assertTrue(any('"address": "\\ud800"' in text for text in payloads))
        self.assertTrue(any('"forward_total": "1e-20000"' in text for text in payloads))

    def test_hostile_event_refused_alone(self):
        def good(number):
            return [
                {
                    "address": self.meter.address,
                    "event_type": event_type,
                    "event_at": self._time(number),
                    "event_id": f"good-{number}-{event_type}",
                }
                for event_type in ("tamper_cover", "fault")
            ]

        template = {
            "address": self.meter2.address,
            "event_type": "tamper_magnet",
            "event_at": self._time(),
            "event_id": "hostile",
            "reason": "lid",
            "code": "C1",
        }
        results = self._push_hostile("events", good, template, HOSTILE_EVENTS)
        for (answer, kept), (name, raw, _reason) in zip(results, HOSTILE_EVENTS, strict=True):
            self.assertEqual(answer["events"], 2, f"{name} {raw[:40]}")
            meter = self.env["prepaid.meter"] if name == "address" else self.meter2
            self.assertEqual(kept.meter_id, meter, f"{name} {raw[:40]}")
        self.assertEqual(
            len(self.meter.event_ids.filtered("device_event_id")), 2 * len(HOSTILE_EVENTS)
        )
        self.assertFalse(self.meter2.event_ids.filtered(lambda e: e.source == "device"))

    def test_hostile_daily_freeze_and_clock_refused_alone(self):
        def good_frozen(number):
            day = self.t0 + timedelta(days=number)
            return [
                {
                    "address": self.meter.address,
                    "frozen_at": f"{day:%Y-%m-%d}T16:00:00Z",
                    "forward_total": f"{100 + number}.5",
                }
            ]

        def good_clock(number):
            at = self._time(number, 60)
            return [{"address": self.meter.address, "checked_at": at, "drift_seconds": 2}]

        frozen = {"address": self.meter2.address, "frozen_at": self._time(), "forward_total": 1}
        clock = {"address": self.meter2.address, "checked_at": self._time(), "drift_seconds": 2}
        for key, good, template, cases, count in (
            ("daily_frozen", good_frozen, frozen, HOSTILE_FROZEN, "daily_frozen"),
            ("clocks", good_clock, clock, HOSTILE_CLOCKS, "clocks"),
        ):
            results = self._push_hostile(key, good, template, cases)
            for (answer, kept), (name, raw, _reason) in zip(results, cases, strict=True):
                self.assertEqual(answer[count], 1, f"{name} {raw[:40]}")
                meter = self.env["prepaid.meter"] if name == "address" else self.meter2
                self.assertEqual(kept.meter_id, meter, f"{name} {raw[:40]}")
        Daily = self.env["prepaid.meter.reading.daily"]
        self.assertEqual(len(Daily.search([("meter_id", "=", self.meter.id)])), len(HOSTILE_FROZEN))
        # the register range checked is the frozen total's field's
        precision, scale = Daily._fields["frozen_total"].get_digits(self.env)
        self.assertEqual(validation.REGISTER_LIMIT, 10 ** (precision - scale))
        self.assertFalse(Daily.search([("meter_id", "=", self.meter2.id)]))
        self.assertEqual(
            str(self.meter.clock_checked_at),
            self._time(len(HOSTILE_CLOCKS) - 1, 60)[:19].replace("T", " "),
        )
        self.assertFalse(self.meter2.clock_checked_at)

    def test_items_that_are_not_objects_refused_alone(self):
        payload = {
            "readings": [
                {"address": self.meter.address, "read_at": self._time(), "forward_total": 1},
                "junk",
                7,
                None,
                [],
            ],
            "events": [7, "tamper_cover"],
            "daily_frozen": [[]],
            "clocks": [None],
        }
        response = self._post(PUSH, payload, message_id="not-objects")
        self.assertEqual(response.status_code, 200, response.text)
        answer = response.json()
        self.assertEqual(answer["stored"], 1)
        self.assertEqual(
            answer["rejected"],
            [
                *({"readings": n, "reason": "not an object"} for n in (1, 2, 3, 4)),
                *({"events": n, "reason": "an event needs an address"} for n in (0, 1)),
                {"daily_frozen": 0, "reason": "a freeze needs an address"},
                {"clocks": 0, "reason": "a clock needs an address"},
            ],
        )
        kept = self._rejections()
        self.assertEqual(len(kept), 8)
        self.assertEqual(
            sorted(kept.mapped("payload")),
            sorted(['"junk"', "7", "null", "[]", "7", '"tamper_cover"', "[]", "null"]),
        )

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.sampled_from(["readings", "events", "daily_frozen", "clocks"]), st.data())
    def test_any_json_value_in_any_field_is_stored_or_refused_alone(self, key, data):
        """Whatever JSON value any field of an item holds, the push answers (no exception
        but the API's own) and the good items beside it are stored; the item itself is
        stored or refused with a reason."""
        meter, meter2 = self.meter.address, self.meter2.address
        at = self._time()
        goods, template, keys, count = {
            "readings": (
                [
                    {"address": meter, "read_at": at, "forward_total": 10.5},
                    {"address": meter, "read_at": self._time(0, 30), "forward_total": "11.25"},
                ],
                {"address": meter2, "read_at": at, "forward_total": 3.0, "voltage": 220.5},
                sorted(PUSHED_READING_KEYS),
                "stored",
            ),
            "events": (
                [
                    {"address": meter, "event_type": t, "event_at": at, "event_id": t}
                    for t in ("fault", "tamper_cover")
                ],
                {"address": meter2, "event_type": "fault", "event_id": "x", "code": "1"},
                ["address", "event_type", "event_at", "event_id", "reason", "code"],
                "events",
            ),
            "daily_frozen": (
                [{"address": meter, "frozen_at": at, "forward_total": "5.5"}],
                {"address": meter2, "frozen_at": at, "forward_total": 5, "tou_peak": 1},
                sorted(FROZEN_KEYS),
                "daily_frozen",
            ),
            "clocks": (
                [{"address": meter, "checked_at": at, "drift_seconds": 3}],
                {"address": meter2, "checked_at": at, "drift_seconds": 3},
                sorted(CLOCK_KEYS),
                "clocks",
            ),
        }[key]
        name = data.draw(st.sampled_from(keys))
        value = data.draw(JSON_VALUES)
        payload = {key: [*goods, {**template, name: value}]}
        with contextlib.closing(self.env.cr.savepoint()):
            with mute_logger("odoo.addons.prepaid_meter.models.prepaid_meter_reading"):
                try:
                    answer = self.gateway._api_push(payload)
                except DeviceApiError as exc:  # (the API's own error: a whole message)
                    self.fail(f"{name}={value!r}: the message was refused: {exc.message}")
            self.env.flush_all()
            rejected = answer["rejected"]
            self.assertLessEqual(len(rejected), 1, rejected)
            self.assertEqual(answer[count] + len(rejected), len(goods) + 1, answer)
            if key == "readings":
                self.assertEqual(len(self._readings()), 2)
            kept = self.env["prepaid.meter.reading.rejection"].search([], limit=len(rejected))
            self.assertEqual(kept.mapped("reason"), [r["reason"] for r in rejected])
        self.env.invalidate_all()


@tagged("post_install", "-at_install")
class TestDeviceApiFleetBatch(DeviceApiPost, HttpCase, PrepaidMeterCommon):
    """X1 on the bulk path: a message of LARGE_BATCH readings (one per meter: the fleet
    path, parsed in a helper thread, judged by chunks, copied in bulk) with one reading the
    store cannot keep stores the others."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway._set_api_key(KEY)
        cls.fleet = cls.env["prepaid.meter"].create(
            [
                {
                    "name": f"Fleet {n}",
                    "address": f"88{n:010d}",
                    "model_id": cls.ddsy.id,
                    "gateway_id": cls.gateway.id,
                    "state": "in_service",
                }
                for n in range(LARGE_BATCH)
            ]
        )

    def _stored(self):
        self.env.cr.execute(
            "SELECT count(*) FROM prepaid_meter_reading_store WHERE meter_id = ANY(%s)",
            [self.fleet.ids],
        )
        return self.env.cr.fetchone()[0]

    def test_fleet_batch_with_a_hostile_reading(self):
        self.assertLessEqual(LARGE_BATCH, MAX_BATCH)  # one message reaches the bulk path
        Rejection = self.env["prepaid.meter.reading.rejection"]
        for interval, (index, key, value, reason) in enumerate(
            [
                (1234, "forward_total", "1e-20000", "more than 20 decimals"),
                (4321, "voltage", 1e9, "out of range"),
            ]
        ):
            readings = [
                {
                    "address": meter.address,
                    "read_at": self._time(interval),
                    "forward_total": f"{100 + interval + n % 7 / 10:.2f}",
                    "voltage": 221.5,
                    "power": 1.25,
                }
                for n, meter in enumerate(self.fleet)
            ]
            readings[index][key] = value
            with mute_logger("odoo.addons.prepaid_meter.models.prepaid_meter_reading"):
                response = self._post(PUSH, {"readings": readings}, message_id=f"fleet-{interval}")
            self.assertEqual(response.status_code, 200, response.text[:500])
            answer = response.json()
            self.assertEqual(answer["stored"], LARGE_BATCH - 1)
            (rejected,) = answer["rejected"]
            self.assertEqual(rejected["readings"], index)
            self.assertIn(reason, rejected["reason"])
            kept = Rejection.search([], limit=1)
            self.assertEqual((kept.meter_id, kept.reason), (self.fleet[index], rejected["reason"]))
        self.assertEqual(self._stored(), 2 * (LARGE_BATCH - 1))

    def _time(self, minutes_30=0):
        return f"{self.t0 + timedelta(minutes=30 * minutes_30):%Y-%m-%dT%H:%M:%SZ}"
