"""4G prepaid meters as MQTT clients of a real broker (G7, schema G2).

One MQTT connection per meter, as in the field (each meter has its own session, will and
keepalive), and many meters per process: every meter is a paho-mqtt ``Client`` on one
asyncio loop through paho's external-loop interface, with no thread per client.
``MqttFleet`` runs the meters; ``MqttMeter.drop_acks`` and ``MqttFleet.kill``,
``go_offline``/``go_online`` inject faults. What a meter publishes and how it handles
commands: docs/mqtt.md; fleet figures: ``benchmarks/bench_mqtt_fleet.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.simulator.clock import AcceleratedClock, Clock
from prepaid_core.simulator.meter import (
    TOKEN_ERRORS,
    MeterConfig,
    MeterEvent,
    MeterSnapshot,
    VirtualMeter,
)
from prepaid_core.tokens import token_from_text

__all__ = ["FleetStats", "MqttFleet", "MqttMeter"]

_logger = logging.getLogger(__name__)

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
_CMD_ID_RE = re.compile(rb'"cmd_id"\s*:\s*"([A-Za-z0-9][A-Za-z0-9._:-]{0,63})"')


@dataclass
class FleetStats:
    """Counters of a fleet (published = handed to paho; acked = PUBACK received: the broker
    holds the message from then on), in all and by kind of message (``by_kind``:
    ``{kind: [published, acked]}``)."""

    connected: int = 0
    connects: int = 0
    disconnects: int = 0
    published: int = 0
    acked: int = 0
    commands: int = 0
    duplicates: int = 0
    rejected: int = 0
    publish_errors: int = 0
    connect_errors: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, acked: bool) -> None:
        self.by_kind.setdefault(kind, [0, 0])[acked] += 1


def reading_message(msg_id: str, snap: MeterSnapshot) -> schema.Reading:
    """The schema message of a meter snapshot."""
    return schema.Reading(
        msg_id=msg_id,
        ts=snap.ts,
        forward_kwh=snap.forward_kwh,
        relay=snap.relay,
        reverse_kwh=snap.reverse_kwh,
        tou_kwh=snap.tou_kwh,
        voltage_v=snap.voltage_v,
        current_a=snap.current_a,
        power_kw=snap.power_kw,
        pf=snap.pf,
        balance=snap.balance,
        status_word=snap.status_word,
    )


def event_message(msg_id: str, event: MeterEvent) -> schema.Event:
    detail = event.detail[:200] if event.detail else None
    return schema.Event(msg_id, event.ts, event.event, event.code, detail, event.relay)


class MqttMeter:
    """One virtual meter behind one MQTT client."""

    def __init__(self, fleet: MqttFleet, meter: VirtualMeter):
        self.fleet = fleet
        self.meter = meter
        self.address = meter.address
        self.topics = {kind: schema.topic_for(self.address, kind) for kind in schema.KINDS}
        self.connected = False
        self.offline = False  # coverage gap: do not reconnect
        self.sequence = 0
        self.executed: OrderedDict[str, schema.Ack] = OrderedDict()
        self.phase = (zlib.crc32(self.address.encode()) % 1000) / 1000
        self._connack: asyncio.Future | None = None
        self._sock = None
        self._writer = False
        self.drop_acks = 0  # fault injection: execute, but lose the next N ack messages
        self.inflight: dict[int, tuple[str, tuple | None]] = {}  # mid -> (kind, record)
        self.client = self._make_client()

    # === CLIENT === #

    def _make_client(self) -> paho.Client:
        v5 = self.fleet.mqtt_version == 5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"meter-{self.address}",
            clean_session=None if v5 else False,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.will_set(
            self.topics[schema.STATUS], self._status_payload("offline"), qos=1, retain=True
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.message_callback_add(self.topics[schema.CMD], self._on_command)
        # External loop without write registration: paho writes at once when it can (no
        # epoll_ctl churn per message); what it cannot write yet is flushed by ``flush``,
        # which waits for writability only then.
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        return client

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._sock = sock
        self.fleet.loop.add_reader(sock, self._on_readable)

    def _on_socket_close(self, client, userdata, sock) -> None:
        self.fleet.loop.remove_reader(sock)
        if self._writer:
            self.fleet.loop.remove_writer(sock)
            self._writer = False
        self._sock = None

    def _on_readable(self) -> None:
        self.client.loop_read()
        self.flush()

    def _on_writable(self) -> None:
        self.client.loop_write()
        if not self.client.want_write() and self._writer:
            self.fleet.loop.remove_writer(self._sock)
            self._writer = False

    def flush(self) -> None:
        """Write what paho has queued (packets queued inside a callback wait for this)."""
        client = self.client
        if client.want_write() and self._sock is not None:
            client.loop_write()
            if client.want_write() and not self._writer:
                self.fleet.loop.add_writer(self._sock, self._on_writable)
                self._writer = True

    def next_msg_id(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}-{self.address}-{self.fleet.boot}-{self.sequence}"

    def _status_payload(self, state: str) -> bytes:
        now = self.meter.clock.now()
        return schema.encode(schema.Status(self.next_msg_id("s"), now, state), validate=False)

    def connect(self) -> asyncio.Future:
        """Open the TCP connection and send CONNECT; the future resolves on CONNACK."""
        self._connack = self.fleet.loop.create_future()
        if self.fleet.mqtt_version == 5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
            options = {"clean_start": False, "properties": properties}
        else:
            options = {}  # MQTT 3.1.1: clean_session=False on the client
        self.client.will_set(
            self.topics[schema.STATUS], self._status_payload("offline"), qos=1, retain=True
        )
        try:
            self.client.connect(
                self.fleet.host,
                self.fleet.port,
                keepalive=self.fleet.keepalive,
                **options,
            )
        except OSError as error:
            self.fleet.stats.connect_errors += 1
            self._connack.set_exception(error)
        return self._connack

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.fleet.stats.connect_errors += 1
            if self._connack and not self._connack.done():
                self._connack.set_exception(ConnectionError(str(reason_code)))
            return
        self.connected = True
        self.fleet.stats.connected += 1
        self.fleet.stats.connects += 1
        client.subscribe(self.topics[schema.CMD], qos=1)
        self._publish(schema.STATUS, self._status_payload("online"), retain=True)
        if self._connack and not self._connack.done():
            self._connack.set_result(flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.connected:
            self.connected = False
            self.fleet.stats.connected -= 1
            self.fleet.stats.disconnects += 1
        if self._connack and not self._connack.done():
            self._connack.set_exception(ConnectionError(f"disconnected: {reason_code}"))
        if not self.fleet.stopping and not self.offline:
            self.fleet.schedule_reconnect(self)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self.fleet.stats.acked += 1
        kind, record = self.inflight.pop(mid, ("?", None))
        self.fleet.stats.count(kind, True)
        if record is not None and self.fleet.record is not None:
            self.fleet.record(*record)

    def _publish(self, kind: str, payload: bytes, retain: bool = False, record=None) -> None:
        """Publish with QoS 1; ``record`` (a tuple) goes to the fleet's record once the
        broker acknowledged the message."""
        info = self.client.publish(self.topics[kind], payload, qos=1, retain=retain)
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self.inflight[info.mid] = (kind, record)
        if self.client.want_write():
            self.flush()
        if info.rc == paho.MQTT_ERR_SUCCESS:
            self.fleet.stats.published += 1
            self.fleet.stats.count(kind, False)
        else:
            # Not connected: QoS 1 messages published while offline are not kept by paho
            # here; the reading is simply taken again at the next interval.
            self.fleet.stats.publish_errors += 1

    # === PUBLISHING === #

    def publish_reading(self) -> None:
        if not self.connected or not self.meter.powered:
            return
        self.publish_events()
        message = reading_message(self.next_msg_id("r"), self.meter.snapshot())
        self._publish(
            schema.READING,
            schema.encode(message, validate=False),
            record=(schema.READING, self.address, message.msg_id, message.ts),
        )

    def publish_events(self) -> None:
        if not self.connected:
            return
        for event in self.meter.drain_events():
            message = event_message(self.next_msg_id("e"), event)
            self._publish(schema.EVENT, schema.encode(message, validate=False))

    # === COMMANDS === #

    def _on_command(self, client, userdata, message) -> None:
        """Execute, publish the ack, then acknowledge the PUBLISH (work committed first)."""
        self.fleet.stats.commands += 1
        try:
            ack = self._handle_command(message.payload)
            if ack is not None and self.drop_acks > 0:
                self.drop_acks -= 1  # executed; the ack is lost on the way (R8)
            elif ack is not None:
                self._publish(schema.ACK, schema.encode(ack, validate=False))
            self.publish_events()
        except Exception:
            # Not acknowledged: the broker delivers it again after a reconnect, and the
            # cmd_id table answers it without executing twice if it had run.
            _logger.exception("meter %s: command not processed", self.address)
            self.fleet.stats.extra["command_errors"] = (
                self.fleet.stats.extra.get("command_errors", 0) + 1
            )
            return
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def _ack(self, cmd_id: str, result: str, error: str | None = None, duplicate=False):
        now = self.meter.clock.now()
        return schema.Ack(
            msg_id=self.next_msg_id("a"),
            ts=now + self.meter.time_offset,
            cmd_id=cmd_id,
            result=result,
            relay=self.meter.relay,
            error=error[:200] if error else None,
            balance=self.meter.balance.quantize(Decimal("0.0001")),
            duplicate=duplicate,
        )

    def _handle_command(self, payload: bytes) -> schema.Ack | None:
        try:
            command = schema.decode(schema.CMD, payload)
        except schema.SchemaError as error:
            self.fleet.stats.rejected += 1
            found = _CMD_ID_RE.search(payload[: schema.MAX_PAYLOAD_BYTES])
            if found is None:
                _logger.warning("meter %s: unreadable command dropped: %s", self.address, error)
                return None
            return self._ack(found.group(1).decode(), "failed", f"invalid command: {error}")
        if command.cmd_id in self.executed:
            self.fleet.stats.duplicates += 1
            previous = self.executed[command.cmd_id]
            return self._ack(command.cmd_id, previous.result, previous.error, duplicate=True)
        now = self.meter.local_now()
        if command.expires is not None and now > command.expires:
            ack = self._ack(command.cmd_id, "failed", "expired")
        else:
            try:
                self._execute(command)
            except (*TOKEN_ERRORS, ValueError) as error:
                ack = self._ack(command.cmd_id, "failed", f"{type(error).__name__}: {error}")
            else:
                ack = self._ack(command.cmd_id, "ok")
        self.executed[command.cmd_id] = ack
        while len(self.executed) > 256:
            self.executed.popitem(last=False)
        return ack

    def _execute(self, command: schema.Command) -> None:
        meter, params = self.meter, command.params
        if command.cmd == "relay_on":
            meter.relay_on()
        elif command.cmd == "relay_off":
            meter.relay_off()
        elif command.cmd == "protect":
            meter.set_protect(params["on"])
        elif command.cmd == "set_price":
            meter.set_price(params["price"])
        elif command.cmd == "set_thresholds":
            meter.set_thresholds(params["alarm1"], params["alarm2"], params.get("overload_kw"))
        elif command.cmd == "time_sync":
            meter.time_sync(params["time"])
        elif command.cmd == "zero":
            meter.zero()
        elif command.cmd == "credit_token":
            # 20 digits: STS on an STS meter, the own keypad form otherwise (the meter knows)
            token = params["token"]
            meter.apply_token(token if token.isdigit() else token_from_text(token))
        elif command.cmd == "read_now":
            self.publish_reading()


class MqttFleet:
    """Many ``MqttMeter`` in one asyncio loop; see docs/mqtt.md for what each meter does."""

    def __init__(
        self,
        meters: Iterable[VirtualMeter],
        host: str,
        port: int,
        clock: Clock,
        *,
        reading_interval: float = 60.0,
        keepalive: int = 60,
        connect_concurrency: int = 200,
        reconnect_delay: float = 1.0,
        mqtt_version: int = 5,
        record: Callable[[str, str, str, datetime], None] | None = None,
    ):
        if mqtt_version not in (4, 5):
            raise ValueError("mqtt_version is 5 (MQTT 5) or 4 (MQTT 3.1.1)")
        self.mqtt_version = mqtt_version
        self.host, self.port, self.clock = host, port, clock
        self.reading_interval = reading_interval
        self.keepalive = keepalive
        self.connect_concurrency = connect_concurrency
        self.reconnect_delay = reconnect_delay
        self.stats = FleetStats()
        # called with (kind, address, msg_id, ts) for each reading the broker acknowledged:
        # the fleet's own account of what it handed over, to check a run against
        self.record = record
        self.boot = os.urandom(4).hex()
        self.stopping = False
        self.loop = asyncio.get_running_loop()
        self.meters: dict[str, MqttMeter] = {}
        for meter in meters:
            self.meters[meter.address] = MqttMeter(self, meter)
        self._tasks: list[asyncio.Task] = []
        self._reconnects: set[str] = set()

    def __getitem__(self, address: str) -> MqttMeter:
        return self.meters[address]

    # === LIFE CYCLE === #

    async def start(self, *, timeout: float = 120.0) -> None:
        """Connect every meter (at most ``connect_concurrency`` CONNECTs in flight),
        then start the housekeeping and reading tasks."""
        self._tasks.append(self.loop.create_task(self._misc_loop()))
        failed: list[MqttMeter] = []
        await asyncio.wait_for(self._connect_all(failed), timeout)
        for mqtt_meter in failed:
            self.schedule_reconnect(mqtt_meter)
        self._tasks.append(self.loop.create_task(self._reading_loop()))

    async def _connect_all(self, failed: list[MqttMeter]) -> None:
        pending: set[asyncio.Future] = set()
        for mqtt_meter in self.meters.values():
            while len(pending) >= self.connect_concurrency:
                _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            future = mqtt_meter.connect()
            future.add_done_callback(
                lambda f, m=mqtt_meter: f.exception() is not None and failed.append(m)
            )
            pending.add(future)
        if pending:
            await asyncio.wait(pending)

    async def stop(self, drain: float = 10.0) -> None:
        """Stop publishing readings, wait (``drain`` seconds at most) for the broker's
        acknowledgement of what is in flight, publish ``offline`` and disconnect every
        meter cleanly: a message either was acknowledged (and recorded) or never left."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.drain(drain)
        for mqtt_meter in self.meters.values():
            if mqtt_meter.connected:
                mqtt_meter._publish(
                    schema.STATUS, mqtt_meter._status_payload("offline"), retain=True
                )
        await self.drain(drain)
        for mqtt_meter in self.meters.values():
            if mqtt_meter.connected:
                mqtt_meter.client.disconnect()
        await asyncio.sleep(0.05)
        for mqtt_meter in self.meters.values():
            if mqtt_meter.client.socket() is not None:
                mqtt_meter.client.loop_write()
                mqtt_meter.client.loop_read()

    async def drain(self, timeout: float) -> int:
        """Wait until the connected meters' messages in flight are acknowledged; return how
        many are still in flight after ``timeout`` seconds."""
        deadline = self.loop.time() + timeout
        while True:
            left = sum(len(m.inflight) for m in self.meters.values() if m.connected)
            if not left or self.loop.time() > deadline:
                return left
            await asyncio.sleep(0.05)

    def schedule_reconnect(self, mqtt_meter: MqttMeter, delay: float | None = None) -> None:
        if mqtt_meter.address in self._reconnects or self.stopping:
            return
        self._reconnects.add(mqtt_meter.address)

        def reconnect():
            self._reconnects.discard(mqtt_meter.address)
            if self.stopping or mqtt_meter.offline or mqtt_meter.connected:
                return
            future = mqtt_meter.connect()
            future.add_done_callback(
                lambda f: f.exception() and self.schedule_reconnect(mqtt_meter)
            )

        jitter = mqtt_meter.phase * self.reconnect_delay
        self.loop.call_later(self.reconnect_delay + jitter if delay is None else delay, reconnect)

    # === FAULTS === #

    def kill(self, address: str) -> None:
        """Drop the TCP connection without DISCONNECT (the broker publishes the will)."""
        mqtt_meter = self.meters[address]
        sock = mqtt_meter.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)

    def go_offline(self, address: str) -> None:
        """A coverage gap: drop the connection and stay away until ``go_online``."""
        self.meters[address].offline = True
        self.kill(address)

    def go_online(self, address: str) -> None:
        mqtt_meter = self.meters[address]
        mqtt_meter.offline = False
        self.schedule_reconnect(mqtt_meter, delay=0)

    # === LOOPS === #

    async def _misc_loop(self) -> None:
        while True:
            for mqtt_meter in self.meters.values():
                if mqtt_meter.client.socket() is not None:
                    mqtt_meter.client.loop_misc()
            await asyncio.sleep(1.0)

    async def _reading_loop(self) -> None:
        """Each meter publishes once per interval, at its own phase within it.

        The loop yields to the event loop at least every 64 publications (so PUBACKs and
        commands are served even when the fleet runs behind) and counts readings
        published more than one interval late in ``stats.extra["late"]``.
        """
        interval = self.reading_interval
        order = sorted(self.meters.values(), key=lambda m: m.phase)
        if not order:
            return
        start = self.clock.now().timestamp()
        cycle = 0
        late = self.stats.extra.setdefault("late", 0)
        while True:
            cycle_start = start + cycle * interval
            for index, mqtt_meter in enumerate(order):
                due = cycle_start + mqtt_meter.phase * interval
                wait = due - self.clock.now().timestamp()
                if wait > 0:
                    await self.clock.sleep(wait)
                else:
                    if wait < -interval:
                        late += 1
                        self.stats.extra["late"] = late
                    if index % 64 == 0:
                        await asyncio.sleep(0)
                mqtt_meter.publish_reading()
            cycle += 1
            self.stats.extra["cycles"] = cycle

    async def wait_connected(self, count: int | None = None, timeout: float = 30.0) -> None:
        """Wait until ``count`` (default all) meters are connected."""
        target = len(self.meters) if count is None else count
        deadline = self.loop.time() + timeout
        while self.stats.connected < target:
            if self.loop.time() > deadline:
                raise TimeoutError(f"{self.stats.connected}/{target} meters connected")
            await asyncio.sleep(0.02)


class MqttFleetThread:
    """An ``MqttFleet`` of new virtual meters served by an asyncio loop in a thread of its
    own, for synchronous callers (tests of the gateway runner and of Odoo): readings only
    when asked (``publish_reading``) unless ``reading_interval`` says otherwise."""

    def __init__(self, broker, addresses, vending_key=None, reading_interval=10**6, options=None):
        """``options``: ``{address: {MeterConfig field: value}}`` for meters set up
        otherwise (an STS meter: ``token_format="sts"`` and its ``decoder_key``)."""
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        clock = AcceleratedClock()
        extra = {"vending_key": vending_key} if vending_key else {}
        options = options or {}
        meters = [
            VirtualMeter(MeterConfig(a, **extra, **options.get(a, {})), clock) for a in addresses
        ]

        async def start():
            fleet = MqttFleet(
                meters, broker.host, broker.port, clock, reading_interval=reading_interval
            )
            await fleet.start(timeout=20)
            await fleet.wait_connected(timeout=10)
            return fleet

        self.fleet = self.call(start())

    def call(self, coroutine, timeout=30):
        """Run ``coroutine`` in the fleet's loop; return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def publish_reading(self, address):
        async def publish():
            self.fleet[address].publish_reading()

        self.call(publish())

    def meter(self, address) -> VirtualMeter:
        return self.fleet[address].meter

    def stop(self):
        self.call(self.fleet.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
