import contextlib
import hashlib
import hmac
import json
import time
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL, mute_logger

from odoo.addons.prepaid_meter.models.prepaid_meter_reading import LARGE_BATCH
from odoo.addons.prepaid_meter.models.prepaid_meter_reading_rejection import MAX_PAYLOAD
from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon

from prepaid_core import device_auth
from prepaid_core import readings as validation
from prepaid_core.device_push import CLOCK_KEYS, FROZEN_KEYS, MAX_BATCH, PUSH_KINDS, DeviceApiError

from ..models.prepaid_gateway_device_api import PUSHED_READING_KEYS

PUSH = "/meter_gateway/api/v1/push"
FETCH = "/meter_gateway/api/v1/commands/fetch"
ACK = "/meter_gateway/api/v1/commands/ack"
DEAD_LETTERS = "/meter_gateway/api/v1/dead_letters"
CONFIG = "/meter_gateway/api/v1/config"
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
    ("event_at", '"Z"', "bad time"),
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
    ("frozen_at", '"Z"', "bad time"),
    ("address", '"\\ud800"', "control or invalid character"),
    ("colour", '"red"', "unknown keys colour"),
]
HOSTILE_CLOCKS = [
    ("drift_seconds", "1099511627776", "drift_seconds must be an integer"),
    ("drift_seconds", "true", "drift_seconds must be an integer"),
    ("drift_seconds", "1e400", "drift_seconds must be an integer"),
    ("checked_at", '"0001-01-01 00:00:00"', "not between 2000 and 2100"),
    ("checked_at", '"9999-12-31T23:59:59Z"', "not between 2000 and 2100"),
    ("checked_at", '"Z"', "bad time"),
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

    def _post(
        self,
        url,
        payload,
        message_id="m-1",
        key=KEY,
        gateway=None,
        raw=None,
        headers=None,
        sign=True,
    ):
        """POST as a gateway does: signed with ``key`` (``sign=False``: the key itself in
        ``X-Api-Key``); ``headers`` override what is computed."""
        body = raw if raw is not None else json.dumps(payload)
        body = body.encode() if isinstance(body, str) else body
        all_headers = {
            "Content-Type": "application/json",
            "X-Gateway-Id": str((gateway or self.gateway).id),
            "X-Message-Id": message_id,
        }
        if sign and key and device_auth.valid_message_id(message_id):
            all_headers.update(signed_headers(key, url, message_id, body))
        elif not sign:
            all_headers["X-Api-Key"] = key
        all_headers.update(headers or {})
        return self.url_open(url, data=body, headers=all_headers)


def signed_headers(key, path, message_id, body, method="POST", timestamp=None):
    """What a gateway holding ``key`` sends (``prepaid_core.device_auth``)."""
    stamp, signature = device_auth.sign_request(
        device_auth.signing_key(key), method, path, message_id, body, timestamp
    )
    return {"X-Timestamp": stamp, "X-Signature": signature}


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

    def test_answered_push_commits_durably(self):
        """X1: a push answered 200 is acknowledged to the device: its transaction asks for
        a durable commit even where the server runs with ``synchronous_commit = off``."""
        self.env.cr.execute("SET synchronous_commit TO off")
        response = self._post(PUSH, self._batch())
        self.assertEqual(response.status_code, 200, response.text)
        self.env.cr.execute("SHOW synchronous_commit")
        self.assertEqual(self.env.cr.fetchone()[0], "on")

    def test_push_then_replay_changes_nothing(self):
        response = self._post(PUSH, self._batch())
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["stored"], 2)
        self.assertEqual(response.json()["events"], 1)
        self.assertEqual(self._readings().mapped("forward_total"), [11.25, 10.5])
        events = self.meter.event_ids.filtered(lambda e: e.event_type == "tamper_cover")
        self.assertEqual((len(events), events.source, events.code), (1, "device", "C1"))
        self.assertEqual(self.gateway.connection_state, "online")
        # the same message again: the same answer, nothing changes
        replay = self._post(PUSH, self._batch())
        self.assertEqual(replay.status_code, 200)
        self.assertEqual(replay.headers.get("X-Idempotent-Replay"), "1")
        self.assertEqual(replay.json(), response.json())
        # the same id with another body, or on another endpoint: refused, not answered
        changed = self._batch()
        changed["readings"][0]["forward_total"] = 99
        for url, payload in ((PUSH, changed), (FETCH, self._batch())):
            refused = self._post(url, payload)
            self.assertEqual(refused.status_code, 409, url)
            self.assertEqual(refused.json()["error"]["code"], "message_id_reused")
            self.assertFalse(refused.headers.get("X-Idempotent-Replay"))
        self.assertEqual(self._readings().mapped("forward_total"), [11.25, 10.5])
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
            {"gateway": self.foreign.gateway_id, "key": KEY},  # this key, another gateway
            {"key": KEY, "headers": {"X-Gateway-Id": "999999"}},  # no such gateway
            {"key": KEY, "sign": False},  # the right key, unsigned: not accepted by default
        ):
            response = self._post(PUSH, self._batch(), **kwargs)
            self.assertEqual(response.status_code, 401, kwargs)
            self.assertEqual(response.json()["error"]["code"], "unauthorized")
        response = self.url_open(PUSH, data=json.dumps(self._batch()))
        self.assertEqual(response.status_code, 400)  # no message id
        response = self._post(PUSH, self._batch(), headers={"X-Gateway-Id": ""})
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self._readings())
        self.assertFalse(self.env["meter.gateway.message"].search([]))
        # a gateway set to accept unsigned requests takes the key itself, and only its key
        self.gateway.api_accept_unsigned = True
        self.assertEqual(self._post(PUSH, self._batch(), key="wrong", sign=False).status_code, 401)
        response = self._post(PUSH, self._batch(), sign=False)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(len(self._readings()), 2)

    def test_signature_covers_the_whole_request_within_five_minutes(self):
        body = json.dumps(self._batch()).encode()
        now = int(time.time())
        refused = {
            "stale": signed_headers(KEY, PUSH, "h-1", body, timestamp=str(now - 301)),
            # (302: ``now`` is whole seconds, the request may reach the next one)
            "future": signed_headers(KEY, PUSH, "h-1", body, timestamp=str(now + 302)),
            "other body": signed_headers(KEY, PUSH, "h-1", body.replace(b"10.5", b"19.5")),
            "other path": signed_headers(KEY, ACK, "h-1", body),
            "other method": signed_headers(KEY, PUSH, "h-1", body, method="PUT"),
            "other message id": signed_headers(KEY, PUSH, "h-2", body),
            "other gateway's key": signed_headers("other-key", PUSH, "h-1", body),
            "no timestamp": {**signed_headers(KEY, PUSH, "h-1", body), "X-Timestamp": ""},
        }
        for what, headers in refused.items():
            response = self._post(PUSH, None, "h-1", raw=body, headers=headers)
            self.assertEqual(response.status_code, 401, what)
        self.assertFalse(self._readings())
        stamp = str(now - 290)
        response = self._post(
            PUSH,
            None,
            "h-1",
            raw=body,
            headers=signed_headers(KEY, PUSH, "h-1", body, timestamp=stamp),
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(len(self._readings()), 2)

    def test_what_the_database_keeps_cannot_sign(self):
        """A copy of the database gives the key's SHA-256 and the signing public key: a
        signature made with either, in the former scheme (HMAC keyed with the stored hash)
        or in this one, is refused; the key itself is stored nowhere."""
        self.env.flush_all()
        [(stored_hash, public_key)] = self.env.execute_query(
            SQL(
                "SELECT api_key_hash, api_signing_public_key FROM prepaid_gateway WHERE id = %s",
                self.gateway.id,
            )
        )
        self.assertEqual(stored_hash, hashlib.sha256(KEY.encode()).hexdigest())
        self.assertEqual(public_key, device_auth.public_key_hex(KEY))
        body = json.dumps(self._batch()).encode()
        stamp = str(int(time.time()))
        canonical = device_auth.canonical_request("POST", PUSH, stamp, "d-1", body)
        v1 = f"{stamp}.d-1.".encode() + body
        forged = {
            "v1 HMAC with the hash": hmac.new(stored_hash.encode(), v1, "sha256").hexdigest(),
            "HMAC with the hash": hmac.new(stored_hash.encode(), canonical, "sha256").hexdigest(),
            "HMAC with the public key": hmac.new(
                public_key.encode(), canonical, "sha256"
            ).hexdigest(),
        }
        for stored in (stored_hash, public_key):
            forged[f"Ed25519 keyed with {stored}"] = signed_headers(stored, PUSH, "d-1", body)[
                "X-Signature"
            ]
        for what, signature in forged.items():
            response = self._post(
                PUSH,
                None,
                "d-1",
                raw=body,
                headers={"X-Timestamp": stamp, "X-Signature": signature},
            )
            self.assertEqual(response.status_code, 401, what)
        # an unsigned request with the hash as its key (a gateway that accepts them)
        self.gateway.api_accept_unsigned = True
        self.assertEqual(
            self._post(PUSH, None, "d-1", raw=body, key=stored_hash, sign=False).status_code, 401
        )
        self.assertFalse(self._readings())
        self.env.flush_all()
        dump = json.dumps(
            self.env.execute_query(
                SQL(
                    "SELECT to_jsonb(g)::text FROM prepaid_gateway g WHERE id = %s", self.gateway.id
                )
            )
        )
        self.assertNotIn(KEY, dump)

    def test_config_cannot_be_replayed_and_keeps_no_answer(self):
        gateway, key = self.other_gateway, "other-key"  # an MQTT gateway: broker settings
        gateway.sudo().mqtt_password = "broker-secret"
        body = b"{}"
        headers = signed_headers(key, CONFIG, "cfg-1", body)
        response = self._post(CONFIG, None, "cfg-1", gateway=gateway, raw=body, headers=headers)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["mqtt"]["password"], "broker-secret")
        # the same request again, its signature still fresh: refused
        replay = self._post(CONFIG, None, "cfg-1", gateway=gateway, raw=body, headers=headers)
        self.assertEqual(replay.status_code, 409)
        self.assertEqual(replay.json()["error"]["code"], "message_id_reused")
        self.assertNotIn("broker-secret", replay.text)
        # a new message id is a new request; a config id cannot be replayed on push either
        self.assertEqual(self._post(CONFIG, {}, "cfg-2", key, gateway).status_code, 200)
        self.assertEqual(self._post(PUSH, {}, "cfg-2", key, gateway).status_code, 409)
        self.assertEqual(self._post(CONFIG, {}, "", key, gateway).status_code, 400)
        self.env.flush_all()
        rows = self.env.execute_query(
            SQL(
                "SELECT message_id, endpoint, response FROM meter_gateway_message "
                "WHERE gateway_id = %s ORDER BY message_id",
                gateway.id,
            )
        )
        self.assertEqual(rows, [("cfg-1", "config", None), ("cfg-2", "config", None)])

    def test_fetch_answer_keeps_no_credit_token_and_replays_the_same_token(self):
        """R10: a fetch answer carrying a credit token is stored without it; its replay (a
        runner whose answer was lost) delivers the same command with the same token, and
        nothing is minted or sent again."""
        credit = self.env["meter.gateway.command"].create(
            {"meter_id": self.meter.id, "kind": "credit", "payload": {"amount": "25.00"}}
        )
        secret = credit.sudo().token_secret
        self.assertTrue(secret["token"])
        response = self._post(FETCH, {"limit": 10}, message_id="f-credit")
        self.assertEqual(response.status_code, 200, response.text)
        [command] = [c for c in response.json()["commands"] if c["id"] == credit.id]
        self.assertEqual(command["payload"]["token"], secret["token"])
        self.assertEqual(command["payload"]["amount"], "25.00")
        self.env.flush_all()
        [(stored,)] = self.env.execute_query(
            SQL(
                "SELECT response::text FROM meter_gateway_message "
                "WHERE gateway_id = %s AND message_id = 'f-credit'",
                self.gateway.id,
            )
        )
        self.assertIn(str(credit.id), stored)
        for value in secret.values():
            self.assertNotIn(value, stored)
        replay = self._post(FETCH, {"limit": 10}, message_id="f-credit")
        self.assertEqual(replay.headers.get("X-Idempotent-Replay"), "1")
        self.assertEqual(replay.json(), response.json())
        self.assertEqual((credit.attempts, credit.sudo().token_secret), (1, secret))
        self.assertEqual(
            self.env["meter.gateway.command"].search_count(
                [("meter_id", "=", self.meter.id), ("kind", "=", "credit")]
            ),
            1,
        )

    def test_purge_removes_old_answers_and_keeps_recent_ones(self):
        Message = self.env["meter.gateway.message"]
        now = fields.Datetime.now()
        ages = {
            "old-push": timedelta(days=8),
            "recent-push": timedelta(days=6),
            "old-config": timedelta(minutes=11),
            "recent-config": timedelta(minutes=9),
            "three-days": timedelta(days=3),
        }
        for message_id in ages:
            endpoint = "config" if "config" in message_id else "push"
            Message.create(
                {
                    "gateway_id": self.gateway.id,
                    "message_id": message_id,
                    "endpoint": endpoint,
                    "response": {"stored": 1},
                }
            )
        self.env.flush_all()
        for message_id, age in ages.items():
            self.env.cr.execute(
                "UPDATE meter_gateway_message SET create_date = %s WHERE message_id = %s",
                [now - age, message_id],
            )

        def kept():
            return set(Message.search([("gateway_id", "=", self.gateway.id)]).mapped("message_id"))

        self.assertEqual(Message._cron_purge(batch_size=1), 2)
        self.assertEqual(kept(), {"recent-push", "recent-config", "three-days"})
        self.env["ir.config_parameter"].sudo().set_param(
            "meter_gateway.message_retention_days", "2"
        )
        self.assertEqual(Message._cron_purge(), 2)
        self.assertEqual(kept(), {"recent-config"})
        # a purged message id is a new message again
        self.assertEqual(self._post(PUSH, self._batch(), "old-push").status_code, 200)

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

    def test_meters_of_another_gateway_on_the_same_broker_are_not_kept_as_rejected(self):
        """Two 4G gateways on one broker: each runner hears every meter; what the other
        gateway stores is refused in the answer but not kept in *Rejected Readings* (it
        would fill it with each of the other's readings).  A meter of no gateway of that
        broker is kept, as on a broker of its own."""
        broker = {"mqtt_host": "broker.example", "mqtt_port": 1883}
        self.other_gateway.write(broker)
        shared = self.env["prepaid.gateway"].create(
            {"name": "Shared", "gateway_type": "mqtt", "site_id": self.site.id, **broker}
        )
        shared._set_api_key("shared-key")
        Rejection = self.env["prepaid.meter.reading.rejection"]

        def push(message_id):
            readings = [
                {"address": address, "read_at": "2026-03-02T00:00:00Z", "forward_total": 1}
                for address in (self.foreign.address, "000000000777")
            ]
            response = self._post(
                PUSH, {"readings": readings}, message_id, key="shared-key", gateway=shared
            )
            self.assertEqual(response.status_code, 200, response.text)
            self.assertEqual(len(response.json()["rejected"]), 2)
            return Rejection.search([("gateway_id", "=", shared.id)])

        self.assertEqual(push("m-shared-1").mapped("address"), ["000000000777"])
        self.assertFalse(self._readings(self.foreign))
        self.other_gateway.mqtt_port = 1884  # a broker of its own: its meter is a stranger
        self.assertEqual(len(push("m-shared-2")), 3)

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
                    {
                        "id": command.id,
                        "address": self.meter.address,
                        "success": True,
                        "relay_state": "off",
                    },
                    {"id": foreign.id, "address": self.foreign.address, "success": True},
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

    def test_ack_settles_only_a_command_of_the_meter_it_comes_from(self):
        """An answer naming another meter, or none, is refused for that item: the command
        and the meter's relay are left as they are, the refusal logged on the command;
        the meter's own answer confirms it."""
        neighbour = self.meter2
        neighbour._set_desired_relay("off", "credit exhausted")
        command = self.env["meter.gateway.command"]._queue(neighbour, "relay_off", "cut")
        self._post(FETCH, {"limit": 10}, message_id="f-1")
        self.assertEqual(command.state, "sent")
        relay = neighbour.actual_relay_state
        spoofed = {"id": command.id, "success": True, "relay_state": "off"}
        with self.assertLogs(
            "odoo.addons.meter_gateway.models.prepaid_gateway_device_api", "WARNING"
        ) as log:
            response = self._post(
                ACK,
                {"acks": [{**spoofed, "address": self.meter.address}, spoofed]},
                message_id="a-1",
            )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json()["acks"],
            [
                {
                    "id": command.id,
                    "state": None,
                    "reason": "the answer comes from another meter than the command's",
                },
                {"id": command.id, "state": None, "reason": "the answer names no meter address"},
            ],
        )
        self.assertEqual(len(log.records), 2)
        self.assertIn(repr(self.meter.address), log.output[0])
        self.env.invalidate_all()
        self.assertEqual((command.state, command.attempts), ("sent", 1))
        self.assertEqual(neighbour.actual_relay_state, relay)
        self.assertIn(
            f"answer refused: the answer comes from another meter than the command's "
            f"(address {self.meter.address!r})",
            command.reason_log,
        )
        self.assertIn("answer refused: the answer names no meter address", command.reason_log)
        response = self._post(
            ACK, {"acks": [{**spoofed, "address": neighbour.address}]}, message_id="a-2"
        )
        self.assertEqual(response.json()["acks"], [{"id": command.id, "state": "confirmed"}])
        self.assertEqual(command.state, "confirmed")
        self.assertEqual(neighbour.actual_relay_state, "off")

    def test_dead_letters_stored_for_an_operator_of_the_gateway_company_only(self):
        """R12/X1: messages the runner set aside are kept with their reason, the meter
        found from the topic; text PostgreSQL cannot hold is escaped, a malformed letter is
        refused alone; only users of the gateway's company see them."""
        letters = [
            {
                "topic": f"prepaid/v1/{self.meter.address}/reading",
                "payload": '{"forward_kwh": 1e-20000}\x00',
                "reason": "refused by the device API even alone: HTTP 500",
                "received_at": "2026-03-02T08:00:00.250Z",
            },
            {"topic": "prepaid/v1/12345/reading", "payload": "garbage", "reason": "invalid"},
            {"topic": 7, "payload": "x", "reason": "invalid"},
            {
                "topic": f"prepaid/v1/{self.foreign.address}/reading",
                "payload": "{}",
                "reason": "invalid",
            },
        ]
        response = self._post(DEAD_LETTERS, {"letters": letters}, message_id="d-1")
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(
            response.json(),
            {
                "stored": 3,
                "rejected": [
                    {"letters": 2, "reason": "'topic', 'payload' and 'reason' must be strings"}
                ],
            },
        )
        DeadLetter = self.env["meter.gateway.dead.letter"]
        stored = DeadLetter.search([("gateway_id", "=", self.gateway.id)], order="id")
        self.assertEqual(len(stored), 3)
        first, odd, foreign = stored
        self.assertEqual((first.address, first.meter_id), (self.meter.address, self.meter))
        self.assertEqual(first.payload, '{"forward_kwh": 1e-20000}\\x00')
        self.assertEqual(first.received_at, fields.Datetime.to_datetime("2026-03-02 08:00:00"))
        self.assertEqual(first.company_id, self.gateway.company_id)
        self.assertEqual((odd.address, odd.meter_id.id), (False, False))  # not a meter address
        # another gateway's meter: its address is kept, the meter is not linked
        self.assertEqual((foreign.address, foreign.meter_id.id), (self.foreign.address, False))
        # replay: the same answer, nothing stored twice
        self.assertEqual(
            self._post(DEAD_LETTERS, {"letters": letters}, message_id="d-1").json()["stored"], 3
        )
        self.assertEqual(DeadLetter.search_count([("gateway_id", "=", self.gateway.id)]), 3)
        self.assertEqual(self._post(DEAD_LETTERS, {"letters": "x"}).status_code, 400)
        # unpaired surrogates (Python's JSON parser lets them through) are escaped too
        letter = {"topic": "t\udc80", "payload": "p\ud800", "reason": "r"}
        DeadLetter._api_record(self.gateway, {"letters": [letter]})
        surrogates = DeadLetter.search([("gateway_id", "=", self.gateway.id)], limit=1)
        self.assertEqual((surrogates.topic, surrogates.payload), ("t\\udc80", "p\\ud800"))
        stored |= surrogates
        # shown to the company's operators, not to another company's manager
        operator = self._user("dl_operator", "prepaid_meter.group_prepaid_user")
        self.assertEqual(DeadLetter.with_user(operator).search([("id", "in", stored.ids)]), stored)
        other_company = self.env["res.company"].create({"name": "Other Landlord"})
        stranger = self._user(
            "dl_stranger", "prepaid_meter.group_prepaid_manager", company=other_company
        )
        self.assertFalse(DeadLetter.with_user(stranger).search([("id", "in", stored.ids)]))
        accountant = self._user("dl_accountant", "prepaid_meter.group_prepaid_accountant")
        with self.assertRaises(AccessError):
            DeadLetter.with_user(accountant).search([])
        # a wrong key stores nothing
        response = self._post(DEAD_LETTERS, {"letters": letters}, message_id="d-2", key="nope")
        self.assertEqual(response.status_code, 401)
        self.assertEqual(DeadLetter.search_count([("gateway_id", "=", self.gateway.id)]), 4)

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
        """X1: one reading whose value the store cannot keep (1e-20000, NaN, a huge
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

    def test_a_push_reads_only_its_meters_entries(self):
        """A push names its meters by gateway and address: the index that finds them leads
        with both, so a message of a thousand readings reads a thousand entries, not every
        meter of the gateway (a million on a large 4G gateway: 0.2-0.7 s a message)."""
        self.env.cr.execute(
            """
            SELECT pg_get_indexdef(indexrelid, 1, true), pg_get_indexdef(indexrelid, 2, true)
              FROM pg_index WHERE indexrelid = 'prepaid_meter_gateway_address_idx'::regclass
            """
        )
        self.assertEqual(self.env.cr.fetchone(), ("gateway_id", "address"))
        addresses = [*self.fleet[:3].mapped("address"), "990000000000"]
        found = self.gateway._api_meters_by_address(addresses)
        self.assertEqual(found, {meter.address: meter.id for meter in self.fleet[:3]})

    def _time(self, minutes_30=0):
        return f"{self.t0 + timedelta(minutes=30 * minutes_30):%Y-%m-%dT%H:%M:%SZ}"
