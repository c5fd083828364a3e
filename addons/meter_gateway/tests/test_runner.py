"""G1/G2/G5/G6: the gateway runner (``prepaid_core.gateway_runner``, outside Odoo) against the
real device API of this test server, a real Mosquitto and the simulator's meters.

HttpCase serves the device API on the test port with the test's own cursor: what the
runner commits through the API is visible here once the requests are allowed
(``allow_requests``) and the caches are invalidated."""

import asyncio
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from prepaid_core.gateway_runner.api import DeviceApiClient, DeviceApiError
from prepaid_core.gateway_runner.ble import BleBridge
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings
from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.simulator import ble
from prepaid_core.simulator.broker import start_mosquitto
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.meter import DailyFreeze, MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleetThread
from prepaid_core.tokens import TokenAcceptor, TokenReplayError, derive_meter_key, token_from_text

from .common import MeterGatewayCommon, until

KEY = "runner-gateway-key-0123456789"


async def _publish_events(mqtt_meter):
    mqtt_meter.publish_events()


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

    def test_runner_killed_before_its_broker_ack_logs_events_once(self):
        """The runner dies after Odoo committed a batch but before it acknowledged the
        messages to the broker: the next runner gets them again, with a new message in
        the same batch (another message id): the event is logged once, no reading
        twice."""
        fleet = MqttFleetThread(self.broker, [self.meter_4g.address])
        self.addCleanup(fleet.stop)
        simulated = fleet.meter(self.meter_4g.address)
        client_id = "runner-killed"
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner(client_id).start()
            until(lambda: runner.connected, what="runner subscribed")
            runner.client.ack = lambda mid, qos: None  # killed before acknowledging
            simulated.inject_tamper("cover")
            fleet.call(_publish_events(fleet.fleet[self.meter_4g.address]))
            until(lambda: runner.stats.events >= 1, what="the event committed")
            runner.stop()
            fleet.publish_reading(self.meter_4g.address)
            runner = MqttRunner(
                self._api(),
                MqttSettings(
                    self.broker.host, self.broker.port, client_id=client_id, batch_wait=0.5
                ),
            ).start()
            until(lambda: runner.stats.stored >= 1, what="the reading after the restart")
            runner.stop()
        self.env.invalidate_all()
        tampers = self.meter_4g.event_ids.filtered(lambda e: e.event_type == "tamper_cover")
        self.assertEqual(len(tampers), 1)
        self.assertTrue(tampers.device_event_id)
        self.assertEqual(
            self.env["prepaid.meter.reading"].search_count([("meter_id", "=", self.meter_4g.id)]),
            1,
        )

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

    def test_spoofed_answer_refused_and_garbage_kept_as_a_dead_letter(self):
        """Meter A answers, on its own ack topic, a command of meter B: the runner passes
        A's address and Odoo leaves B's command and relay as they are; B's own answer
        confirms it.  A message the schema refuses is kept in *Dead Letters*, linked to
        the meter of its topic, and holds nothing else up."""
        meter_b = self.env["prepaid.meter"].create(
            {
                "name": "4G T-202",
                "address": "000000000202",
                "model_id": self.ddsy.id,
                "gateway_id": self.mqtt_gateway.id,
                "state": "in_service",
            }
        )
        meter_b._set_desired_relay("off", "credit exhausted")
        command = self.Command._queue(meter_b, "relay_off", "credit exhausted")
        relay = meter_b.actual_relay_state
        publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="spoofer")
        publisher.connect(self.broker.host, self.broker.port)
        publisher.loop_start()
        self.addCleanup(publisher.loop_stop)

        def publish(address, kind, payload):
            topic = schema.topic_for(address, kind)
            publisher.publish(topic, payload, qos=1).wait_for_publish(5)

        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-spoof").start()
            until(lambda: runner.stats.commands_published >= 1, what="B's command published")
            spoof = schema.Ack("a-1", utc(2026, 3, 2), str(command.id), "ok", "off")
            publish(self.meter_4g.address, "ack", schema.encode(spoof))
            publish(self.meter_4g.address, "reading", b"\x00not json")
            until(lambda: runner.stats.received >= 2, what="both messages handled")
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual((command.state, meter_b.actual_relay_state), ("sent", relay))
        self.assertEqual(runner.stats.acks_refused, 1)
        self.assertIn("answer refused", command.reason_log)
        with self.allow_requests(all_requests=True):
            runner = self._runner("runner-spoof").start()
            until(lambda: runner.connected, what="runner subscribed")
            own = schema.Ack("a-2", utc(2026, 3, 2), str(command.id), "ok", "off")
            publish(meter_b.address, "ack", schema.encode(own))
            until(lambda: runner.stats.received >= 1, what="B's own answer")
            runner.stop()
        self.env.invalidate_all()
        self.assertEqual((command.state, meter_b.actual_relay_state), ("confirmed", "off"))
        letter = self.env["meter.gateway.dead.letter"].search(
            [("gateway_id", "=", self.mqtt_gateway.id)]
        )
        self.assertEqual(len(letter), 1)
        self.assertEqual((letter.meter_id, letter.payload), (self.meter_4g, "\\x00not json"))
        self.assertIn("invalid message", letter.reason)

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

    def _ble_meter(self, number, bridge_name="Bridge"):
        """A Bluetooth bridge (keyed with ``KEY``) and its meter BLE T-30<number>."""
        bridge_gateway = self.env["prepaid.gateway"].create(
            {"name": bridge_name, "gateway_type": "ble_bridge", "site_id": self.site.id}
        )
        bridge_gateway._set_api_key(KEY)
        meter = self.env["prepaid.meter"].create(
            {
                "name": f"BLE T-30{number}",
                "address": f"00000000030{number}",
                "model_id": self.ddsy.id,
                "gateway_id": bridge_gateway.id,
                "state": "in_service",
                "ble_mac": f"C0:FF:EE:00:03:0{number}",
            }
        )
        return bridge_gateway, meter

    def _ble_bridge(self, bridge_gateway, meter):
        """A simulated meter (balance 10, the company's vending key) in reach of a
        Bluetooth bridge served by ``bridge_gateway``: (the simulated meter, the bridge)."""
        vending_key = self.env.company._prepaid_vending_key()
        simulated = VirtualMeter(
            MeterConfig(meter.address, vending_key=vending_key, balance=Decimal(10)),
            ManualClock(utc(2026, 3, 2)),
        )
        network = ble.FakeBleNetwork()
        network.add(ble.BlePeripheral(simulated, meter.ble_mac))
        bridge = BleBridge(
            self._api(bridge_gateway),
            backend=ble.FakeBleakBackend,
            backend_kwargs={"network": network},
        )
        return simulated, bridge

    def test_ble_bridge_delivers_a_credit_token_minted_by_odoo(self):
        bridge_gateway, meter = self._ble_meter(1)
        simulated, bridge = self._ble_bridge(bridge_gateway, meter)
        credit = self.Command._queue(meter, "credit", "recharge", payload={"amount": "25.50"})
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            asyncio.run(bridge.run_once())
        self.env.invalidate_all()
        self.assertEqual(credit.state, "confirmed", credit.reason_log)
        self.assertEqual(simulated.credited_total, Decimal("25.50"))
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])
        self.assertEqual((len(reading), reading.source), (1, "ble"))
        self.assertEqual(reading.meter_balance, 35.5)

    def test_ble_credit_tokens_reach_the_meter_in_order_each_once(self):
        """G6, R10: token 1 was fetched by a bridge that died with it; token 2
        is not handed out while 1 is in flight, so no bridge writes 2 first (the meter
        would then refuse 1 and be short of its credit).  Once 1 is due again both go out,
        are applied in order and confirmed, each once."""
        bridge_gateway, meter = self._ble_meter(2)
        simulated, bridge = self._ble_bridge(bridge_gateway, meter)
        first = self.Command._queue(meter, "credit", "recharge 1", payload={"amount": "5"})
        lost = bridge_gateway._api_fetch_commands()["commands"]  # the bridge that died
        self.assertEqual([c["id"] for c in lost], first.ids)
        second = self.Command._queue(meter, "credit", "recharge 2", payload={"amount": "20"})
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = asyncio.run(bridge.run_once())
        self.env.invalidate_all()
        self.assertEqual(done["acks"], [])  # token 2 was not handed out
        self.assertEqual((first.state, second.state, second.attempts), ("sent", "queued", 0))
        self.assertEqual(simulated.credited_total, 0)
        # token 1's answer is overdue: sent again, with token 2 after it
        first.sent_at = fields.Datetime.now() - timedelta(
            minutes=bridge_gateway.command_ack_timeout + 1
        )
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            done = asyncio.run(bridge.run_once())
        self.env.invalidate_all()
        self.assertEqual((first.state, second.state), ("confirmed", "confirmed"), done["acks"])
        self.assertEqual(simulated.credited_total, Decimal(25))
        self.assertEqual(simulated.balance, Decimal(35))
        self.assertEqual(simulated.tokens.last_sequence, second.payload["sequence"])

    def test_fetch_hands_credit_tokens_out_in_order(self):
        """G6: a meter's credit token is handed out only with every older one
        still to be delivered, each naming the sequence the meter must hold before it."""
        bridge_gateway, meter = self._ble_meter(3, "Bridge 2")
        credits = self.Command.browse()
        for amount in ("5", "6", "7"):
            credits |= self.Command._queue(meter, "credit", "recharge", payload={"amount": amount})
        sequences = [c.payload["sequence"] for c in credits]
        handed = bridge_gateway._api_fetch_commands()["commands"]
        self.assertEqual(
            [(c["id"], c["payload"]["sequence"], c["payload"]["after_sequence"]) for c in handed],
            list(zip(credits.ids, sequences, [0, *sequences[:2]], strict=True)),
        )
        # the first one not delivered (out of range): queued again; the others in flight
        bridge_gateway._api_ack(
            {
                "acks": [
                    {
                        "id": credits[0].id,
                        "address": meter.address,
                        "success": False,
                        "delivered": False,
                    }
                ]
            }
        )
        self.assertEqual(bridge_gateway._api_fetch_commands()["commands"][0]["id"], credits[0].id)
        # the first confirmed, the second failed for good: the third goes out after the first
        credits[0]._mark_result(True, "applied")
        credits[1]._update_state(("sent",), "failed", "refused")
        credits[2].sent_at = fields.Datetime.now() - timedelta(days=1)
        (third,) = bridge_gateway._api_fetch_commands()["commands"]
        self.assertEqual((third["id"], third["payload"]["after_sequence"]), (credits[2].id, 0))


@tagged("post_install", "-at_install")
class TestCreditTokens(MeterGatewayCommon):
    def test_r10_two_tokens_same_minute_distinct_and_strictly_ordered(self):
        first, second = self.Command._queue(
            self.meter, "credit", "two recharges", payload={"amount": "10"}
        ) | self.Command._queue(self.meter, "credit", "second", payload={"amount": "10"})
        self.assertEqual((first.state, second.state), ("queued", "queued"))  # never superseded
        self.assertLess(first.payload["sequence"], second.payload["sequence"])
        self.assertNotEqual(first.token_secret["token"], second.token_secret["token"])
        self.assertNotEqual(first.token_secret["keypad"], second.token_secret["keypad"])
        key = derive_meter_key(self.env.company._prepaid_vending_key(), self.meter.address)
        acceptor = TokenAcceptor(key, self.meter.address)
        accepted = [
            acceptor.accept(token_from_text(c.token_secret["token"])) for c in first | second
        ]
        self.assertEqual([t.amount for t in accepted], [Decimal(10), Decimal(10)])
        # a retried delivery of either token (or of its keypad form) never credits again
        for command in first | second:
            with self.assertRaises(TokenReplayError):
                acceptor.accept(token_from_text(command.token_secret["token"]))
            with self.assertRaises(TokenReplayError):
                acceptor.accept(command.token_secret["keypad"])
        # sending a command again (next attempt) re-sends the same token, mints none
        sequence = self.meter.sudo().token_sequence
        first._mark_sent()
        first._mark_result(False, "no answer")
        self.assertEqual(self.meter.sudo().token_sequence, sequence)
        self.assertEqual(first.payload["sequence"], accepted[0].sequence)

    def test_credit_token_readable_by_managers_only(self):
        """The token is a bearer of credit: an operator who reads the commands sees the
        delivery's amount and sequence, never the token or its keypad form."""
        operator = self._user("mg_token_operator", "prepaid_meter.group_prepaid_user")
        command = self.Command._queue(
            self.meter, "credit", "desk recharge", payload={"amount": "15"}
        ).with_user(operator)
        command.invalidate_recordset()
        self.assertEqual(set(command.payload), {"amount", "sequence"})
        with self.assertRaises(AccessError):
            command.read(["token_secret"])
        seen = str(command.read(["payload", "reason_log", "state_reason"]))
        secret = command.sudo().token_secret
        self.assertEqual(len(secret["keypad"]), 20)
        self.assertNotIn(secret["token"], seen)
        self.assertNotIn(secret["keypad"], seen)

    def test_credit_needs_an_amount(self):
        with self.assertRaisesRegex(Exception, "positive amount"):
            self.Command._queue(self.meter, "credit", "bad", payload={"amount": "-5"})


@tagged("post_install", "-at_install")
class TestCollectorRunner(HttpCase, MeterGatewayCommon):
    """G1/G3/G4: the gateway runner holds simulated collectors' buses open over real TCP
    and talks to this test server's device API; Odoo's scheduled poll leaves them alone."""

    def setUp(self):
        super().setUp()
        # other collectors (the common one, demo data) have no simulator behind them
        self.env["prepaid.gateway"].search([("gateway_type", "=", "tcp_collector")]).active = False
        self.sim = self._start_simulator()

    def _runner_for(self, collector, name, **settings):
        gateway, meters = self._gateway_for(collector, name, self.unit)
        gateway._set_api_key(KEY)
        api = DeviceApiClient(self.base_url(), gateway.id, KEY, retries=1, backoff=0.05)
        runner = CollectorRunner(api, CollectorSettings(**settings))
        self.addCleanup(runner.close)
        return gateway, meters, runner

    def _tick(self, *runners):
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = [runner.tick() for runner in runners]
        self.env.invalidate_all()
        return done

    def test_runner_polls_64_meters_on_two_collectors(self):
        collectors, expected = self._sim_collectors_of_32(self.sim, (3, 4))
        served = [self._runner_for(c, f"Runner {i}") for i, c in enumerate(collectors, start=1)]
        gateways = served[0][0] | served[1][0]
        meters = served[0][1] | served[1][1]
        self.assertEqual(len(meters), 64)
        done = self._tick(*(runner for _g, _m, runner in served))
        self.assertEqual([(d["readings"], d["failed"]) for d in done], [(32, 0), (32, 0)])
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(len(readings), 64)
        for reading in readings:
            self.assertAlmostEqual(
                reading.forward_total, expected[reading.meter_id.address], delta=0.05
            )
            self.assertEqual((reading.source, reading.relay_state), ("poll", "on"))
        self.assertEqual(set(meters.mapped("actual_relay_state")), {"on"})
        for gateway in gateways:
            self.assertTrue(gateway.served_by_runner)
            self.assertEqual(gateway.connection_state, "online")
            self.assertIn("32 meters answered", gateway.last_poll_summary)
            self.assertGreater(gateway.next_poll_at, fields.Datetime.now())
        # the scheduled poll leaves collectors served by a runner alone, even when due
        gateways.write({"next_poll_at": fields.Datetime.now() - timedelta(minutes=1)})
        self.assertFalse(self.env["prepaid.gateway"]._cron_poll())
        report = gateways[0]._poll()
        self.assertTrue(report.get("runner"))
        # the runner polls again on the schedule over the connections it holds
        done = self._tick(*(runner for _g, _m, runner in served))
        self.assertEqual([d["readings"] for d in done], [32, 32])
        self.assertEqual([runner.stats.connects for _g, _m, runner in served], [4, 4])
        self.assertEqual(
            self.env["prepaid.meter.reading"].search_count([("meter_id", "in", meters.ids)]),
            128,
        )
        # not due: commands only
        done = self._tick(served[0][2])
        self.assertFalse(done[0]["polled"])
        # once the runner is gone for good, the scheduled poll takes the collectors back
        gateways.write(
            {"runner_seen_at": fields.Datetime.now() - timedelta(minutes=10), "next_poll_at": False}
        )
        self.assertEqual(self.env["prepaid.gateway"]._cron_poll(), gateways)

    @mute_logger("prepaid_core.buses.common")
    def test_runner_reads_every_other_meter_when_one_answers_garbage(self):
        """X1: through the runner too, a meter answering garbage (not BCD) fails
        alone: the other meters' readings are stored and the poll's summary names the
        failed meter with its reason."""
        collector = self.sim.collector([[f"0098000000{n:02d}" for n in range(1, 5)]])
        collector.buses[0].responders[2].corrupt_reads = 10_000
        gateway, meters, runner = self._runner_for(collector, "Runner garbage")
        done = self._tick(runner)
        self.assertEqual((done[0]["readings"], done[0]["failed"]), (3, 1))
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(readings.meter_id, meters - meters[2])
        self.assertEqual(meters.mapped("poll_failures"), [0, 0, 1, 0])
        self.assertIn("3 meters answered, 1 did not", gateway.last_poll_summary)
        self.assertIn(f"Failed: {meters[2].address}: ", gateway.last_poll_summary)
        self.assertIn("not BCD", gateway.last_poll_summary)

    def test_runner_cut_reaches_meter_and_read_back_confirms(self):
        collector = self.sim.collector([[f"0095000000{n:02d}" for n in range(1, 5)]])
        _gateway, meters, runner = self._runner_for(collector, "Runner cut")
        self._tick(runner)  # first poll
        target, other = meters[0], meters[1]
        self.assertEqual(target.actual_relay_state, "on")
        target._set_desired_relay("off", "credit exhausted")
        command = self.Command._cron_reconcile(meters)
        self.assertEqual(command.kind, "relay_off")
        done = self._tick(runner)  # the command runs at once, no poll due
        self.assertEqual((done[0]["commands"], done[0]["polled"]), (1, False))
        sim_meter = self.sim.meter(target.address)
        self.assertEqual((sim_meter.relay, self.sim.meter(other.address).relay), ("off", "on"))
        self.assertEqual(command.state, "confirmed", command.reason_log)
        self.assertIn("read-back confirms", command.reason_log)
        self.assertEqual(target.actual_relay_state, "off")
        self.assertFalse(target.relay_mismatch)
        self.assertEqual(runner.stats.connects, 1)  # the same connection all along
        # and back on
        target._set_desired_relay("on", "recharge")
        restore = self.Command._cron_reconcile(meters)
        self._tick(runner)
        self.assertEqual((restore.state, sim_meter.relay), ("confirmed", "on"))
        self.assertEqual(sim_meter.relay_toggles, 2)

    def test_runner_lost_collector_then_back(self):
        """Repeated polls without the collector: meters and collector lost, the command
        waits in the queue without using attempts; the collector back on the same ports:
        the runner reconnects, runs the command and the collector is online again."""
        collector = self.sim.collector([[f"0096000000{n:02d}" for n in range(1, 3)]])
        gateway, meters, runner = self._runner_for(collector, "Runner outage")
        gateway.lost_after_failures = 2
        self._tick(runner)
        self.sim.run(collector.close())
        meters[0]._set_desired_relay("off", "credit exhausted")
        command = self.Command._queue(meters[0], "relay_off", "credit exhausted")
        for _poll in range(2):
            gateway.next_poll_at = fields.Datetime.now()
            done = self._tick(runner)
            self.assertEqual(done[0]["failed"], 2)
        self.assertEqual(gateway.connection_state, "lost")
        self.assertEqual(set(meters.mapped("connection_state")), {"lost"})
        self.assertEqual((command.state, command.attempts), ("queued", 0))
        self.sim.run(collector.start())
        gateway.next_poll_at = fields.Datetime.now()
        done = self._tick(runner)
        self.assertEqual((done[0]["readings"], done[0]["failed"]), (2, 0))
        self.assertEqual(gateway.connection_state, "online")
        self.assertEqual(command.state, "confirmed", command.reason_log)
        self.assertEqual(self.sim.meter(meters[0].address).relay, "off")

    def test_runner_reconnects_a_connection_closed_while_idle(self):
        collector = self.sim.collector([["009700000001"]])
        gateway, _meters, runner = self._runner_for(collector, "Runner idle")
        self._tick(runner)
        self.sim.run(collector.close())  # drops the held connection
        self.sim.run(collector.start())
        gateway.next_poll_at = fields.Datetime.now()
        done = self._tick(runner)
        self.assertEqual((done[0]["readings"], done[0]["failed"]), (1, 0))
        self.assertEqual(runner.stats.connects, 2)

    def test_read_now_of_a_collector_served_by_its_runner(self):
        collector = self.sim.collector([["009800000001"]])
        gateway, meters, runner = self._runner_for(collector, "Runner read now")
        self._tick(runner)
        self.assertTrue(gateway.next_poll_at > fields.Datetime.now())
        meters.action_read_now()  # Odoo does not poll: the runner's next round does
        self.assertLessEqual(gateway.next_poll_at, fields.Datetime.now())
        self.assertEqual(
            self.env["prepaid.meter.reading"].search_count([("meter_id", "=", meters.id)]), 1
        )
        time.sleep(1.1)  # readings are to the second: not the same one again
        done = self._tick(runner)
        self.assertTrue(done[0]["polled"])
        self.assertEqual(
            self.env["prepaid.meter.reading"].search_count([("meter_id", "=", meters.id)]), 2
        )

    def test_runner_report_refuses_a_malformed_poll_report(self):
        collector = self.sim.collector([["009900000001"]])
        _gateway, _meters, runner = self._runner_for(collector, "Runner bad report")
        self.env.flush_all()
        with self.allow_requests(all_requests=True), self.assertRaises(DeviceApiError) as caught:
            runner.api.post("runner/report", {"answered": [1], "connected": "yes"})
        self.assertEqual(caught.exception.code, "bad_payload")

    def test_runner_reads_daily_freezes_and_clocks_like_the_scheduled_poll(self):
        """G3: the runner reads the last daily freeze of the meters whose day lacks it and
        the clock of those due for a check, as the command fetch tells it; Odoo keeps the
        freeze on the daily record (Meter Frozen Total) and queues a time sync for a
        drifting clock, which the runner delivers at once over the held connection."""
        collector = self.sim.collector([["009900000011", "009900000012"]])
        gateway, meters, runner = self._runner_for(collector, "Runner frozen")
        first, second = meters
        Daily = self.env["prepaid.meter.reading.daily"]
        day = Daily._frozen_day(gateway)
        frozen_local = datetime.combine(day + timedelta(days=1), datetime.min.time())
        tou = {"sharp": Decimal(1), "peak": Decimal(2), "flat": Decimal(3), "valley": Decimal(4)}
        self.sim.meter(first.address).daily_freeze = DailyFreeze(
            frozen_local, Decimal("123.45"), tou
        )
        self.sim.meter(second.address).time_offset = timedelta(minutes=-4)  # behind
        done = self._tick(runner)
        self.assertEqual((done[0]["readings"], done[0]["daily_frozen"]), (2, 1))
        self.assertEqual(done[0]["clocks"], 2)
        record = Daily.search([("meter_id", "=", first.id), ("day", "=", day)])
        self.assertAlmostEqual(record.frozen_total, 123.45, places=4)
        self.assertEqual(
            record.frozen_at, frozen_local - timedelta(minutes=gateway.meter_utc_offset)
        )
        self.assertAlmostEqual(second.clock_drift_seconds, -240, delta=3)
        self.assertEqual((first.clock_drifting, second.clock_drifting), (False, True))
        sync = self.Command.search([("meter_id", "in", meters.ids), ("kind", "=", "time_sync")])
        self.assertEqual((sync.meter_id, sync.origin, sync.state), (second, "drift", "queued"))
        # the next round runs the sync at once (no poll due); confirmed, the clock is due again
        done = self._tick(runner)
        self.assertEqual((done[0]["commands"], done[0]["polled"]), (1, False))
        self.assertEqual(sync.state, "confirmed", sync.reason_log)
        self.assertFalse(second.clock_checked_at)
        gateway.next_poll_at = fields.Datetime.now()
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            fetched = runner.api.post("commands/fetch", {"limit": 10})
        # the first meter's day holds its freeze; the second has none yet
        self.assertEqual(fetched["daily_frozen_due"], [second.address])
        self.assertEqual(fetched["clock_due"], [second.address])
        done = self._tick(runner)
        self.assertEqual((done[0]["daily_frozen"], done[0]["clocks"]), (0, 1))
        self.assertLessEqual(abs(second.clock_drift_seconds), 3)
        self.assertFalse(second.clock_drifting)
        self.assertEqual(
            self.Command.search_count([("meter_id", "in", meters.ids), ("kind", "=", "time_sync")]),
            1,
        )
