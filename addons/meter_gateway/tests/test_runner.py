"""G1/G2/G5/G6: the gateway runner (``prepaid_core.gateway_runner``, outside Odoo) against the
real device API of this test server, a real Mosquitto and the simulator's meters.

HttpCase serves the device API on the test port with the test's own cursor: what the
runner commits through the API is visible here once the requests are allowed
(``allow_requests``) and the caches are invalidated."""

import asyncio
import tempfile
import time
from datetime import timedelta
from decimal import Decimal

from odoo import fields
from odoo.tests import HttpCase, tagged

from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.ble import BleBridge
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings
from prepaid_core.simulator import ble
from prepaid_core.simulator.broker import start_mosquitto
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter
from prepaid_core.tokens import TokenAcceptor, TokenReplayError, derive_meter_key, token_from_text

from .common import MeterGatewayCommon, MqttFleetThread, until

KEY = "runner-gateway-key-0123456789"


@tagged("post_install", "-at_install")
class TestGatewayRunner(HttpCase, MeterGatewayCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mqtt_gateway = cls.env["prepaid.gateway"].create(
            {"name": "4G cloud", "gateway_type": "mqtt", "site_id": cls.site.id}
        )
        cls.mqtt_gateway._set_api_key(KEY)
        cls.meter_4g = cls.env["prepaid.meter"].create(
            {
                "name": "4G T-201",
                "address": "000000000201",
                "model_id": cls.ddsy.id,
                "gateway_id": cls.mqtt_gateway.id,
                "state": "in_service",
            }
        )

    def setUp(self):
        super().setUp()
        broker = start_mosquitto(tempfile.mkdtemp(prefix="mg-mosquitto-"))
        self.addCleanup(broker.stop)
        self.broker = broker
        self.mqtt_gateway.write({"mqtt_host": broker.host, "mqtt_port": broker.port})

    def _api(self, gateway=None, **kwargs):
        return DeviceApiClient(
            self.base_url(), (gateway or self.mqtt_gateway).id, KEY, retries=2, **kwargs
        )

    def _runner(self, client_id):
        return MqttRunner(
            self._api(),
            MqttSettings(
                self.broker.host,
                self.broker.port,
                client_id=client_id,
                batch_wait=0.05,
                command_interval=0.2,
                retry_wait=0.2,
            ),
        )

    def test_4g_reading_arrives_through_mqtt_while_the_consumer_was_down(self):
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address])
        self.addCleanup(fleet.stop)
        client_id = self.mqtt_gateway.mqtt_client_id
        self.assertEqual(client_id, f"prepaid-gateway-{self.mqtt_gateway.id}")
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            runner = self._runner(client_id).start()
            until(lambda: runner.connected, what="runner subscribed")
            runner.stop()  # the consumer goes down; its session stays at the broker
            fleet.publish_reading(self.meter_4g.address)
            meter_reading = fleet.meter(self.meter_4g.address).snapshot()
            runner = self._runner(client_id).start()
            until(lambda: runner.stats.stored == 1, what="reading stored through the API")
            runner.stop()
        self.env.invalidate_all()
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", self.meter_4g.id)])
        self.assertEqual(len(reading), 1)
        self.assertEqual(reading.source, "push")
        self.assertAlmostEqual(reading.forward_total, float(meter_reading.forward_kwh), places=2)
        self.assertEqual(self.meter_4g.actual_relay_state, "on")
        self.assertEqual(self.mqtt_gateway.connection_state, "online")

    def test_command_through_mqtt_confirmed_by_the_meter(self):
        vending_key = self.env.company._prepaid_vending_key()
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address], vending_key=vending_key)
        self.addCleanup(fleet.stop)
        self.meter_4g._set_desired_relay("off", "test: cut")
        command = self.Command._queue(self.meter_4g, "relay_off", "test: cut")
        price = self.Command._queue(self.meter_4g, "price", "tariff", payload={"price": "0.7123"})
        credit = self.Command._queue(self.meter_4g, "credit", "recharge", payload={"amount": "20"})
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-commands").start()
            until(lambda: runner.stats.acks >= 3, what="the meter's answers posted")
            until(lambda: runner.stats.events >= 2, what="relay and token events posted")
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual(
            (command.state, price.state, credit.state), ("confirmed", "confirmed", "confirmed")
        )
        self.assertIn("meter: executed", command.reason_log)
        self.assertEqual(self.meter_4g.actual_relay_state, "off")
        simulated = fleet.meter(self.meter_4g.address)
        self.assertEqual((simulated.relay, simulated.price), ("off", Decimal("0.7123")))
        self.assertEqual(simulated.credited_total, Decimal(20))
        events = self.meter_4g.event_ids.filtered(lambda e: e.source == "device")
        self.assertIn("token_accepted", events.mapped("event_type"))
        self.assertIn("relay_off", events.mapped("event_type"))

    def test_r8_mqtt_ack_lost_resent_with_same_id_one_toggle(self):
        """R8 over MQTT: the meter executes a relay-off but its answer is lost; Odoo sends
        the command again after the answer timeout with the same id; the meter answers
        "executed earlier" without toggling again and the command is confirmed."""
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address])
        self.addCleanup(fleet.stop)
        simulated = fleet.meter(self.meter_4g.address)
        fleet.fleet[self.meter_4g.address].drop_acks = 1
        self.meter_4g._set_desired_relay("off", "credit exhausted")
        command = self.Command._queue(self.meter_4g, "relay_off", "credit exhausted")
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-r8").start()
            until(lambda: simulated.relay == "off", what="the meter executes")
            time.sleep(0.5)
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual((command.state, command.attempts), ("sent", 1))  # no answer
        command.sent_at = fields.Datetime.now() - timedelta(minutes=6)
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-r8").start()
            until(lambda: runner.stats.acks >= 1, what="the answer to the resend")
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual((command.state, command.attempts), ("confirmed", 2))
        self.assertIn("executed earlier", command.state_reason)
        self.assertEqual(simulated.relay_toggles, 1)
        self.assertEqual(self.meter_4g.actual_relay_state, "off")

    def test_connection_state_follows_the_meters_status_and_will(self):
        """G1: a 4G meter whose connection drops is lost (the broker publishes its will);
        back online when it reconnects; the retained status a restarted runner receives
        again logs nothing twice."""
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address])
        self.addCleanup(fleet.stop)
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-status").start()
            until(lambda: runner.stats.statuses >= 1, what="the retained online status")
            time.sleep(0.3)
            fleet.fleet.loop.call_soon_threadsafe(fleet.fleet.go_offline, self.meter_4g.address)
            until(lambda: runner.stats.statuses >= 2, what="the will")
            time.sleep(0.3)
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual(self.meter_4g.connection_state, "lost")
        lost = self.meter_4g.event_ids.filtered(lambda e: e.event_type == "connection_lost")
        self.assertEqual((len(lost), lost.source), (1, "device"))
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-status").start()
            fleet.fleet.loop.call_soon_threadsafe(fleet.fleet.go_online, self.meter_4g.address)
            until(lambda: runner.stats.statuses >= 1, what="online again")
            time.sleep(0.5)
            runner.stop()
            runner = self._runner("runner-status-2").start()  # receives the retained status
            until(lambda: runner.stats.statuses >= 1, what="retained status")
            time.sleep(0.3)
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual(self.meter_4g.connection_state, "online")
        restored = self.meter_4g.event_ids.filtered(lambda e: e.event_type == "connection_restored")
        # first seen, then back after the loss; the status received again added nothing
        self.assertEqual(len(restored), 2)

    def test_read_now_of_a_4g_meter(self):
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address])
        self.addCleanup(fleet.stop)
        operator = self._user("mg_operator", "prepaid_meter.group_prepaid_user")
        self.meter_4g.with_user(operator).action_read_now()
        command = self._active(self.meter_4g, "read_now")
        self.assertEqual(command.kind, "read_now")
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-read-now").start()
            until(lambda: runner.stats.stored >= 1 and runner.stats.acks >= 1, what="reading")
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual(command.state, "confirmed")
        self.assertTrue(
            self.env["prepaid.meter.reading"].search([("meter_id", "=", self.meter_4g.id)])
        )

    def test_config_gives_broker_settings_and_stores_no_secret(self):
        self.mqtt_gateway.sudo().mqtt_password = "broker-secret"
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            config = self._api().config()
        self.assertEqual(config["gateway_type"], "mqtt")
        self.assertEqual(config["mqtt"]["port"], self.broker.port)
        self.assertEqual(config["mqtt"]["password"], "broker-secret")
        messages = self.env["meter.gateway.message"].search(
            [("gateway_id", "=", self.mqtt_gateway.id)]
        )
        self.assertFalse(messages.filtered(lambda m: "broker-secret" in str(m.response)))

    def test_ble_bridge_delivers_a_credit_token_minted_by_odoo(self):
        bridge_gateway = self.env["prepaid.gateway"].create(
            {"name": "Bridge", "gateway_type": "ble_bridge", "site_id": self.site.id}
        )
        bridge_gateway._set_api_key(KEY)
        meter = self.env["prepaid.meter"].create(
            {
                "name": "BLE T-301",
                "address": "000000000301",
                "model_id": self.ddsy.id,
                "gateway_id": bridge_gateway.id,
                "state": "in_service",
                "ble_mac": "C0:FF:EE:00:03:01",
            }
        )
        vending_key = self.env.company._prepaid_vending_key()
        clock = ManualClock(utc(2026, 3, 2))
        simulated = VirtualMeter(
            MeterConfig(meter.address, vending_key=vending_key, balance=Decimal(10)), clock
        )
        network = ble.FakeBleNetwork()
        network.add(ble.BlePeripheral(simulated, meter.ble_mac))
        credit = self.Command._queue(meter, "credit", "recharge", payload={"amount": "25.50"})
        bridge = BleBridge(
            self._api(bridge_gateway),
            backend=ble.FakeBleakBackend,
            backend_kwargs={"network": network},
        )
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            asyncio.run(bridge.run_once())
        self.env.invalidate_all()
        self.assertEqual(credit.state, "confirmed", credit.reason_log)
        self.assertEqual(simulated.credited_total, Decimal("25.50"))
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])
        self.assertEqual((len(reading), reading.source), (1, "ble"))
        self.assertEqual(reading.meter_balance, 35.5)


@tagged("post_install", "-at_install")
class TestCreditTokens(MeterGatewayCommon):
    def test_r10_two_tokens_same_minute_distinct_and_strictly_ordered(self):
        first, second = self.Command._queue(
            self.meter, "credit", "two recharges", payload={"amount": "10"}
        ) | self.Command._queue(self.meter, "credit", "second", payload={"amount": "10"})
        self.assertEqual((first.state, second.state), ("queued", "queued"))  # never superseded
        self.assertLess(first.payload["sequence"], second.payload["sequence"])
        self.assertNotEqual(first.payload["token"], second.payload["token"])
        self.assertNotEqual(first.payload["keypad"], second.payload["keypad"])
        key = derive_meter_key(self.env.company._prepaid_vending_key(), self.meter.address)
        acceptor = TokenAcceptor(key, self.meter.address)
        accepted = [acceptor.accept(token_from_text(c.payload["token"])) for c in first | second]
        self.assertEqual([t.amount for t in accepted], [Decimal(10), Decimal(10)])
        # a retried delivery of either token (or of its keypad form) never credits again
        for command in first | second:
            with self.assertRaises(TokenReplayError):
                acceptor.accept(token_from_text(command.payload["token"]))
            with self.assertRaises(TokenReplayError):
                acceptor.accept(command.payload["keypad"])
        # sending a command again (next attempt) re-sends the same token, mints none
        sequence = self.meter.sudo().token_sequence
        first._mark_sent()
        first._mark_result(False, "no answer")
        self.assertEqual(self.meter.sudo().token_sequence, sequence)
        self.assertEqual(first.payload["sequence"], accepted[0].sequence)

    def test_credit_needs_an_amount(self):
        with self.assertRaisesRegex(Exception, "positive amount"):
            self.Command._queue(self.meter, "credit", "bad", payload={"amount": "-5"})
