"""G7/G2: 4G meters as MQTT clients of a real Mosquitto (fixture in conftest.py)."""

import asyncio
import itertools
import threading
import time
from decimal import Decimal

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.simulator.clock import AcceleratedClock, utc
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleet
from prepaid_core.tokens import TokenKind, issue_token, token_to_text

KEY = b"test vending key 0123456789abcdef"
_ids = itertools.count(1)


class Server:
    """The server side of the test: a threaded paho client that records what arrives."""

    def __init__(self, broker):
        self.messages: list[tuple[str, object]] = []
        self.errors: list[Exception] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"server-{time.time()}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(topic, 1) for topic in schema.SERVER_SUBSCRIPTIONS])
        assert subscribed.wait(10), "the test server could not subscribe"

    def _on_message(self, client, userdata, message):
        try:
            item = schema.parse_message(message.topic, message.payload)
        except schema.SchemaError as error:  # a meter that breaks the schema fails the test
            self.errors.append(error)
            return
        with self.lock:
            self.messages.append(item)

    def of(self, address, kind):
        with self.lock:
            return [m for a, m in self.messages if a == address and m.kind == kind]

    def command(self, address, cmd, params=None, cmd_id=None, **extra):
        cmd_id = cmd_id or f"c-{next(_ids)}"
        message = schema.Command(
            f"m-{next(_ids)}", cmd_id, utc(2025, 1, 1), cmd, params or {}, **extra
        )
        self.client.publish(schema.topic_for(address, "cmd"), schema.encode(message), qos=1)
        return cmd_id

    def publish_raw(self, address, payload):
        self.client.publish(schema.topic_for(address, "cmd"), payload, qos=1)

    def acks(self, address, cmd_id):
        return [m for m in self.of(address, "ack") if m.cmd_id == cmd_id]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


async def until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run_fleet(broker, count, scenario, *, speed=600, prefix=100, mqtt_version=5, **config):
    """Start ``count`` meters (``config``: more ``MeterConfig`` fields for all), run
    ``scenario(fleet, server, addresses)``, stop."""
    server = Server(broker)
    addresses = [f"{prefix:06d}{n:06d}" for n in range(1, count + 1)]
    config = {"vending_key": KEY, "balance": Decimal(50), **config}

    async def main():
        clock = AcceleratedClock(utc(2025, 3, 1), speed=speed)
        meters = [VirtualMeter(MeterConfig(address, **config), clock) for address in addresses]
        fleet = MqttFleet(
            meters, broker.host, broker.port, clock, reading_interval=60, mqtt_version=mqtt_version
        )
        await fleet.start(timeout=20)
        try:
            await fleet.wait_connected(timeout=10)
            await scenario(fleet, server, addresses)
        finally:
            await fleet.stop()

    try:
        asyncio.run(main())
    finally:
        server.close()
    assert server.errors == []
    return server


def test_meters_connect_and_publish_valid_readings(mosquitto):
    async def scenario(fleet, server, addresses):
        await until(
            lambda: all(len(server.of(a, "reading")) >= 2 for a in addresses),
            what="two readings from every meter",
        )
        for address in addresses:
            assert server.of(address, "status")[0].state == "online"
            readings = server.of(address, "reading")
            assert readings[1].forward_kwh >= readings[0].forward_kwh
            assert readings[1].ts > readings[0].ts
            assert len({r.msg_id for r in readings}) == len(readings)
        assert fleet.stats.connected == len(addresses)

    run_fleet(mosquitto, 5, scenario, prefix=101)


def test_commands_ack_after_execution_and_duplicates_do_not_toggle_twice(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        meter = fleet[address].meter
        cmd_id = server.command(address, "relay_off")
        await until(lambda: server.acks(address, cmd_id), what="relay_off ack")
        ack = server.acks(address, cmd_id)[0]
        assert (ack.result, ack.relay, ack.duplicate) == ("ok", "off", False)
        toggles = meter.relay_toggles
        server.command(address, "relay_off", cmd_id=cmd_id)  # retry, new msg_id
        await until(lambda: len(server.acks(address, cmd_id)) == 2, what="duplicate ack")
        duplicate = server.acks(address, cmd_id)[1]
        assert duplicate.duplicate and duplicate.result == "ok" and duplicate.relay == "off"
        assert meter.relay_toggles == toggles  # R8: one physical toggle
        assert fleet.stats.duplicates == 1

        price = server.command(address, "set_price", {"price": Decimal("0.8123")})
        on = server.command(address, "relay_on")
        await until(lambda: server.acks(address, on), what="relay_on ack")
        assert server.acks(address, price)[0].result == "ok"
        assert meter.price == Decimal("0.8123")
        assert server.acks(address, on)[0].relay == "on"
        await until(
            lambda: {"relay_off", "relay_on"} <= {e.event for e in server.of(address, "event")},
            what="relay events",
        )

    run_fleet(mosquitto, 2, scenario, prefix=102)


def test_credit_token_applied_once(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        meter = fleet[address].meter
        token = token_to_text(issue_token(KEY, address, TokenKind.CREDIT, Decimal(25), 1))
        first = server.command(address, "credit_token", {"token": token})
        await until(lambda: server.acks(address, first), what="token ack")
        assert server.acks(address, first)[0].result == "ok"
        second = server.command(address, "credit_token", {"token": token})
        await until(lambda: server.acks(address, second), what="replay ack")
        replay = server.acks(address, second)[0]
        assert replay.result == "failed" and "TokenReplayError" in replay.error
        assert meter.credited_total == Decimal(25)
        other = token_to_text(issue_token(KEY, addresses[1], TokenKind.CREDIT, Decimal(25), 2))
        third = server.command(address, "credit_token", {"token": other})
        await until(lambda: server.acks(address, third), what="wrong meter ack")
        assert "WrongMeterError" in server.acks(address, third)[0].error
        assert meter.credited_total == Decimal(25)

    run_fleet(mosquitto, 2, scenario, prefix=103)


def test_bad_commands_get_failed_acks_and_are_not_redelivered(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        server.publish_raw(
            address,
            b'{"v":1,"msg_id":"m-x","cmd_id":"bad-1","ts":"2025-01-01T00:00:00Z",'
            b'"cmd":"set_price","params":{"price":-1}}',
        )
        server.publish_raw(address, b"garbage")
        expired = server.command(address, "relay_off", expires=utc(2020, 1, 1))
        await until(lambda: server.acks(address, expired), what="expired ack")
        bad = server.acks(address, "bad-1")[0]
        assert bad.result == "failed" and "params.price" in bad.error
        assert server.acks(address, expired)[0].error == "expired"
        assert fleet[address].meter.relay == "on"
        assert fleet.stats.rejected == 2

    run_fleet(mosquitto, 1, scenario, prefix=104)


@pytest.mark.parametrize("mqtt_version", [5, 4])
def test_persistent_session_delivers_commands_sent_while_offline(mosquitto, mqtt_version):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        fleet.go_offline(address)
        await until(lambda: not fleet[address].connected, what="meter offline")
        await until(
            lambda: any(s.state == "offline" for s in server.of(address, "status")),
            what="will (offline status)",
        )
        cmd_id = server.command(address, "relay_off")
        await asyncio.sleep(0.3)
        assert not server.acks(address, cmd_id)
        assert fleet[address].meter.relay == "on"
        fleet.go_online(address)
        await until(lambda: server.acks(address, cmd_id), what="ack after reconnect")
        assert server.acks(address, cmd_id)[0].relay == "off"
        assert server.of(address, "status")[-1].state == "online"

    run_fleet(
        mosquitto, 1, scenario, prefix=105 + 100 * (mqtt_version == 4), mqtt_version=mqtt_version
    )


def test_lost_connection_reconnects(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[1]
        fleet.kill(address)
        await until(
            lambda: any(s.state == "offline" for s in server.of(address, "status")),
            what="will after a lost connection",
        )
        await until(lambda: fleet.stats.disconnects == 1, what="meter noticing the loss")
        await until(lambda: fleet[address].connected, what="reconnect")
        assert fleet.stats.connects == len(addresses) + 1
        await until(lambda: server.of(address, "status")[-1].state == "online", what="online again")
        cmd_id = server.command(address, "read_now")
        await until(lambda: server.acks(address, cmd_id), what="read_now ack")

    run_fleet(mosquitto, 3, scenario, prefix=106)


def test_command_is_acknowledged_to_the_broker_only_after_its_ack_is_published(mosquitto):
    async def scenario(fleet, server, addresses):
        mqtt_meter = fleet[addresses[0]]
        calls = []
        publish, ack = mqtt_meter.client.publish, mqtt_meter.client.ack

        def spy_publish(topic, payload=None, *args, **kwargs):
            calls.append(("publish", topic.rsplit("/", 1)[-1], mqtt_meter.meter.relay))
            return publish(topic, payload, *args, **kwargs)

        def spy_ack(mid, qos):
            calls.append(("puback", mid, mqtt_meter.meter.relay))
            return ack(mid, qos)

        mqtt_meter.client.publish, mqtt_meter.client.ack = spy_publish, spy_ack
        cmd_id = server.command(addresses[0], "relay_off")
        await until(lambda: server.acks(addresses[0], cmd_id), what="ack")
        kinds = [c[1] if c[0] == "publish" else "puback" for c in calls]
        assert kinds.index("ack") < kinds.index("puback")
        assert calls[kinds.index("puback")][2] == "off"  # executed before the PUBACK

    run_fleet(mosquitto, 1, scenario, prefix=107)


def test_lost_ack_read_back_and_no_second_toggle(mosquitto):
    async def scenario(fleet, server, addresses):
        address = addresses[0]
        mqtt_meter = fleet[address]
        mqtt_meter.drop_acks = 1
        cmd_id = server.command(address, "relay_off")
        await until(lambda: mqtt_meter.meter.relay == "off", what="execution")
        await asyncio.sleep(0.2)
        assert not server.acks(address, cmd_id)  # R8: executed, ack lost
        toggles = mqtt_meter.meter.relay_toggles
        server.command(address, "relay_off", cmd_id=cmd_id)  # the gateway retries
        await until(lambda: server.acks(address, cmd_id), what="ack of the retry")
        ack = server.acks(address, cmd_id)[0]
        assert ack.duplicate and ack.result == "ok" and ack.relay == "off"
        assert mqtt_meter.meter.relay_toggles == toggles

    run_fleet(mosquitto, 1, scenario, prefix=108)
