"""G1/G2/G5: the gateway runner against a real Mosquitto and a small HTTP stand-in for the
device API (the same runner against the real Odoo device API is tested in meter_gateway's
``test_runner.py``)."""

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import json
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from prepaid_core import device_auth
from prepaid_core.buses.common import DlmsSettings
from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    backoff_delay,
)
from prepaid_core.gateway_runner.ble import BleBridge
from prepaid_core.gateway_runner.cli import main as cli_main
from prepaid_core.gateway_runner.cli import read_config
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.gateway_runner.mapping import UnsupportedCommand, command_from_api
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings
from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.protocols.dlt645_data import is_block
from prepaid_core.simulator import ble
from prepaid_core.simulator.clock import AcceleratedClock, ManualClock, utc
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.dlms_meter import DlmsMeter, DlmsSimulator
from prepaid_core.simulator.meter import DailyFreeze, MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleetThread
from prepaid_core.tokens import TokenKind, issue_token, token_to_text

KEY = "runner-test-key-0123456789"
VENDING = b"test vending key 0123456789abcdef"
_clients = itertools.count(1)
_LETTERS = Path(tempfile.mkdtemp(prefix="runner-letters-"))


class FakeDeviceApi:
    """What the runner needs of Odoo's device API: authentication (signed requests; the key
    itself if ``accept_unsigned``), idempotency by message id and body, ``config`` ids used
    once, push, commands fetch/ack (an answer settles only a command of the meter it names,
    as Odoo checks), dead letters.  ``fail_push`` / ``fail_config`` answer 503 to that many
    pushes / config requests; a push carrying a reading whose ``forward_total`` (or
    address) is in ``poison`` answers 500 (content PostgreSQL cannot store);
    ``letters_down`` answers 503 to every dead letter."""

    def __init__(self, gateway_id=7, key=KEY):
        self.gateway_id, self.key = gateway_id, key
        self.public_key = device_auth.public_key_hex(key)
        self.accept_unsigned = False
        self.fail_config = 0
        self.config_ids = set()
        self.readings, self.events, self.acks = [], [], []
        self.poison, self.letters, self.letters_down = set(), [], False
        self.confirmed, self.refused_acks = [], []
        self.frozen, self.clocks = [], []
        self.commands, self.sent = [], []
        self.answers = {}
        self.fail_push = 0
        self.not_found_pages = 0
        self.requests, self.times = [], []
        self.config = {"gateway_type": "mqtt", "mqtt": {}}
        self.fetch_extra = {}  # what a collector's fetch answer adds (poll_due, busy)
        self.reports = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, answer = api.handle(self.path, self.headers, body)
                html = isinstance(answer, str)  # a page of the web server, not of the API
                data = answer.encode() if html else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if html else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _authentic(self, path, headers, body):
        if headers.get("X-Gateway-Id") != str(self.gateway_id):
            return False
        if headers.get("X-Signature"):
            return device_auth.verify_request(
                self.public_key,
                headers["X-Signature"],
                "POST",
                path,
                headers.get("X-Timestamp"),
                headers.get("X-Message-Id"),
                body,
            )
        return self.accept_unsigned and hmac.compare_digest(headers.get("X-Api-Key", ""), self.key)

    def handle(self, path, headers, body):
        with self.lock:
            self.requests.append((path, dict(headers)))
            self.times.append((path, time.monotonic(), body))
            if self.not_found_pages:  # Odoo without its database (restarting): a 404 page
                self.not_found_pages -= 1
                return 404, "<!DOCTYPE html><html><body>404: Not Found</body></html>"
            if not self._authentic(path, headers, body):
                return 401, {"error": {"code": "unauthorized", "message": "wrong key"}}
            key = headers["X-Message-Id"]
            endpoint = path.rsplit("/v1/", 1)[1]
            if endpoint == "config":
                return self._config(key)
            if key in self.answers:
                digest, answer = self.answers[key]
                if digest != hashlib.sha256(body).hexdigest():
                    return 409, {"error": {"code": "message_id_reused", "message": key}}
                return 200, answer
            payload = json.loads(body)
            if endpoint == "push":
                if self.fail_push:
                    self.fail_push -= 1
                    return 503, {"error": {"code": "down", "message": "database restarting"}}
                if any(
                    r.get("forward_total") in self.poison or r.get("address") in self.poison
                    for r in payload.get("readings", [])
                ):
                    return 500, {"error": {"code": "server_error", "message": "numeric overflow"}}
                self.readings += payload.get("readings", [])
                self.events += payload.get("events", [])
                self.frozen += payload.get("daily_frozen", [])
                self.clocks += payload.get("clocks", [])
                answer = {"stored": len(payload.get("readings", [])), "rejected": []}
            elif endpoint == "commands/fetch":
                batch, self.commands = self.commands[: payload["limit"]], []
                self.sent += batch
                answer = {**self.fetch_extra, "commands": batch}
            elif endpoint == "commands/ack":
                self.acks += payload["acks"]
                answer = {"acks": [self._settle(ack) for ack in payload["acks"]]}
            elif endpoint == "dead_letters":
                if self.letters_down:
                    return 503, {"error": {"code": "down", "message": "database restarting"}}
                self.letters += payload["letters"]
                answer = {"stored": len(payload["letters"]), "rejected": []}
            elif endpoint == "runner/report":
                self.reports.append(payload)
                self.fetch_extra["poll_due"] = False
                answer = {}
            else:
                return 404, {"error": {"code": "not_found", "message": path}}
            self.answers[key] = (hashlib.sha256(body).hexdigest(), answer)
            return 200, answer

    def _settle(self, ack):
        meters = {c["id"]: c["address"] for c in self.sent}
        if ack.get("address") != meters.get(ack["id"]):
            self.refused_acks.append(ack)
            return {"id": ack["id"], "state": None, "reason": "another meter's command"}
        self.confirmed.append(ack["id"])
        return {"id": ack["id"], "state": "confirmed"}

    def pushes(self):
        """(time, readings) of every push request, answered or not."""
        return [
            (at, json.loads(body).get("readings", []))
            for path, at, body in self.times
            if "push" in path
        ]

    def _config(self, message_id):
        if message_id in self.config_ids:
            return 409, {"error": {"code": "message_id_reused", "message": message_id}}
        self.config_ids.add(message_id)
        if self.fail_config:
            self.fail_config -= 1
            return 503, {"error": {"code": "down", "message": "database restarting"}}
        return 200, self.config

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def device_api():
    api = FakeDeviceApi()
    yield api
    api.close()


def until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def make_runner(broker, device_api, client_id, **settings):
    # a runner's dead letters go to a file of its own, never into the working directory
    settings.setdefault("dead_letter_file", str(_LETTERS / f"{client_id}.jsonl"))
    api = DeviceApiClient(device_api.url, device_api.gateway_id, KEY, retries=0, backoff=0.01)
    return MqttRunner(
        api,
        MqttSettings(
            broker.host,
            broker.port,
            client_id=client_id,
            **{"batch_wait": 0.05, "command_interval": 0.1, "retry_wait": 0.1, **settings},
        ),
    )


def test_readings_posted_then_acknowledged_and_kept_while_runner_is_down(mosquitto, device_api):
    addresses = ["301000000001", "301000000002"]
    fleet = MqttFleetThread(mosquitto, addresses, vending_key=VENDING)
    client_id = f"runner-{next(_clients)}"
    try:
        runner = make_runner(mosquitto, device_api, client_id).start()
        until(lambda: runner.connected, what="runner connected")
        fleet.publish_reading(addresses[0])
        until(lambda: len(device_api.readings) == 1, what="first reading posted")
        runner.stop()
        # the consumer is down: meters keep publishing, the broker keeps it for the session
        for address in addresses:
            fleet.publish_reading(address)
        time.sleep(0.3)
        assert len(device_api.readings) == 1
        runner = make_runner(mosquitto, device_api, client_id).start()
        until(lambda: len(device_api.readings) == 3, what="readings kept while down")
        runner.stop()
        row = device_api.readings[-1]
        assert row["address"] in addresses and row["relay_state"] == "on"
        assert Decimal(row["forward_total"]) >= 0  # exact decimal text, never a float
        assert isinstance(row["forward_total"], str)
        assert {r["address"] for r in device_api.readings[1:]} == set(addresses)
    finally:
        fleet.stop()


def test_no_broker_ack_before_the_batch_is_committed(mosquitto, device_api):
    address = "302000000001"
    fleet = MqttFleetThread(mosquitto, [address], vending_key=VENDING)
    client_id = f"runner-{next(_clients)}"
    try:
        device_api.fail_push = 10**6  # Odoo is down: every push answers 503
        runner = make_runner(mosquitto, device_api, client_id).start()
        fleet.publish_reading(address)
        until(lambda: runner.stats.api_failures >= 2, what="failed pushes")
        acked = []
        real_ack = runner.client.ack
        runner.client.ack = lambda mid, qos: acked.append(mid) or real_ack(mid, qos)
        time.sleep(0.3)
        assert acked == [] and device_api.readings == []
        runner.stop()  # dies without acknowledging: the broker still holds the message
        device_api.fail_push = 0
        runner = make_runner(mosquitto, device_api, client_id).start()
        until(lambda: len(device_api.readings) == 1, what="reading after Odoo came back")
        runner.stop()
        runner = make_runner(mosquitto, device_api, client_id).start()
        time.sleep(0.5)  # acknowledged after the commit: not delivered a second time
        runner.stop()
        assert len(device_api.readings) == 1
    finally:
        fleet.stop()


def test_commands_published_executed_and_acknowledged(mosquitto, device_api):
    address = "303000000001"
    fleet = MqttFleetThread(mosquitto, [address], vending_key=VENDING)
    meter = fleet.fleet[address].meter
    token = token_to_text(issue_token(VENDING, address, TokenKind.CREDIT, Decimal(25), 1))
    device_api.commands = [
        {"id": 11, "address": address, "kind": "relay_off", "payload": {}, "attempt": 1},
        {"id": 12, "address": address, "kind": "price", "payload": {"price": "0.8123"}},
        {"id": 13, "address": address, "kind": "credit", "payload": {"token": token}},
        {"id": 14, "address": address, "kind": "price", "payload": {"price": "-1"}},
        {"id": 15, "address": address, "kind": "thresholds", "payload": {"alarm1": 20}},
    ]
    runner = make_runner(mosquitto, device_api, f"runner-{next(_clients)}").start()
    try:
        until(lambda: {a["id"] for a in device_api.acks} >= {11, 12, 13, 14, 15}, what="acks")
        acks = {a["id"]: a for a in device_api.acks}
        assert acks[11] == {
            "id": 11,
            "address": address,  # the ack topic's: Odoo settles only this meter's commands
            "success": True,
            "reason": "meter: executed",
            "relay_state": "off",
        }
        assert acks[12]["success"] and acks[13]["success"]
        assert not acks[14]["success"] and "bad payload" in acks[14]["reason"]
        assert acks[14]["permanent"] and acks[15]["permanent"]  # no retry can help
        assert not acks[15]["success"] and "alarm2" in acks[15]["reason"]
        assert meter.relay == "off" and meter.price == Decimal("0.8123")
        assert meter.credited_total == Decimal(25)
        # the server resends command 11 (its answer was late): the meter does not toggle again
        toggles = meter.relay_toggles
        device_api.commands = [
            {"id": 11, "address": address, "kind": "relay_off", "payload": {}, "attempt": 2}
        ]
        until(lambda: sum(a["id"] == 11 for a in device_api.acks) == 2, what="second ack")
        assert device_api.acks[-1]["reason"] == "meter: executed earlier (duplicate delivery)"
        assert meter.relay_toggles == toggles
        # relay events reached the device API too
        until(lambda: any(e["event_type"] == "relay_off" for e in device_api.events), what="event")
    finally:
        runner.stop()
        fleet.stop()


def test_invalid_messages_do_not_block_the_others(mosquitto, device_api):
    runner = make_runner(mosquitto, device_api, f"runner-{next(_clients)}").start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{next(_clients)}")
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    try:
        until(lambda: runner.connected, what="runner connected")
        time.sleep(0.2)
        publisher.publish(schema.topic_for("304000000001", "reading"), b"garbage", qos=1)
        good = schema.Reading("r-1", utc(2025, 3, 1), Decimal("12.5"), "on")
        info = publisher.publish(
            schema.topic_for("304000000001", "reading"), schema.encode(good), qos=1
        )
        info.wait_for_publish(5)
        until(lambda: len(device_api.readings) == 1, what="valid reading")
        assert runner.stats.invalid == 1
        assert device_api.readings[0]["read_at"] == "2025-03-01T00:00:00Z"
        # the garbage is kept for an operator, with its reason, and acknowledged
        until(lambda: len(device_api.letters) == 1, what="dead letter")
        [letter] = device_api.letters
        assert letter["topic"] == "prepaid/v1/304000000001/reading"
        assert letter["payload"] == "garbage"
        assert letter["reason"].startswith("invalid message:")
        assert runner.stats.dead_letters == 1
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        runner.stop()


class Publisher:
    """A plain MQTT client that publishes what a test gives it (QoS 1, waited for)."""

    def __init__(self, broker):
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{next(_clients)}")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, address, kind, payload):
        if not isinstance(payload, bytes):
            payload = schema.encode(payload)
        self.client.publish(schema.topic_for(address, kind), payload, qos=1).wait_for_publish(5)

    def reading(self, address, msg_id, kwh, minute=0):
        stamp = utc(2025, 3, 1) + dt.timedelta(minutes=minute)
        self.publish(address, "reading", schema.Reading(msg_id, stamp, Decimal(kwh), "on"))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto):
    client = Publisher(mosquitto)
    yield client
    client.close()


GOOD = ["305000000001", "305000000002", "305000000003"]
POISONED = "305000000009"


def test_poisoned_message_is_dead_lettered_once_and_the_others_flow(
    mosquitto, device_api, publisher
):
    """R12/X1: Odoo answers 500 to any batch that carries one message: the runner retries
    the batch a few times, then splits it until that message is alone, sets it aside (a
    dead letter, acknowledged to the broker) and the other meters' readings are stored;
    the next readings flow within one batch window."""
    device_api.poison = {"987654.321"}
    client_id = f"runner-{next(_clients)}"
    runner = make_runner(mosquitto, device_api, client_id, batch_wait=0.5).start()
    try:
        until(lambda: runner.connected, what="runner connected")
        publisher.reading(GOOD[0], "r-1", "10.5")
        publisher.reading(POISONED, "r-1", "987654.321")
        publisher.reading(GOOD[1], "r-1", "20.5")
        publisher.reading(GOOD[2], "r-1", "30.5")
        until(lambda: len(device_api.readings) == 3, what="the other meters' readings")
        assert sorted(r["address"] for r in device_api.readings) == GOOD
        assert runner.stats.splits >= 1 and runner.stats.dead_letters == 1
        [letter] = device_api.letters
        assert letter["topic"] == f"prepaid/v1/{POISONED}/reading"
        raw = json.loads(letter["payload"], parse_float=Decimal)
        assert (raw["msg_id"], raw["forward_kwh"]) == ("r-1", Decimal("987654.321"))
        assert "even alone" in letter["reason"] and "500" in letter["reason"]
        # the batch failed 3 times; an empty message passed: the batch is split
        assert [len(rows) for _at, rows in device_api.pushes()][:4] == [4, 4, 4, 0]
        # the queue flows again: the next readings are stored within one batch window
        published = time.monotonic()
        for index, address in enumerate(GOOD):
            publisher.reading(address, "r-2", f"{index + 11}.5", minute=1)
        until(lambda: len(device_api.readings) == 6, timeout=2.0, what="the next readings")
        assert time.monotonic() - published < 0.5 + 1.0  # batch_wait + the posting itself
    finally:
        runner.stop()
    pushes = len([rows for _at, rows in device_api.pushes() if rows])
    # acknowledged to the broker: a new runner with the same session gets no reading again
    # (only the meters' retained statuses, sent at every subscription)
    runner = make_runner(mosquitto, device_api, client_id).start()
    try:
        until(lambda: runner.connected, what="runner connected again")
        time.sleep(0.5)
    finally:
        runner.stop()
    assert len([rows for _at, rows in device_api.pushes() if rows]) == pushes
    assert len(device_api.letters) == 1
    assert len(device_api.readings) == 6


def _one_reading_through(mosquitto, device_api, publisher, **settings):
    """A runner (``settings``) carries one reading until Odoo stores it; returns it stopped."""
    runner = make_runner(mosquitto, device_api, f"runner-{next(_clients)}", **settings).start()
    try:
        until(lambda: runner.connected, what="runner connected")
        publisher.reading(GOOD[0], "r-1", "10.5")
        until(lambda: len(device_api.readings) == 1, what="the reading once Odoo is back")
    finally:
        runner.stop()
    return runner


def test_a_page_that_is_not_the_device_apis_answer_is_never_blamed_on_the_message(
    mosquitto, device_api, publisher
):
    """While Odoo loses its database it answers its web 404 page, not the device API's
    JSON: nothing was judged, the batch is sent again, never dead-lettered."""
    device_api.not_found_pages = 12  # more than the client's retries, several times over
    runner = _one_reading_through(
        mosquitto, device_api, publisher, retry_wait=0.05, max_retry_wait=0.2
    )
    assert device_api.not_found_pages == 0
    assert device_api.letters == [] and runner.stats.dead_letters == 0
    assert runner.stats.splits == 0


def test_transient_failures_are_retried_with_backoff_and_stored_once(
    mosquitto, device_api, publisher
):
    """Odoo answers 503 (busy, try again) five times: the runner waits longer after each
    failure (doubling, jittered, bounded), never blames the message (no split, no dead
    letter) and stores the reading once when Odoo is back."""
    device_api.fail_push = 5
    runner = _one_reading_through(
        mosquitto, device_api, publisher, retry_wait=0.1, max_retry_wait=0.4
    )
    pushes = device_api.pushes()
    assert [len(rows) for _at, rows in pushes] == [1] * 6  # the same batch, whole
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(pushes)]
    assert gaps[0] < 0.1 + 0.05  # after the first failure: at most retry_wait
    assert 0.1 <= gaps[1] and 0.2 <= gaps[2]  # then doubling (at least half of it)
    assert all(0.2 <= gap <= 0.4 + 0.1 for gap in gaps[3:])  # bounded by max_retry_wait
    assert device_api.letters == [] and runner.stats.dead_letters == 0
    assert runner.stats.splits == 0 and runner.stats.retries == 5
    assert len(device_api.readings) == 1


def test_backoff_delay_doubles_jittered_and_bounded():
    for failures, low, high in ((1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (9, 30.0, 60.0)):
        delays = [backoff_delay(failures, 2.0, 60.0) for _ in range(200)]
        assert low <= min(delays) and max(delays) <= high
        assert len(set(delays)) > 1  # jittered: runners do not retry in step


def test_dead_letter_kept_in_the_local_file_when_odoo_does_not_take_it(
    mosquitto, device_api, publisher, tmp_path
):
    """The dead letter cannot be posted either: it is kept in the runner's file, with the
    raw bytes escaped, and the message is acknowledged all the same (the queue flows)."""
    device_api.letters_down = True
    path = tmp_path / "letters.jsonl"
    client_id = f"runner-{next(_clients)}"
    runner = make_runner(mosquitto, device_api, client_id, dead_letter_file=str(path)).start()
    try:
        until(lambda: runner.connected, what="runner connected")
        publisher.publish(GOOD[0], "reading", b"\x00\xff{not json")
        publisher.reading(GOOD[0], "r-1", "10.5")
        until(lambda: len(device_api.readings) == 1, what="the valid reading")
        until(lambda: runner.stats.dead_letters_local == 1, what="letter kept locally")
    finally:
        runner.stop()
    [letter] = [json.loads(line) for line in path.read_text().splitlines()]
    assert letter["payload"] == "\\x00\\xff{not json"
    assert letter["topic"] == f"prepaid/v1/{GOOD[0]}/reading"
    runner = make_runner(mosquitto, device_api, client_id, dead_letter_file=str(path)).start()
    try:
        until(lambda: runner.connected, what="runner connected again")
        time.sleep(0.5)
    finally:
        runner.stop()
    assert len(path.read_text().splitlines()) == 1  # acknowledged: not delivered again


def test_spoofed_ack_on_another_meters_topic_confirms_nothing(mosquitto, device_api, publisher):
    """Meter A answers, on its own ack topic, a command of meter B: the runner passes A's
    address (from the topic) and the device API refuses to settle B's command with it."""
    meter_a, meter_b = "306000000001", "306000000002"
    device_api.commands = [{"id": 41, "address": meter_b, "kind": "relay_off", "payload": {}}]
    runner = make_runner(mosquitto, device_api, f"runner-{next(_clients)}").start()
    try:
        until(lambda: device_api.sent, what="B's command fetched")
        spoof = schema.Ack("a-1", utc(2025, 3, 1), "41", "ok", "off")
        publisher.publish(meter_a, "ack", spoof)
        until(lambda: device_api.acks, what="the answer posted")
        assert device_api.acks[0]["address"] == meter_a
        assert device_api.confirmed == [] and runner.stats.acks_refused == 1
        # B's own answer settles it
        publisher.publish(meter_b, "ack", schema.Ack("a-2", utc(2025, 3, 1), "41", "ok", "off"))
        until(lambda: device_api.confirmed == [41], what="B's own answer")
    finally:
        runner.stop()


def test_api_client_signs_retries_with_same_message_id_and_errors(device_api):
    signed = DeviceApiClient(device_api.url, 7, KEY, retries=2, backoff=0.01)
    device_api.fail_push = 1
    answer = signed.push([{"address": "1", "forward_total": Decimal("1.5")}], message_id="m-x")
    assert answer["stored"] == 1
    pushes = [h for p, h in device_api.requests if p.endswith("/push")]
    assert len(pushes) == 2 and {h["X-Message-Id"] for h in pushes} == {"m-x"}
    # signed: the key is never sent
    assert all("X-Api-Key" not in h and KEY not in json.dumps(h) for h in pushes)
    assert all(h["X-Signature"] and h["X-Timestamp"] for h in pushes)
    assert device_api.readings[0]["forward_total"] == "1.5"
    # a replay of the same message gets the first answer, nothing stored twice
    body = {"address": "1", "forward_total": Decimal("1.5")}
    assert signed.push([body], message_id="m-x") == answer
    assert len(device_api.readings) == 1
    # the same id with another body is refused for good: not retried
    before = len(device_api.requests)
    with pytest.raises(DeviceApiError) as error:
        signed.push([{"address": "1"}], message_id="m-x")
    assert error.value.status == 409 and len(device_api.requests) == before + 1
    with pytest.raises(DeviceApiError) as error:
        DeviceApiClient(device_api.url, 7, "wrong", retries=0).push([], [])
    assert error.value.status == 401 and error.value.code == "unauthorized"
    assert "wrong" not in repr(DeviceApiClient(device_api.url, 7, "wrong"))
    with pytest.raises(DeviceApiUnavailable):
        DeviceApiClient("http://127.0.0.1:9", 7, KEY, retries=1, backoff=0.01).push([], [])


def test_api_client_unsigned_only_where_accepted(device_api):
    unsigned = DeviceApiClient(device_api.url, 7, KEY, sign=False, retries=0)
    with pytest.raises(DeviceApiError) as error:
        unsigned.push([], [])
    assert error.value.status == 401
    device_api.accept_unsigned = True
    assert unsigned.push([], [])["stored"] == 0
    _path, headers = device_api.requests[-1]
    assert headers["X-Api-Key"] == KEY and "X-Signature" not in headers


def test_api_client_config_takes_a_new_message_id_at_each_attempt(device_api):
    """Odoo keeps no answer of ``config`` and refuses its message id a second time: a
    retry after a lost answer must not reuse it."""
    client = DeviceApiClient(device_api.url, 7, KEY, retries=2, backoff=0.01)
    device_api.fail_config = 1
    assert client.config() == device_api.config
    ids = [h["X-Message-Id"] for p, h in device_api.requests if p.endswith("/config")]
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.startswith("cfg-") for i in ids)
    # a second config call is a new request too
    assert client.config() == device_api.config


def test_command_mapping_refuses_what_mqtt_cannot_carry():
    command = {"id": 5, "address": "000000000001", "kind": "protect_on", "payload": None}
    message = command_from_api(command)
    assert (message.cmd, message.params, message.cmd_id) == ("protect", {"on": True}, "5")
    with pytest.raises(UnsupportedCommand):
        command_from_api({"id": 6, "address": "000000000001", "kind": "credit", "payload": {}})
    with pytest.raises(UnsupportedCommand):
        command_from_api({"id": 7, "address": "000000000001", "kind": "read_all"})


def test_cli_reads_the_key_from_a_file_and_never_from_arguments(tmp_path, device_api, capsys):
    with pytest.raises(SystemExit):
        cli_main(["--odoo-url", device_api.url, "--gateway", "7", "--api-key", KEY])
    missing = tmp_path / "empty.key"
    missing.write_text("")
    with pytest.raises(SystemExit, match="no API key"):
        cli_main(["--odoo-url", device_api.url, "--gateway", "7", "--api-key-file", str(missing)])
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-key\n")
    code = cli_main(["--odoo-url", device_api.url, "--gateway", "7", "--api-key-file", str(wrong)])
    assert code == 2
    assert "not-the-key" not in capsys.readouterr().err


def test_runner_started_while_odoo_is_away_waits_for_it(device_api):
    """R12: the settings are asked again, waits doubling, until Odoo answers; a refusal
    ends at once; a runner stopped meanwhile ends without them."""
    api = DeviceApiClient(device_api.url, device_api.gateway_id, KEY, retries=0, backoff=0.01)
    device_api.fail_config = 5  # Odoo restarting: five answers of 503
    config = read_config(api, threading.Event(), base=0.01, cap=0.02)
    assert config["gateway_type"] == "mqtt"
    assert device_api.fail_config == 0
    stopped = threading.Event()
    stopped.set()
    assert read_config(api, stopped) is None
    wrong = DeviceApiClient(device_api.url, device_api.gateway_id, "not-the-key", retries=0)
    with pytest.raises(DeviceApiError):
        read_config(wrong, threading.Event(), base=0.01, cap=0.02)


# === BLUETOOTH BRIDGE === #

ADDR_A, MAC_A = "000000005001", "C0:FF:EE:00:50:01"
ADDR_B, MAC_B = "000000005002", "C0:FF:EE:00:50:02"


def _token(address, amount, sequence):
    return token_to_text(issue_token(VENDING, address, TokenKind.CREDIT, Decimal(amount), sequence))


def test_ble_bridge_delivers_tokens_in_order_reads_and_never_credits_twice(device_api):
    clock = ManualClock(utc(2025, 3, 1))
    network = ble.FakeBleNetwork()
    meter_a = VirtualMeter(MeterConfig(ADDR_A, vending_key=VENDING, balance=Decimal(10)), clock)
    meter_b = VirtualMeter(MeterConfig(ADDR_B, vending_key=VENDING, balance=Decimal(10)), clock)
    network.add(ble.BlePeripheral(meter_a, MAC_A))
    network.add(ble.BlePeripheral(meter_b, MAC_B))
    network.move_away(MAC_B)
    api = DeviceApiClient(device_api.url, 7, KEY, retries=0)
    bridge = BleBridge(
        api,
        {ADDR_A: MAC_A, ADDR_B: MAC_B},
        backend=ble.FakeBleakBackend,
        backend_kwargs={"network": network},
    )

    def credit(command_id, address, amount, sequence):
        token = _token(address, amount, sequence)
        payload = {"token": token, "sequence": sequence, "amount": str(amount)}
        return {"id": command_id, "address": address, "kind": "credit", "payload": payload}

    # fetched out of order: the bridge writes sequence 1 before 2
    device_api.commands = [
        credit(2, ADDR_A, 20, 2),
        credit(1, ADDR_A, 5, 1),
        credit(3, ADDR_B, 7, 1),
        {"id": 4, "address": ADDR_A, "kind": "relay_off", "payload": {}},
    ]
    asyncio.run(bridge.run_once())
    acks = {a["id"]: a for a in device_api.acks}
    assert acks[1]["success"] and acks[2]["success"]
    assert meter_a.credited_total == Decimal(25)
    assert acks[3] == {
        "id": 3,
        "address": ADDR_B,
        "success": False,
        "delivered": False,
        "reason": acks[3]["reason"],
    }
    assert "not reached" in acks[3]["reason"]
    assert not acks[4]["success"] and "not supported over Bluetooth" in acks[4]["reason"]
    assert acks[4]["permanent"]
    assert [r["address"] for r in device_api.readings] == [ADDR_A]
    # each answer names the meter of its command: Odoo settles nothing for another meter
    assert {a["id"]: a["address"] for a in device_api.acks} == {
        1: ADDR_A,
        2: ADDR_A,
        3: ADDR_B,
        4: ADDR_A,
    }
    assert device_api.refused_acks == []
    assert Decimal(device_api.readings[0]["meter_balance"]) == Decimal(35)
    # R10: the result of token 2 was lost, the server sends it again: confirmed, not re-applied
    network.come_back(MAC_B)
    device_api.commands = [credit(2, ADDR_A, 20, 2), credit(3, ADDR_B, 7, 1)]
    asyncio.run(bridge.run_once())
    acks = device_api.acks[-2:]
    assert all(a["success"] for a in acks), acks
    assert "already applied" in next(a for a in acks if a["id"] == 2)["reason"]
    assert meter_a.credited_total == Decimal(25) and meter_b.credited_total == Decimal(7)
    assert bridge.stats.tokens_already_applied == 1 and bridge.stats.tokens_applied == 3


def test_ble_bridge_never_confirms_an_older_token_because_a_newer_one_was_applied(device_api):
    """G6, R10: tokens reach a meter strictly in order.  Token 1 is in flight
    elsewhere (a bridge that died with it) when token 2 is fetched: 2 is not written.  Then
    the write of 1 fails: 2 waits again.  Then both are applied, in order, once each, and a
    resend of both (results lost) is confirmed without a second credit: the meter's balance
    gains both credits exactly."""
    clock = ManualClock(utc(2025, 3, 1))
    network = ble.FakeBleNetwork()
    meter = VirtualMeter(MeterConfig(ADDR_A, vending_key=VENDING, balance=Decimal(10)), clock)
    peripheral = network.add(ble.BlePeripheral(meter, MAC_A))
    api = DeviceApiClient(device_api.url, 7, KEY, retries=0)
    bridge = BleBridge(
        api, {ADDR_A: MAC_A}, backend=ble.FakeBleakBackend, backend_kwargs={"network": network}
    )

    def credit(command_id, amount, sequence, after):
        token = _token(ADDR_A, amount, sequence)
        payload = {"token": token, "sequence": sequence, "amount": str(amount)}
        payload["after_sequence"] = after
        return {"id": command_id, "address": ADDR_A, "kind": "credit", "payload": payload}

    def round_(*commands):
        device_api.acks.clear()
        device_api.commands = list(commands)
        asyncio.run(bridge.run_once())
        return {ack["id"]: ack for ack in device_api.acks}

    # token 1 in flight elsewhere: token 2 must wait for it
    acks = round_(credit(12, 20, 2, after=1))
    assert acks[12]["success"] is False and acks[12]["delivered"] is False
    assert "waiting for token 1" in acks[12]["reason"]
    assert meter.credited_total == 0 and meter.tokens.last_sequence == 0
    # the write of token 1 fails: neither is confirmed, 2 is not written
    peripheral.fail_token_writes = 1
    acks = round_(credit(11, 5, 1, after=0), credit(12, 20, 2, after=1))
    assert not acks[11]["success"] and not acks[12]["success"]
    assert acks[11]["delivered"] is False and acks[12]["delivered"] is False
    assert meter.credited_total == 0 and meter.tokens.last_sequence == 0
    # both applied, in order
    acks = round_(credit(11, 5, 1, after=0), credit(12, 20, 2, after=1))
    assert acks[11]["success"] and acks[12]["success"], acks
    assert meter.credited_total == Decimal(25) and meter.balance == Decimal(35)
    # their results lost, both sent again: confirmed, never credited twice
    acks = round_(credit(11, 5, 1, after=0), credit(12, 20, 2, after=1))
    assert acks[11]["success"] and acks[12]["success"]
    assert "already applied" in acks[11]["reason"] and "already applied" in acks[12]["reason"]
    assert meter.credited_total == Decimal(25) and meter.balance == Decimal(35)
    assert (bridge.stats.tokens_applied, bridge.stats.tokens_already_applied) == (2, 2)


# === TCP collectors held by the runner === #
def _collector_config(collector):
    buses = collector.buses if collector else []
    return {
        "gateway_type": "tcp_collector",
        "collector": {
            "host": "127.0.0.1",
            "poll_interval": 30,
            "timeout": 0.5,
            "retries": 1,
            "lost_after_failures": 3,
            "password": "02000000",
            "operator": "00000000",
            "utc_offset_minutes": 480,
            "buses": [
                {
                    "number": number,
                    "port": bus.port,
                    "protocol": "dlt645_2007",
                    "meters": [{"address": m.address} for m in bus.meters],
                }
                for number, bus in enumerate(buses, start=1)
            ],
        },
    }


@pytest.fixture
def collector():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    clock = AcceleratedClock()
    buses = [
        Bus.of_meters([VirtualMeter(MeterConfig(f"0088{b}00000{m:02d}"), clock) for m in (1, 2)])
        for b in (1, 2)
    ]
    sim = Collector(buses)
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(10)
    yield sim
    asyncio.run_coroutine_threadsafe(sim.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_collector_runner_keeps_results_while_odoo_is_down(collector, device_api):
    """The runner polls over held connections; while the device API cannot take the
    readings they wait in its outbox and go again with the same message id, once."""
    device_api.config = _collector_config(collector)
    device_api.fetch_extra = {"poll_due": True}
    device_api.fail_push = 10  # more than the client's retries
    client = DeviceApiClient(device_api.url, 7, KEY, retries=1, backoff=0.01)
    runner = CollectorRunner(client, CollectorSettings())
    try:
        with pytest.raises(DeviceApiUnavailable):
            runner.tick()
        assert device_api.readings == [] and device_api.reports == []
        pushes = [h["X-Message-Id"] for path, h in device_api.requests if path.endswith("/push")]
        device_api.fail_push = 0
        done = runner.tick()  # the outbox first, then the next round (no poll due)
        assert done == {"commands": 0, "polled": False}
        assert sorted(r["address"] for r in device_api.readings) == sorted(
            m.address for bus in collector.buses for m in bus.meters
        )
        assert len(device_api.reports) == 1 and device_api.reports[0]["connected"] is True
        pushed = [h["X-Message-Id"] for path, h in device_api.requests if path.endswith("/push")]
        assert set(pushed) == set(pushes)  # the same message, sent again
        assert runner.stats.connects == 2  # one per bus, held
    finally:
        runner.close()


def test_collector_runner_sets_aside_the_reading_odoo_keeps_failing_on(
    collector, device_api, tmp_path
):
    """X1/R12: Odoo answers 500 to any push carrying one meter's reading (content it cannot
    store) while it answers an empty push: after ``isolate_after`` failures the runner
    splits the push until that reading is alone, sets it aside as a dead letter, and every
    other reading is stored; the outbox is empty (nothing retried for ever)."""
    device_api.config = _collector_config(collector)
    device_api.fetch_extra = {"poll_due": True}
    poisoned = collector.buses[1].meters[0].address
    device_api.poison = {poisoned}
    client = DeviceApiClient(device_api.url, 7, KEY, retries=0, backoff=0.01)
    runner = CollectorRunner(
        client, CollectorSettings(dead_letter_file=str(tmp_path / "letters.jsonl"))
    )
    try:
        for _attempt in range(2):  # the first failures: the push waits in the outbox
            with pytest.raises(DeviceApiUnavailable):
                runner.tick()
            assert device_api.readings == []
        runner.tick()  # the third: split until the reading that fails is alone
        stored = sorted(r["address"] for r in device_api.readings)
        others = sorted(m.address for bus in collector.buses for m in bus.meters)
        others.remove(poisoned)
        assert stored == others
        assert [
            json.loads(letter["payload"])["readings"][0]["address"] for letter in device_api.letters
        ] == [poisoned]
        assert "server error" in device_api.letters[0]["reason"]
        assert runner.stats.dead_letters == 1 and runner.stats.splits >= 1
        assert runner._outbox == [] and len(device_api.reports) == 1
    finally:
        runner.close()


def test_collector_runner_never_blames_a_reading_while_odoo_is_down(collector, device_api):
    """A server error while Odoo does not even take an empty push is Odoo's state, not
    the content's: the push waits whole, nothing set aside."""
    device_api.config = _collector_config(collector)
    device_api.fetch_extra = {"poll_due": True}
    runner = CollectorRunner(
        DeviceApiClient(device_api.url, 7, KEY, retries=0, backoff=0.01), CollectorSettings()
    )
    try:
        device_api.fail_push = 10**6  # every push, the empty one too, answers 503
        for _attempt in range(5):
            with pytest.raises(DeviceApiUnavailable):
                runner.tick()
        assert device_api.letters == [] and runner.stats.splits == 0
        device_api.fail_push = 0
        runner.tick()
        assert len(device_api.readings) == sum(len(bus.meters) for bus in collector.buses)
    finally:
        runner.close()


def test_collector_runner_hands_back_commands_while_odoo_polls(collector, device_api):
    device_api.config = _collector_config(collector)
    device_api.fetch_extra = {"poll_due": True, "busy": True}
    address = collector.buses[0].meters[0].address
    device_api.commands = [{"id": 5, "address": address, "kind": "relay_off", "payload": {}}]
    runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
    try:
        assert runner.tick() == {"busy": True}
        assert device_api.acks == [
            {
                "id": 5,
                "address": address,
                "success": False,
                "delivered": False,
                "reason": "collector busy",
            }
        ]
        assert collector.buses[0].meters[0].relay == "on"
        assert device_api.readings == [] and runner.stats.connects == 0
    finally:
        runner.close()


def test_collector_runner_reads_the_freezes_and_clocks_odoo_asks_for(collector, device_api):
    """G3: the fetch's answer names the meters whose last daily freeze and clock the poll
    also reads (as Odoo's scheduled poll would); the runner pushes them in a message of
    their own, the freeze's time in UTC, the clock's drift in seconds."""
    device_api.config = _collector_config(collector)
    first, second = collector.buses[0].meters
    tou = {"sharp": Decimal(1), "peak": Decimal(2), "flat": Decimal(3), "valley": Decimal(4)}
    first.daily_freeze = DailyFreeze(dt.datetime(2026, 3, 2), Decimal("123.45"), tou)
    second.time_offset = dt.timedelta(seconds=-300)  # five minutes behind
    device_api.fetch_extra = {
        "poll_due": True,
        "daily_frozen_due": [first.address, second.address],  # the second has none yet
        "clock_due": [first.address, second.address],
    }
    runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
    try:
        done = runner.tick()
        assert (done["readings"], done["daily_frozen"], done["clocks"]) == (4, 1, 2)
        assert device_api.frozen == [
            {
                "address": first.address,
                "frozen_at": "2026-03-01T16:00:00Z",  # the meter's midnight at UTC+8
                "forward_total": "123.45",
                "tou_sharp": "1.00",
                "tou_peak": "2.00",
                "tou_flat": "3.00",
                "tou_valley": "4.00",
            }
        ]
        drifts = {c["address"]: c["drift_seconds"] for c in device_api.clocks}
        assert abs(drifts[first.address]) <= 2
        assert -302 <= drifts[second.address] <= -298
        # in a push of its own, not with the readings: a refusal would not lose them
        pushes = [p for p, _h in device_api.requests if p.endswith("/push")]
        assert len(pushes) == 2
        # nothing asked: nothing more read
        device_api.fetch_extra = {"poll_due": True}
        done = runner.tick()
        assert (done["readings"], done["daily_frozen"], done["clocks"]) == (4, 0, 0)
        assert len(device_api.frozen) == 1 and len(device_api.clocks) == 2
    finally:
        runner.close()


def test_collector_runner_reads_the_clocks_of_dlt645_1997_meters(collector, device_api):
    """G3: on a DL/T645-1997 bus the runner reads the clocks Odoo names (C010H/C011H) and
    pushes their drift as for DL/T645-2007; such meters keep no daily freeze."""
    config = _collector_config(collector)
    for bus in config["collector"]["buses"]:
        bus["protocol"] = "dlt645_1997"
    device_api.config = config
    first, second = collector.buses[0].meters
    second.time_offset = dt.timedelta(seconds=90)  # ahead
    device_api.fetch_extra = {"poll_due": True, "clock_due": [first.address, second.address]}
    runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
    try:
        done = runner.tick()
        assert (done["readings"], done["daily_frozen"], done["clocks"]) == (4, 0, 2)
        drifts = {c["address"]: c["drift_seconds"] for c in device_api.clocks}
        assert abs(drifts[first.address]) <= 2
        assert 88 <= drifts[second.address] <= 92
    finally:
        runner.close()


def test_collector_runner_reads_every_other_meter_when_one_answers_garbage(
    collector, device_api, caplog
):
    """X1: a meter whose replies are garbled (not BCD) fails alone: the three other
    meters of the collector (one on its bus) are read and pushed, the poll report names
    the failed meter with its reason, and the log says it with its address."""
    device_api.config = _collector_config(collector)
    device_api.fetch_extra = {"poll_due": True}
    garbled = collector.buses[0].responders[0]
    garbled.corrupt_reads = 10_000
    runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
    try:
        with caplog.at_level("WARNING"):
            done = runner.tick()
        assert (done["readings"], done["failed"]) == (3, 1)
        others = {m.address for bus in collector.buses for m in bus.meters} - {garbled.address}
        assert {r["address"] for r in device_api.readings} == others
        (report,) = device_api.reports
        (failed,) = report["failed"]
        assert failed["address"] == garbled.address and "not BCD" in failed["error"]
        assert sorted(report["answered"]) == sorted(others)
        assert garbled.address in caplog.text and "not BCD" in caplog.text
    finally:
        runner.close()


def test_collector_runner_reads_dlt645_meters_as_odoo_polls_them(collector, device_api):
    """G2/M2: each meter is read the way the config says (the way that worked last, the
    register that bills, its own balance when it keeps one): a meter refusing blocks is
    read item by item, the way is pushed with its reading for Odoo to keep, and the
    runner's next poll asks that meter no block at all."""
    config = _collector_config(collector)
    first, quirky = config["collector"]["buses"][0]["meters"]
    first.update(billing_register="forward_reverse", read_balance=True)
    quirky.update(read_mode="block", billing_register="forward")
    device_api.config = config
    device_api.fetch_extra = {"poll_due": True}
    responder = collector.buses[0].responders[1]
    responder.refuses_blocks = True
    runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
    try:
        assert runner.tick()["failed"] == 0
        readings = {r["address"]: r for r in device_api.readings}
        assert readings[quirky["address"]]["read_mode"] == "items"
        assert readings[first["address"]]["read_mode"] == "block"
        assert "reverse_total" in readings[first["address"]]
        assert "reverse_total" not in readings[quirky["address"]]
        assert Decimal("0") < Decimal(readings[first["address"]]["meter_balance"]) <= 100
        assert "meter_balance" not in readings[quirky["address"]]
        # forward active energy (00010000H), not the combined register (00000000H)
        assert 0x00010000 in responder.reads and 0x00000000 not in responder.reads
        responder.reads.clear()
        device_api.readings.clear()
        device_api.fetch_extra["poll_due"] = True  # before the config is fetched again
        assert runner.tick()["failed"] == 0
        assert {r["read_mode"] for r in device_api.readings} == {"block", "items"}
        assert not any(is_block(di, 2007) for di in responder.reads)
    finally:
        runner.close()


def test_collector_runner_reads_dlms_meters_and_leaves_out_a_meter_it_cannot_use(device_api):
    """G9/X1: a DLMS bus in the collector config: its meters' associations come with it
    (secrets in hexadecimal); a meter whose settings are unusable is left out alone, the
    meter beside it is read."""
    sims = [DlmsMeter(physical_address=17), DlmsMeter(physical_address=18)]
    for sim in sims:
        sim.set_energy_kwh("1.0.1.8.0.255", "42.5")
    good = DlmsSettings(
        interface="hdlc",
        client_address=1,
        physical_address=17,
        authentication="low",
        password=b"12345678",
    )
    bad = {**dataclasses.replace(good, physical_address=18).to_config(), "password": "xyz"}
    with DlmsSimulator(sims, "hdlc") as simulator:
        device_api.config = {
            "gateway_type": "tcp_collector",
            "collector": {
                **_collector_config(None)["collector"],
                "buses": [
                    {
                        "number": 1,
                        "port": simulator.port,
                        "protocol": "dlms_hdlc",
                        "meters": [
                            {"address": "dlms:1:1:17", "dlms": good.to_config()},
                            {"address": "dlms:1:1:18", "dlms": bad},
                        ],
                    }
                ],
            },
        }
        device_api.fetch_extra = {"poll_due": True}
        runner = CollectorRunner(DeviceApiClient(device_api.url, 7, KEY), CollectorSettings())
        try:
            runner.tick()
        finally:
            runner.close()
    [reading] = device_api.readings
    assert reading["address"] == "dlms:1:1:17"
    assert Decimal(str(reading["forward_total"])) == Decimal("42.5")
    assert list(runner.meters) == ["dlms:1:1:17"]
