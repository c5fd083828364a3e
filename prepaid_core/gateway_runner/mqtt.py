"""The MQTT side of the gateway runner: 4G meters through a broker into the device API.

A persistent MQTT 5 session keeps messages at the broker while the runner is away; a
message is acknowledged to the broker only after Odoo stored it (at least once), a message
that cannot be stored becomes a dead letter without holding the others (X1, R12), and
pending commands are published to the meters' ``cmd`` topics.

See docs/mqtt.md.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    backoff_delay,
    new_message_id,
)
from prepaid_core.gateway_runner.dead_letters import (
    DeadLetters,
    letter,
    may_be_content,
    server_answers,
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

UTC = timezone.utc  # datetime.UTC is Python 3.11+

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
    #: first wait after a failed delivery; doubles (jittered) up to ``max_retry_wait``
    retry_wait: float = 2.0
    max_retry_wait: float = 60.0
    #: failed deliveries of a batch in a row (5xx) after which it is split to find the
    #: message that fails (when Odoo answers an empty message meanwhile)
    isolate_after: int = 3
    #: where dead letters the device API does not take are kept (JSON lines)
    dead_letter_file: str = "dead-letters.jsonl"


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
    retries: int = 0
    splits: int = 0
    dead_letters: int = 0
    dead_letters_local: int = 0
    acks_refused: int = 0
    connects: int = 0
    #: seconds from a reading's timestamp to the broker acknowledgement after its commit
    lags: list[float] = field(default_factory=list, repr=False)


@dataclass
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(eq=False)
class _Item:
    """A received message and what it asks of the device API (``endpoint``: ``readings``,
    ``events`` or ``acks``; none: nothing to post), or why it is set aside (``dead``)."""

    inbound: _Inbound
    key: str = ""
    endpoint: str = ""
    row: dict | None = None
    read_at: datetime | None = None
    dead: str = ""
    done: bool = False


class _Refused(Exception):
    """The device API refused a batch for what it carries (4xx): the same cannot pass."""


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
        self.letters = DeadLetters(api, settings.dead_letter_file, "mqtt-dead")
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
        pending: list[_Item] = []
        failures = 0  # failed deliveries of ``pending`` in a row
        while not self._stop.is_set():
            try:
                if not pending:
                    pending, failures = self._parse(self._collect()), 0
                if pending:
                    isolate = failures + 1 >= self.settings.isolate_after
                    self._settle(pending, isolate=isolate)
                    pending = []
                if time.monotonic() >= self._next_commands and self.connected:
                    self.sync_commands()
                    self._next_commands = time.monotonic() + self.settings.command_interval
            except DeviceApiUnavailable as exc:
                # transient: what is not committed waits (same message ids next time)
                pending = [item for item in pending if not item.done]
                failures += 1
                self._back_off(str(exc), failures)
            except Exception:
                _logger.exception("gateway runner: unexpected error")
                pending = [item for item in pending if not item.done]
                failures += 1
                self._back_off("unexpected error", failures)

    def _back_off(self, reason: str, failures: int) -> None:
        """R12: wait before the next attempt, doubling (jittered, bounded) while it fails."""
        self.stats.api_failures += 1
        self.stats.retries += 1
        wait = backoff_delay(failures, self.settings.retry_wait, self.settings.max_retry_wait)
        _logger.warning("%s; retry %s in %.1fs", reason, failures, wait)
        self._stop.wait(wait)

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

    def _parse(self, batch: list[_Inbound]) -> list[_Item]:
        """Each message as what it asks of the device API; a message the schema refuses
        (or that cannot be mapped) becomes a dead letter: waiting cannot make it valid."""
        items, seen = [], set()
        for inbound in batch:
            try:
                address, message = schema.parse_message(inbound.topic, inbound.payload)
                key = (address, message.kind, message.msg_id)
                if key in seen:
                    self.stats.duplicates += 1
                    items.append(_Item(inbound))
                    continue
                seen.add(key)
                items.append(self._item(inbound, address, message))
            except schema.SchemaError as exc:
                self.stats.invalid += 1
                items.append(_Item(inbound, dead=f"invalid message: {exc}"))
            except Exception as exc:  # a mapping bug must not hold the queue either
                _logger.exception("message on %r cannot be forwarded", inbound.topic[:200])
                self.stats.invalid += 1
                items.append(_Item(inbound, dead=f"cannot be forwarded: {type(exc).__name__}"))
        return items

    def _item(self, inbound: _Inbound, address: str, message) -> _Item:
        key = f"{address}/{message.kind}/{message.msg_id}"
        if message.kind == schema.READING:
            return _Item(inbound, key, "readings", reading_to_api(address, message), message.ts)
        if message.kind == schema.EVENT:
            row = event_to_api(address, message)
        elif message.kind == schema.ACK:
            row = ack_to_api(address, message)
            if row is not None:
                return _Item(inbound, key, "acks", row)
        else:
            self.stats.statuses += 1
            row = status_to_api(address, message)
        if row is None:
            self.stats.not_forwarded += 1
            return _Item(inbound)
        return _Item(inbound, key, "events", row)

    def _settle(self, items: list[_Item], isolate: bool) -> None:
        """Post ``items``; acknowledge them to the broker once committed.

        A refusal (4xx), or a server error (500) while ``isolate`` and the device API
        answers an empty message, is blamed on the content: the batch is split in halves
        until the message that fails is alone; that one becomes a dead letter.  Any other
        failure (no answer, 502-504, 408, 409, 429: "not now") is raised: the worker
        retries what is not committed yet."""
        try:
            self._post(items)
        except DeviceApiUnavailable as exc:
            if not (isolate and may_be_content(exc) and server_answers(self.api)):
                raise
            failure = str(exc)
        except _Refused as exc:
            failure = str(exc)
        else:
            self._done(items)
            return
        if len(items) == 1:
            self._done(items, dead=f"refused by the device API even alone: {failure}")
            return
        self.stats.splits += 1
        half = len(items) // 2
        _logger.warning(
            "batch of %s messages failed (%s): split to find the one that fails",
            len(items),
            failure,
        )
        self._settle(items[:half], isolate=True)
        self._settle(items[half:], isolate=True)

    def _post(self, items: list[_Item]) -> None:
        rows = {"readings": [], "events": [], "acks": []}
        keys = []
        for item in items:
            if item.endpoint:
                rows[item.endpoint].append(item.row)
                keys.append(item.key)
        if not keys:
            return
        # the message id follows the content: a resend of the same batch is recognised
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:40]
        try:
            if rows["readings"] or rows["events"]:
                readings, events = rows["readings"], rows["events"]
                self._count_push(self.api.push(readings, events, message_id=f"mqtt-{digest}"))
            if rows["acks"]:
                answer = self.api.ack(rows["acks"], message_id=f"mqtt-ack-{digest}")
                self._log_refused_acks(answer)
        except DeviceApiError as exc:
            if exc.status in (401, 403):
                # the gateway's key is wrong: no message is to blame, all of them wait
                raise DeviceApiUnavailable(str(exc), exc.status) from exc
            raise _Refused(str(exc)) from exc
        except (TypeError, ValueError) as exc:  # an item that cannot even be encoded
            raise _Refused(f"{type(exc).__name__}: {exc}") from exc
        self.stats.batches += 1

    def _count_push(self, answer: dict) -> None:
        self.stats.stored += answer.get("stored", 0)
        self.stats.rejected += len(answer.get("rejected", []))
        for item in answer.get("rejected", []):
            _logger.info("device API rejected an item: %s", item)

    def _log_refused_acks(self, answer: dict) -> None:
        for item in answer.get("acks", []):
            if item.get("state") is None:
                self.stats.acks_refused += 1
                _logger.warning(
                    "answer to command %s refused by the device API: %s",
                    item.get("id"),
                    item.get("reason") or "unknown command",
                )

    def _done(self, items: list[_Item], dead: str | None = None) -> None:
        """The items are committed (or set aside, ``dead``: their reason): dead letters
        kept, then the messages acknowledged to the broker."""
        letters = [(item, dead or item.dead) for item in items if dead or item.dead]
        if letters:
            self._bury(letters)
        now = datetime.now(UTC)
        for item in items:
            if item.inbound.qos:
                self.client.ack(item.inbound.mid, item.inbound.qos)
            item.done = True
            self.stats.received += 1
            if dead or not item.endpoint:
                continue
            setattr(self.stats, item.endpoint, getattr(self.stats, item.endpoint) + 1)
            if self.record_lags and item.read_at:
                self.stats.lags.append((now - item.read_at).total_seconds())

    # === DEAD LETTERS === #
    def _bury(self, letters: list[tuple[_Item, str]]) -> None:
        """Set the messages aside (see :mod:`.dead_letters`); never raises."""
        rows = [
            letter(item.inbound.topic, item.inbound.payload, reason, item.inbound.received_at)
            for item, reason in letters
        ]
        self.stats.dead_letters += len(rows)
        local = self.letters.kept_locally
        self.letters.bury(rows)
        self.stats.dead_letters_local += self.letters.kept_locally - local

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
                        {
                            "id": command["id"],
                            "address": command["address"],
                            "success": False,
                            "reason": reason,
                            "permanent": True,
                        }
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
