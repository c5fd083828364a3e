import hashlib
import hmac
import json
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged
from odoo.tools import SQL

from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon

from prepaid_core import device_auth

PUSH = "/meter_gateway/api/v1/push"
FETCH = "/meter_gateway/api/v1/commands/fetch"
ACK = "/meter_gateway/api/v1/commands/ack"
DEAD_LETTERS = "/meter_gateway/api/v1/dead_letters"
CONFIG = "/meter_gateway/api/v1/config"
KEY = "test-gateway-key-0123456789"


def signed_headers(key, path, message_id, body, method="POST", timestamp=None):
    """What a gateway holding ``key`` sends (``prepaid_core.device_auth``)."""
    stamp, signature = device_auth.sign_request(
        device_auth.signing_key(key), method, path, message_id, body, timestamp
    )
    return {"X-Timestamp": stamp, "X-Signature": signature}


@tagged("post_install", "-at_install")
class TestDeviceApi(HttpCase, PrepaidMeterCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gateway._set_api_key(KEY)
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

    def _readings(self, meter=None):
        return self.env["prepaid.meter.reading"].search(
            [("meter_id", "=", (meter or self.meter).id)]
        )

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
        # without an event id an event is logged at each delivery (the device gave no id)
        bad = self._post(
            PUSH,
            {"events": [dict(events[0], event_id="")]},
            message_id="mqtt-c",
        )
        self.assertEqual((bad.status_code, bad.json()["error"]["code"]), (400, "bad_payload"))

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
            "future": signed_headers(KEY, PUSH, "h-1", body, timestamp=str(now + 301)),
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
        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(error["code"], "bad_payload")
        self.assertEqual(error["details"][0], {"readings": 0, "reason": "missing forward_total"})
        self.assertEqual(error["details"][1], {"readings": 1, "reason": "unknown keys colour"})
        response = self._post(PUSH, {"readings": "all of them"}, message_id="m-3")
        self.assertEqual(response.status_code, 400)
        response = self._post(PUSH, self._batch(), message_id="")
        self.assertEqual(response.json()["error"]["code"], "bad_request")
        self.assertFalse(self._readings())
        # a message refused for its payload can be sent again, fixed, with the same id
        self.assertEqual(self._post(PUSH, self._batch(), message_id="m-2").status_code, 200)

    def test_daily_frozen_and_clocks_pushed_validated_and_idempotent(self):
        """G3: a collector's runner pushes the daily freezes and clocks it read; a bad value
        refuses the whole message with the item named (nothing stored, the same id may be
        sent again fixed); a resend changes nothing."""
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
            ({**frozen, "forward_total": "-1"}, {}, "finite and not negative"),
            ({**frozen, "forward_total": "NaN"}, {}, "finite and not negative"),
            ({**frozen, "forward_total": True}, {}, "a number is required"),
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
        for bad_frozen, bad_clock, reason in bad:
            payload = {"readings": self._batch()["readings"], "daily_frozen": [bad_frozen]}
            if bad_clock:
                payload["clocks"] = [bad_clock]
            response = self._post(PUSH, payload, message_id="m-frozen")
            self.assertEqual(response.status_code, 400, reason)
            error = response.json()["error"]
            self.assertEqual(error["code"], "bad_payload")
            self.assertIn(reason, error["details"][0]["reason"])
        self.assertFalse(self._readings())
        self.assertFalse(Daily.search([("meter_id", "=", self.meter.id)]))
        self.assertFalse(self.meter.clock_checked_at)
        # fixed, with the same message id
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
        neighbour = self._create_meter("Power T-102", "000000000102", self.unit2)
        neighbour._set_desired_relay("off", "credit exhausted")
        command = self.env["meter.gateway.command"]._queue(neighbour, "relay_off", "cut")
        self._post(FETCH, {"limit": 10}, message_id="f-1")
        self.assertEqual(command.state, "sent")
        relay = neighbour.actual_relay_state
        spoofed = {"id": command.id, "success": True, "relay_state": "off"}
        with self.assertLogs("odoo.addons.meter_gateway.models.prepaid_gateway", "WARNING") as log:
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
