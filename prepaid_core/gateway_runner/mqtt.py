"""The MQTT side of the gateway runner: 4G meters through a broker into the device API.

One paho-mqtt 2 client per runner, MQTT 5 with a persistent session (``clean_start``
off, a session expiry of a week): while the runner is stopped the broker keeps every QoS
1 message for it, and hands them over when it comes back.  Messages are acknowledged
*manually* (``manual_ack``): the PUBACK of a message leaves only after the device API
answered 200 for the batch that carried it, i.e. after Odoo committed it.  A runner that
dies in between gets the messages again (at least once); the server drops what it
already has (a reading of a meter at the same time is refused as a duplicate, recorded,
never stored twice).

Threads: paho's network thread only queues what arrives; one worker thread batches the
messages (``batch_size`` or ``batch_wait`` seconds, whichever comes first), posts them,
acknowledges them, and every ``command_interval`` seconds fetches the pending commands
and publishes them to the meters' ``cmd`` topics (QoS 1, waiting for the broker's PUBACK:
the command is then in the meter's persistent session).

Several runners can share the load of one gateway with an MQTT 5 shared subscription
(``share_group``: ``$share/<group>/prepaid/v1/+/reading``...).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    new_message_id,
)
from prepaid_core.gateway_runner.mapping import (
    UnsupportedCommand,
    ack_to_api,
    command_from_api,
    event_to_api,
    reading_to_api,
    status_to_api,
)
from prepaid_core.protocols import mqtt_schema as schema

__all__ = ["MqttRunner", "MqttSettings", "RunnerStats"]

_logger = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600


@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "prepaid-gateway"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    keepalive: int = 60
    share_group: str | None = None
    batch_size: int = 1000
    batch_wait: float = 0.5
    command_interval: float = 2.0
    command_limit: int = 500
    retry_wait: float = 2.0


@dataclass
class RunnerStats:
    received: int = 0
    readings: int = 0
    events: int = 0
    acks: int = 0
    statuses: int = 0
    invalid: int = 0
    not_forwarded: int = 0
    duplicates: int = 0
    batches: int = 0
    stored: int = 0
    rejected: int = 0
    commands_published: int = 0
    commands_refused: int = 0
    api_failures: int = 0
    connects: int = 0
    #: seconds from a reading's timestamp to the broker acknowledgement after its commit
    lags: list[float] = field(default_factory=list, repr=False)


@dataclass
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int


class MqttRunner:
    """Consume the meters' messages of one gateway and publish its commands."""

    def __init__(self, api: DeviceApiClient, settings: MqttSettings, *, record_lags=False):
        self.api = api
        self.settings = settings
        self.stats = RunnerStats()
        self.record_lags = record_lags
        self._inbox: queue.Queue[_Inbound] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._worker: threading.Thread | None = None
        self._next_commands = 0.0
        self.client = self._make_client()

    # === LIFE CYCLE === #
    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(1, 30)
        return client

    def start(self, wait: float = 10.0) -> MqttRunner:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            self.settings.keepalive,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()
        self._worker = threading.Thread(
            target=self._work, name=f"runner-{self.settings.client_id}", daemon=True
        )
        self._worker.start()
        if wait and not self._connected.wait(wait):
            _logger.warning("not connected to the broker after %ss; still trying", wait)
        return self

    def stop(self) -> None:
        """Stop without acknowledging what is not committed: the broker keeps it."""
        self._stop.set()
        if self._worker:
            self._worker.join(60)
        self.client.disconnect()
        self.client.loop_stop()

    def run_forever(self) -> None:
        self.start(wait=0)
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()

    @property
    def connected(self) -> bool:
        """Connected and subscribed."""
        return self._connected.is_set()

    def _topics(self) -> list[tuple[str, int]]:
        prefix = f"$share/{self.settings.share_group}/" if self.settings.share_group else ""
        return [(prefix + topic, 1) for topic in schema.SERVER_SUBSCRIPTIONS]

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            _logger.error("broker refused the connection: %s", reason_code)
            return
        self.stats.connects += 1
        _logger.info(
            "connected to %s:%s (session present: %s)",
            self.settings.host,
            self.settings.port,
            flags.session_present,
        )
        client.subscribe(self._topics())

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        failed = [code for code in reason_codes if code.is_failure]
        if failed:
            _logger.error("broker refused the subscriptions: %s", failed)
            return
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._connected.clear()
        if not self._stop.is_set():
            _logger.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        # paho's network thread: queue only, the worker does the rest
        self._inbox.put(_Inbound(message.topic, message.payload, message.mid, message.qos))

    # === WORKER === #
    def _work(self) -> None:
        pending: list[_Inbound] = []
        while not self._stop.is_set():
            try:
                if not pending:
                    pending = self._collect()
                if pending:
                    self._process(pending)
                    pending = []
                if time.monotonic() >= self._next_commands and self.connected:
                    self.sync_commands()
                    self._next_commands = time.monotonic() + self.settings.command_interval
            except DeviceApiUnavailable as exc:
                # keep the batch (same message ids next time); nothing is acknowledged
                self.stats.api_failures += 1
                _logger.warning("%s; retrying in %ss", exc, self.settings.retry_wait)
                self._stop.wait(self.settings.retry_wait)
            except Exception:
                self.stats.api_failures += 1
                _logger.exception("gateway runner: unexpected error; retrying")
                self._stop.wait(self.settings.retry_wait)

    def _collect(self) -> list[_Inbound]:
        batch: list[_Inbound] = []
        try:
            batch.append(self._inbox.get(timeout=0.2))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.settings.batch_wait
        while len(batch) < self.settings.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[_Inbound]) -> None:
        """Post one batch; acknowledge its messages to the broker once committed."""
        readings, events, acks, keys, reading_times = [], [], [], [], []
        seen = set()
        for item in batch:
            try:
                address, message = schema.parse_message(item.topic, item.payload)
            except schema.SchemaError as exc:
                # a malformed message cannot become valid by waiting: log it, do not loop
                self.stats.invalid += 1
                _logger.warning("invalid message on %s: %s", item.topic, exc)
                continue
            key = (address, message.kind, message.msg_id)
            if key in seen:
                self.stats.duplicates += 1
                continue
            seen.add(key)
            keys.append(f"{address}/{message.kind}/{message.msg_id}")
            if message.kind == schema.READING:
                readings.append(reading_to_api(address, message))
                reading_times.append(message.ts)
            elif message.kind == schema.EVENT:
                row = event_to_api(address, message)
                if row is None:
                    self.stats.not_forwarded += 1
                else:
                    events.append(row)
            elif message.kind == schema.ACK:
                row = ack_to_api(message)
                if row is None:
                    self.stats.not_forwarded += 1
                else:
                    acks.append(row)
            else:
                self.stats.statuses += 1
                events.append(status_to_api(address, message))
        # the message id follows the content: a resend of the same batch is recognised
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:40]
        if readings or events:
            self._push(readings, events, f"mqtt-{digest}")
        if acks:
            self._post_acks(acks, f"mqtt-ack-{digest}")
        for item in batch:
            if item.qos:
                self.client.ack(item.mid, item.qos)
        now = datetime.now(UTC)
        if self.record_lags:
            self.stats.lags.extend((now - ts).total_seconds() for ts in reading_times)
        self.stats.received += len(batch)
        self.stats.readings += len(readings)
        self.stats.events += len(events)
        self.stats.acks += len(acks)
        self.stats.batches += 1

    def _push(self, readings, events, message_id) -> None:
        try:
            answer = self.api.push(readings, events, message_id=message_id)
        except DeviceApiError as exc:
            if exc.status in (401, 403):
                raise DeviceApiUnavailable(str(exc)) from exc
            # the server refused the batch as a whole: send the items one by one so that
            # one bad item does not hold the others; what is refused alone is logged
            _logger.error("batch refused (%s); sending its items one by one", exc)
            for index, row in enumerate(readings):
                self._push_one([row], [], f"{message_id}-r{index}")
            for index, row in enumerate(events):
                self._push_one([], [row], f"{message_id}-e{index}")
            return
        self.stats.stored += answer.get("stored", 0)
        self.stats.rejected += len(answer.get("rejected", []))
        for item in answer.get("rejected", []):
            _logger.info("device API rejected an item: %s", item)

    def _push_one(self, readings, events, message_id) -> None:
        try:
            answer = self.api.push(readings, events, message_id=message_id)
        except DeviceApiError as exc:
            self.stats.rejected += 1
            _logger.error("device API refused %s: %s", readings or events, exc.error)
            return
        self.stats.stored += answer.get("stored", 0)
        self.stats.rejected += len(answer.get("rejected", []))

    def _post_acks(self, acks, message_id) -> None:
        try:
            answer = self.api.ack(acks, message_id=message_id)
        except DeviceApiError as exc:
            if exc.status in (401, 403):
                raise DeviceApiUnavailable(str(exc)) from exc
            _logger.error("acknowledgements refused: %s", exc.error)
            return
        for item in answer.get("acks", []):
            if item.get("state") is None:
                _logger.info("acknowledgement of unknown command %s", item.get("id"))

    # === COMMANDS === #
    def sync_commands(self) -> int:
        """Fetch the pending commands and publish them; returns how many were published.

        A command is fetched again by the server when no answer came in time (same
        ``cmd_id``): one that could not be published here is simply left to that resend.
        """
        published = 0
        while not self._stop.is_set():
            commands = self.api.fetch_commands(self.settings.command_limit)
            refused = []
            infos = []
            for command in commands:
                try:
                    message = command_from_api(command)
                except UnsupportedCommand as exc:
                    reason = str(exc)
                    refused.append(
                        {"id": command["id"], "success": False, "reason": reason, "permanent": True}
                    )
                    continue
                topic = schema.topic_for(command["address"], schema.CMD)
                infos.append(self.client.publish(topic, schema.encode(message), qos=1))
            for info in infos:
                try:
                    info.wait_for_publish(timeout=30)
                except (RuntimeError, ValueError) as exc:
                    _logger.warning("command not published (%s): the server will resend it", exc)
                    continue
                if info.is_published():
                    published += 1
            if refused:
                self.stats.commands_refused += len(refused)
                self.api.ack(refused, message_id=new_message_id("refused"))
            if len(commands) < self.settings.command_limit:
                break
        self.stats.commands_published += published
        return published
