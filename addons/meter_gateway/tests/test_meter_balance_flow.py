"""B13, B7, M10, R1, R5, R8, R10: a recharge of a meter that keeps its own balance, end to
end: sold at the desk or paid in the portal, vended as one meter credit, delivered by the
real gateway runners (MQTT through a real Mosquitto, the Bluetooth bridge) or typed on a
simulated STS keypad, and checked against the simulated meter's own balance by the
reconciliation.

meter_gateway does not depend on the billing and portal add-ons: the class is skipped
where they are not installed."""

import asyncio
import re
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import SkipTest

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from odoo import fields
from odoo.modules.registry import Registry
from odoo.tests import HttpCase, get_db_name, tagged

from odoo.addons.prepaid_billing.tests.common import PrepaidBillingCommon
from odoo.addons.prepaid_portal.tests.common import PrepaidPortalMixin

from prepaid_core import sts
from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.ble import BleBridge
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings
from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.simulator import ble
from prepaid_core.simulator.broker import start_mosquitto
from prepaid_core.simulator.clock import ManualClock
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleetThread

from .common import MeterGatewayCommon, until

KEY = "meter-balance-flow-key-0123456789"
STS_KEY_HEX = "abababababababab"
PAN = "600727000000000009"
SGC = "123456"
#: a meter nobody draws on: its balance moves by tokens only
NO_LOAD = LoadProfile(base_w=0, peak_w=0, noise=0.0)
#: a steady 1 kW: 1 kWh an hour, 0.50 at the flat tariff
ONE_KW = LoadProfile(base_w=1000, peak_w=1000, noise=0.0)


def _now_to_the_second():
    return datetime.now(UTC).replace(microsecond=0)


@tagged("post_install", "-at_install")
class TestMeterBalanceFlow(PrepaidPortalMixin, HttpCase, MeterGatewayCommon, PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        registry = Registry(get_db_name())
        missing = [m for m in ("prepaid.account", "prepaid.online.recharge") if m not in registry]
        if missing:
            raise SkipTest(
                "The meter-balance flow runs across prepaid_billing and prepaid_portal, "
                f"not installed here ({', '.join(missing)} missing)."
            )
        super().setUpClass()
        cls._setup_portal()  # the portal's site, tenant A's login and the demo provider
        cls.Credit = cls.env["prepaid.meter.credit"]
        cls.env.company.prepaid_sts_vending_key = STS_KEY_HEX

    def setUp(self):
        super().setUp()
        self._mock_sms_gateway()

    # === SITE === #

    def _gateway(self, name, gateway_type):
        gateway = self.env["prepaid.gateway"].create(
            {"name": name, "gateway_type": gateway_type, "site_id": self.site.id}
        )
        gateway._set_api_key(KEY)
        return gateway

    def _meter(self, address, gateway=None, **values):
        """A meter-balance meter of the own token format, delivered over its connection
        unless ``values`` say otherwise, in a unit of its own."""
        unit = self.env["prepaid.unit"].create(
            {"name": f"U-{address[-4:]}", "building_id": self.building.id}
        )
        return self.env["prepaid.meter"].create(
            {
                "name": f"Meter {address}",
                "address": address,
                "model_id": self.ddsy.id,
                "unit_id": unit.id,
                "gateway_id": gateway.id if gateway else False,
                "state": "in_service",
                "billing_mode": "meter",
                "token_format": "own",
                "credit_channel": "device",
                **values,
            }
        )

    def _open_account(self, meter, tariff=None, date_start="2026-01-01"):
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": meter.unit_id.id, "date_start": date_start}
        )
        tenancy.action_open()
        tenancy.account_id.tariff_id = tariff or self.flat  # 0.50 a kWh
        return tenancy.account_id

    def _desk_recharge(self, account, amount):
        """A recharge at the desk (the wizard proposes the account's meter-balance meter)."""
        wizard = self.env["prepaid.account.recharge"].create(
            {"account_id": account.id, "amount": amount}
        )
        self.assertEqual(wizard.meter_id, account._meter_balance_meters())
        wizard.action_confirm()

    def _credits(self, meter):
        return self.Credit.search([("meter_id", "=", meter.id)], order="id")

    def _deliveries(self, meter):
        return self.Command.search([("meter_id", "=", meter.id), ("kind", "=", "credit")])

    def _simulated(self, meter, clock, balance, profile=NO_LOAD, **config):
        return VirtualMeter(
            MeterConfig(
                meter.address,
                vending_key=self.env.company._prepaid_vending_key(),
                balance=Decimal(balance),
                price=Decimal("0.5"),
                profile=profile,
                **config,
            ),
            clock,
        )

    # === GATEWAYS === #

    def _api(self, gateway):
        return DeviceApiClient(self.base_url(), gateway.id, KEY, retries=2)

    def _bridge(self, meter, simulated):
        """A Bluetooth bridge with ``simulated`` in reach: (its peripheral, the bridge)."""
        network = ble.FakeBleNetwork()
        peripheral = ble.BlePeripheral(simulated, meter.ble_mac)
        network.add(peripheral)
        bridge = BleBridge(
            self._api(meter.gateway_id),
            backend=ble.FakeBleakBackend,
            backend_kwargs={"network": network},
        )
        return peripheral, bridge

    def _visit(self, bridge):
        """One round of the bridge: tokens written, the meter read, both posted."""
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = asyncio.run(bridge.run_once())
        self.env.invalidate_all()
        return done

    def _ble_meter(self, number, **values):
        return self._meter(
            f"00000000060{number}",
            self._gateway(f"Bridge {number}", "ble_bridge"),
            ble_mac=f"C0:FF:EE:00:06:0{number}",
            **values,
        )

    # === TESTS === #

    def test_desk_recharge_reaches_a_4g_meter_once_over_mqtt(self):
        broker = start_mosquitto(tempfile.mkdtemp(prefix="mg-flow-mosquitto-"))
        self.addCleanup(broker.stop)
        gateway = self._gateway("4G flow", "mqtt")
        gateway.write({"mqtt_host": broker.host, "mqtt_port": broker.port})
        meter = self._meter("000000000401", gateway)
        account = self._open_account(meter)
        options = {meter.address: {"balance": Decimal("50"), "profile": NO_LOAD}}
        fleet = MqttFleetThread(
            broker, [meter.address], self.env.company._prepaid_vending_key(), options=options
        )
        self.addCleanup(fleet.stop)
        simulated = fleet.meter(meter.address)
        sent = self._spy_commands(broker, meter.address)

        self._desk_recharge(account, 30.0)
        credit = self._credits(meter)
        command = self._deliveries(meter)
        self.assertEqual((len(credit), credit.amount, credit.state), (1, 30.0, "issued"))
        self.assertEqual((command.credit_id, command.state), (credit, "queued"))
        queued = self.Command.search_count([("meter_id", "=", meter.id), ("state", "=", "queued")])
        runner = self._run_mqtt(broker, gateway, lambda r: r.stats.acks >= queued)
        self.assertEqual(runner.stats.acks_refused, 0)
        self.assertEqual(
            (command.state, credit.state), ("confirmed", "applied"), command.reason_log
        )
        self.assertEqual(simulated.balance, Decimal("80"))  # B + A, exactly
        self.assertEqual(simulated.credited_total, Decimal("30"))

        # the same command delivered again, and its token again under another id, while
        # the runner is down; a new runner (same client id, same broker session) gets the
        # meter's answers: nothing moves
        original = next(schema.decode(schema.CMD, p) for p in sent if b'"credit_token"' in p)
        self._publish_commands(broker, meter.address, original, "replayed-token")

        def tokens_out():
            return len([p for p in sent if b'"credit_token"' in p])

        # the runner's token, then the same command and its token under another id
        until(lambda: tokens_out() >= 3, what="the spy saw the three tokens")
        seen = tokens_out()
        mqtt_meter = fleet.fleet[meter.address]
        until(lambda: "replayed-token" in mqtt_meter.executed, what="the meter answers both")
        runner = self._run_mqtt(broker, gateway, lambda r: r.stats.acks >= 1)
        self.assertEqual(self.Credit._vend(meter, "30", credit.origin), credit)  # sale retried
        self.assertIn("TokenReplayError", mqtt_meter.executed["replayed-token"].error)
        self.assertEqual(simulated.balance, Decimal("80"))
        self.assertEqual(simulated.credited_total, Decimal("30"))
        # no token went out again (settings the meter holds may: they carry no credit)
        self.assertEqual(tokens_out(), seen)
        self.assertEqual((command.state, credit.state), ("confirmed", "applied"))
        self.assertIn("late answer ignored", command.reason_log)
        self.assertEqual((self._credits(meter), self._deliveries(meter)), (credit, command))
        self.assertEqual(self._balance(account), Decimal("30.0000"))

    def _spy_commands(self, broker, address):
        """Every command published to the meter (payloads, as they went out)."""
        sent, subscribed = [], threading.Event()
        spy = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{address}")
        spy.on_message = lambda client, userdata, message: sent.append(message.payload)
        spy.on_subscribe = lambda *args: subscribed.set()
        spy.connect(broker.host, broker.port)
        spy.loop_start()
        self.addCleanup(spy.loop_stop)
        self.addCleanup(spy.disconnect)
        spy.subscribe(schema.topic_for(address, schema.CMD), qos=1)
        until(subscribed.is_set, what="the spy subscribed")
        return sent

    def _publish_commands(self, broker, address, original, replay_id):
        """``original`` once more, then its token under the command id ``replay_id``."""
        replay = schema.Command(
            msg_id=f"{replay_id}-msg",
            cmd_id=replay_id,
            ts=datetime.now(UTC),
            cmd=original.cmd,
            params=original.params,
        )
        publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="duplicator")
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        topic = schema.topic_for(address, schema.CMD)
        for message in (original, replay):
            publisher.publish(topic, schema.encode(message), qos=1).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()

    def _run_mqtt(self, broker, gateway, done):
        """The MQTT runner of ``gateway`` (its own client id, so a new one takes over the
        broker session of the last) until ``done(runner)``; stopped, the runner."""
        settings = MqttSettings(
            broker.host,
            broker.port,
            client_id=gateway.mqtt_client_id,
            batch_wait=0.05,
            command_interval=0.2,
            retry_wait=0.2,
        )
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            runner = MqttRunner(self._api(gateway), settings).start()
            until(lambda: done(runner), what="the meter's answers posted")
            time.sleep(0.3)  # anything else the runner had in hand
            runner.stop()
        self.env.invalidate_all()
        return runner

    def test_portal_recharge_reaches_a_bluetooth_meter_once(self):
        meter = self.meter_a1
        meter.write(
            {
                "address": "000000000502",
                "gateway_id": self._gateway("Bridge portal", "ble_bridge").id,
                "ble_mac": "C0:FF:EE:00:05:02",
                "state": "in_service",
                "billing_mode": "meter",
                "token_format": "own",
                "credit_channel": "device",
            }
        )
        clock = ManualClock(_now_to_the_second() - timedelta(hours=1))
        simulated = self._simulated(meter, clock, "10")
        peripheral, bridge = self._bridge(meter, simulated)

        reference = self._pay_in_the_portal(meter, 30.0)
        tx = self.env["payment.transaction"].sudo().search([("reference", "=", reference)])
        for _again in range(2):  # the provider's notification once more, and the crons
            self._notify(tx)
            self.env["prepaid.online.recharge"]._cron_retry_failed()
        line = self._recharge_lines(self.account_a1)
        credit = self._credits(meter)
        self.assertEqual((len(line), line.reference, line.meter_id), (1, reference, meter))
        self.assertEqual((len(credit), credit.amount, credit.state), (1, 30.0, "issued"))
        self.assertEqual(line.meter_credit_id, credit)
        self.assertEqual(tx.prepaid_recharge_id.state, "credited")

        peripheral.fail_token_writes = 1  # the link drops during the write
        done = self._visit(bridge)
        command = credit.command_ids
        self.assertEqual([a["delivered"] for a in done["acks"]], [False])
        self.assertEqual((command.state, credit.state), ("queued", "issued"), command.reason_log)
        self.assertEqual(simulated.balance, Decimal("10"))
        clock.advance(minutes=5)
        self._visit(bridge)
        self.assertEqual(
            (command.state, credit.state), ("confirmed", "applied"), command.reason_log
        )
        self.assertEqual(simulated.balance, Decimal("40"))
        # the payment processed once more, and the bridge back: nothing moves
        self._notify(tx)
        clock.advance(minutes=5)
        self.assertEqual(self._visit(bridge)["acks"], [])
        self.assertEqual(simulated.balance, Decimal("40"))
        self.assertEqual(simulated.credited_total, Decimal("30"))
        self.assertEqual(len(self._recharge_lines(self.account_a1)), 1)
        self.assertEqual((self._credits(meter), self._deliveries(meter)), (credit, command))
        self.assertEqual(self._balance(self.account_a1), Decimal("30.0000"))

    def _pay_in_the_portal(self, meter, amount):
        """Tenant A pays ``amount`` for ``meter`` with the demo provider: checkout, the
        provider's answer twice, the status poll; the transaction's reference."""
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self.url_open(f"/my/meters/{meter.id}/recharge?amount={amount:g}")
        self.assertEqual(page.status_code, 200)
        access_token = re.search(r'data-access-token="([^"]+)"', page.text).group(1)
        processing = self.make_jsonrpc_request(
            f"/my/meters/{meter.id}/recharge/transaction",
            {
                "amount": amount,
                "access_token": access_token,
                "provider_id": self.provider.id,
                "payment_method_id": self.provider.payment_method_ids[:1].id,
                "token_id": None,
                "flow": "direct",
                "tokenization_requested": False,
                "landing_route": f"/my/meters/{meter.id}",
                "is_validation": False,
            },
        )
        for _twice in range(2):
            self.make_jsonrpc_request(
                "/payment/demo/simulate_payment",
                {
                    "reference": processing["reference"],
                    "payment_details": "4242",
                    "simulated_state": "done",
                },
            )
        status = self.make_jsonrpc_request("/payment/status/poll", {})
        self.assertEqual(status["state"], "done", status)
        self.env.invalidate_all()
        return processing["reference"]

    def test_sts_keypad_tokens_of_one_minute_taken_in_any_order_once(self):
        tariff = self._create_tariff("Flat 0.3", [{"price_flat": 0.3}])
        meter = self._meter(
            "000000000503",
            token_format="sts",
            credit_channel="keypad",
            sts_meter_number=PAN,
            sts_supply_group_code=SGC,
            sts_tariff_index="01",
            sts_key_revision=1,
        )
        account = self._open_account(meter, tariff)
        self._desk_recharge(account, 10.0)  # 33.3 kWh at 0.30, 0.01 not carried
        self._desk_recharge(account, 7.0)  # 7.01 with it: 23.3 kWh, 0.02 not carried
        first, second = self._credits(meter)
        tids = [int(c.token_reference) for c in (first, second)]
        self.assertEqual(tids[1], tids[0] + 1)  # the same minute: the last one plus one
        for credit in (first, second):
            self.assertEqual((credit.state, credit.channel), ("issued", "keypad"))
            self.assertTrue(re.fullmatch(r"[0-9]{20}", credit.token), credit.token)
            self.assertEqual(credit.command_ids.state, "handed")
        self.assertNotEqual(first.token, second.token)
        not_carried = meter._meter_credit_not_carried()
        self.assertEqual(not_carried, Decimal("0.02"))

        key = sts.decoder_key_dkga02(bytes.fromhex(STS_KEY_HEX), SGC, "01", 1, PAN)
        energies = [sts.decode(c.token, key).amount for c in (first, second)]
        self.assertEqual(energies, [Decimal("33.3"), Decimal("23.3")])
        simulated = VirtualMeter(
            MeterConfig(
                meter.address,
                balance=Decimal(50),
                price=Decimal("0.3"),
                profile=NO_LOAD,
                token_format="sts",
                decoder_key=key,
            ),
            ManualClock(_now_to_the_second()),
        )
        # typed in the reverse order, the first as the receipt prints it (groups of four)
        for credit, typed in ((second, second.token), (first, first._token_groups())):
            simulated.enter_keypad(typed)
            self.assertEqual(simulated.snapshot().last_token_tid, int(credit.token_reference))
        with self.assertRaises(sts.StsReplayError):
            simulated.enter_keypad(first.token)
        carried = Decimal(17) - not_carried
        self.assertEqual(simulated.credited_total, carried)
        self.assertEqual(simulated.balance, Decimal(50) + carried)

    def test_preset_on_board_then_first_recharge_both_sides_end_at_recharge_minus_use(self):
        preset, recharge = Decimal(30), Decimal(100)
        meter = self._ble_meter(1, preset_credit=float(preset))
        clock = ManualClock(_now_to_the_second() - timedelta(hours=12))
        simulated = self._simulated(meter, clock, preset, profile=ONE_KW)
        _peripheral, bridge = self._bridge(meter, simulated)
        self._visit(bridge)
        clock.advance(hours=10)  # 10 kWh used before the account opens: 5.00
        self._visit(bridge)
        simulated.profile = NO_LOAD  # the tenant is away from now on
        used = Decimal(preset) - simulated.balance
        self.assertEqual(used, Decimal("5"))

        account = self._open_account(meter, date_start=fields.Date.today())
        self.assertEqual((meter.preset_account_id, account.preset_outstanding), (account, 30.0))
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(self._balance(account), -used)
        self._desk_recharge(account, float(recharge))
        credit = self._credits(meter)
        self.assertEqual(credit.amount, float(recharge - preset))
        self.assertEqual(self._balance(account), recharge - used)

        clock.advance(minutes=30)
        self._visit(bridge)  # the token written, then the meter read
        self.assertEqual(credit.state, "applied", credit.reason)
        self.assertEqual(simulated.balance, recharge - used)
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(meter.meter_balance_state, "ok", meter.meter_balance_difference)
        self.assertEqual(Decimal(f"{meter.meter_balance_expected:.4f}"), recharge - used)
        self.assertEqual(meter.meter_balance_difference, 0.0)
        self.assertEqual(self._balance(account), simulated.balance)

    def test_reconciliation_flags_a_tampered_meter(self):
        meter = self._ble_meter(2)
        account = self._open_account(meter)
        clock = ManualClock(_now_to_the_second() - timedelta(hours=1))
        simulated = self._simulated(meter, clock, 0)
        _peripheral, bridge = self._bridge(meter, simulated)
        self._visit(bridge)
        self._desk_recharge(account, 40.0)
        clock.advance(minutes=10)
        self._visit(bridge)
        self.assertEqual(self._credits(meter).state, "applied")
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(meter.meter_balance_state, "ok")
        self.assertEqual(meter.meter_balance_expected, 40.0)

        simulated.inject_balance_tamper(Decimal(25))
        clock.advance(minutes=10)
        self._visit(bridge)
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(meter.meter_balance_state, "mismatch")
        self.assertEqual((meter.meter_balance_expected, meter.meter_balance_difference), (40, 25))
        activities = meter.activity_ids.filtered(lambda a: a.summary == "Meter balance differs")
        self.assertEqual(len(activities), 1)
        note = meter.message_ids.filtered("body")[:1].body
        self.assertIn("reported $&nbsp;65.00, expected $&nbsp;40.00", note)  # in the currency
        self.assertIn("tampered", note)
