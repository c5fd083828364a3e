from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.simulator.dlms_meter import DlmsMeter, DlmsSimulator

from .common import MeterGatewayCommon

KEY = "000102030405060708090A0B0C0D0E0F"
AUTH_KEY = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
FORWARD = "1.0.1.8.0.255"
POWER = "1.0.1.7.0.255"
SUITE0 = "authentication_encryption"
RUNNER_KEY = "runner-dlms-key-0123456789abcdef"


@tagged("post_install", "-at_install")
class TestDlmsSettings(MeterGatewayCommon):
    """G9: a DLMS meter's addresses and secrets: checked, stored encrypted, decrypted only
    into a poll's job."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dlms_model = cls.env["prepaid.meter.model"].create(
            {
                "name": "DLMS meter",
                "code": "DLMS-T",
                "protocol": "dlms_hdlc",
                "dlms_client_address": 1,
                "dlms_authentication": "high_gmac",
                "dlms_security": "authentication_encryption",
            }
        )
        cls.hdlc_bus = cls.env["prepaid.gateway.bus"].create(
            {"gateway_id": cls.gateway.id, "number": 7, "port": 1, "protocol": "dlms_hdlc"}
        )

    def _dlms_meter(self, name, physical, **values):
        return self.env["prepaid.meter"].create(
            {
                "name": name,
                "model_id": self.dlms_model.id,
                "gateway_id": self.gateway.id,
                "bus_id": self.hdlc_bus.id,
                "state": "in_service",
                "dlms_physical_address": physical,
                **values,
            }
        )

    def _stored(self, meter, name):
        self.env.flush_all()
        self.env.cr.execute(f"SELECT {name} FROM prepaid_meter WHERE id = %s", (meter.id,))
        return self.env.cr.fetchone()[0]

    def test_secrets_are_stored_encrypted_and_decrypted_into_the_job(self):
        meter = self._dlms_meter(
            "DLMS 1",
            17,
            dlms_password="12345678",
            dlms_block_cipher_key=KEY,
            dlms_authentication_key=AUTH_KEY,
        )
        for name, clear in (
            ("dlms_password", "12345678"),
            ("dlms_block_cipher_key", KEY),
            ("dlms_authentication_key", AUTH_KEY),
        ):
            stored = self._stored(meter, name)
            self.assertTrue(stored.startswith("v1:"), name)
            self.assertNotIn(clear, stored)
            self.assertNotIn(clear.lower(), stored)
        settings = meter._dlms_settings("hdlc")
        self.assertEqual(settings.password, b"12345678")
        self.assertEqual(settings.block_cipher_key, bytes.fromhex(KEY))
        self.assertEqual(settings.authentication_key, bytes.fromhex(AUTH_KEY))
        self.assertEqual((settings.client_address, settings.physical_address), (1, 17))
        self.assertEqual((settings.logical_address, settings.interface), (1, "hdlc"))
        self.assertEqual(settings.authentication, "high_gmac")
        self.assertEqual(settings.system_title, bytes.fromhex("5050454E45524759"))
        self.assertNotIn(KEY.lower(), repr(meter.read(["dlms_block_cipher_key"])).lower())

    def test_encrypted_text_copied_to_another_meter_does_not_open(self):
        first = self._dlms_meter("DLMS 1", 17, dlms_block_cipher_key=KEY)
        second = self._dlms_meter("DLMS 2", 18)
        with self.assertRaisesRegex(UserError, "cannot be decrypted"):
            second.dlms_block_cipher_key = self._stored(first, "dlms_block_cipher_key")
        # rewriting a meter's own encrypted text (a form saved unchanged) keeps it
        first.dlms_block_cipher_key = self._stored(first, "dlms_block_cipher_key")
        self.assertEqual(first._dlms_settings("hdlc").block_cipher_key, bytes.fromhex(KEY))

    def test_bad_key_and_addresses_name_the_field(self):
        with self.assertRaisesRegex(UserError, "DLMS Block Cipher Key.*32 hexadecimal"):
            self._dlms_meter("DLMS 1", 17, dlms_block_cipher_key="00FF")
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address.*1 to 16383"):
            self._dlms_meter("DLMS 2", 0)
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address.*1 to 16383"):
            self._dlms_meter("DLMS 3", 16384)
        self._dlms_meter("DLMS 4", 40)
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address 40 is already"):
            self._dlms_meter("DLMS 5", 40)
        for n, (values, error) in enumerate(
            (
                ({"dlms_client_address": 200}, "client address is 1 to 127"),
                ({"dlms_system_title": "ABC"}, "System Title.*16 hexadecimal"),
                ({"dlms_invocation_counter_obis": "0.0.43.1.0.256"}, "Frame Counter.*six numbers"),
            )
        ):
            with self.assertRaisesRegex(ValidationError, error):
                self.dlms_model.copy({"code": f"DLMS-X{n}", **values})

    def test_dlms_bus_gets_the_dlms_driver_and_polls_meters_without_address(self):
        self.gateway.gateway_type = "tcp_collector"
        self.hdlc_bus._compute_driver()
        self.assertEqual(self.hdlc_bus.driver, "dlms")
        self.assertEqual(
            (self.hdlc_bus.baud_rate, self.hdlc_bus.parity, self.hdlc_bus.stop_bits),
            ("9600", "N", "1"),
        )
        meter = self._dlms_meter("DLMS 1", 17)
        self.assertFalse(meter.address)
        _buses, polled = self.gateway._polled_buses_and_meters()
        self.assertIn(meter, polled)


@tagged("post_install", "-at_install")
class TestDlmsPoll(MeterGatewayCommon):
    """G9: real Odoo polls of DLMS/COSEM meters served by gurux-dlms's own server over
    real TCP: HDLC meters sharing a bus behind a collector, a meter on TCP (wrapper), the
    billing registers scaled, the meter's balance, the relay with read-back (R8)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dlms_model = cls.env["prepaid.meter.model"].create(
            {
                "name": "DLMS meter (HLS)",
                "code": "DLMS-HLS",
                "protocol": "dlms_hdlc",
                "dlms_client_address": 1,
                "dlms_authentication": "high_gmac",
                "dlms_security": "authentication_encryption",
            }
        )

    def _simulator(self, meters, interface):
        simulator = DlmsSimulator(meters, interface).start()
        self.addCleanup(simulator.stop)
        return simulator

    def _gateway(self, simulator, protocol, sim_meters, model=None):
        gateway, bus = self._tcp_collector(f"DLMS {protocol}", simulator.port, protocol)
        meters = self.env["prepaid.meter"].create(
            [
                {
                    "name": f"DLMS {protocol} {n}",
                    "model_id": (model or self.dlms_model).id,
                    "unit_id": unit.id,
                    "gateway_id": gateway.id,
                    "bus_id": bus.id,
                    "state": "in_service",
                    "dlms_logical_address": sim.logical_address,
                    "dlms_physical_address": sim.physical_address,
                    "dlms_password": sim.password.decode(),
                    "dlms_block_cipher_key": sim.block_cipher_key.hex(),
                    "dlms_authentication_key": sim.authentication_key.hex(),
                }
                for n, (sim, unit) in enumerate(
                    zip(sim_meters, (self.unit, self.unit2), strict=False), 1
                )
            ]
        )
        self.assertEqual(bus.driver, "dlms")
        return gateway, meters

    def _reading(self, meter):
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)], limit=1)

    def test_hdlc_bus_of_ciphered_meters_read_with_scaling_tou_power_and_balance(self):
        sims = [
            DlmsMeter(physical_address=17, authentication="high_gmac", security=SUITE0),
            DlmsMeter(physical_address=18, authentication="high_gmac", security=SUITE0),
        ]
        first, second = sims
        first.set_energy_kwh(FORWARD, "1234.56", scaler=-1)  # 0.1 Wh steps
        for n, kwh in enumerate(("100.5", "400.25", "600", "134.06"), start=1):
            first.set_energy_kwh(f"1.0.1.8.{n}.255", kwh)
        first.set_register(POWER, 2350, scaler=0)  # W
        first.credit = 4_937  # 49.37 at the account's currency scale -2
        second.set_energy_kwh(FORWARD, "87.5", scaler=2)  # hundreds of Wh
        gateway, meters = self._gateway(self._simulator(sims, "hdlc"), "dlms_hdlc", sims)
        meters[0].billing_mode = "meter"
        report = gateway._poll()
        self.assertEqual((report["stored"], report["failed"]), (2, []))
        reading = self._reading(meters[0])
        self.assertAlmostEqual(reading.forward_total, 1234.56, places=4)
        self.assertEqual(
            [reading.tou_sharp, reading.tou_peak, reading.tou_flat, reading.tou_valley],
            [100.5, 400.25, 600.0, 134.06],
        )
        self.assertAlmostEqual(reading.power, 2.35, places=4)
        self.assertAlmostEqual(reading.meter_balance, 49.37, places=4)
        self.assertEqual(reading.relay_state, "on")
        self.assertAlmostEqual(self._reading(meters[1]).forward_total, 87.5, places=4)
        self.assertFalse(self._reading(meters[1]).meter_balance)  # it bills on the server
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})

    def test_wrapper_meter_cut_and_restored_with_read_back(self):
        model = self.dlms_model.copy(
            {
                "code": "DLMS-LLS",
                "protocol": "dlms_wrapper",
                "dlms_authentication": "low",
                "dlms_security": "none",
            }
        )
        sim = DlmsMeter(logical_address=1, authentication="low")
        sim.set_energy_kwh(FORWARD, "50")
        gateway, meter = self._gateway(
            self._simulator([sim], "wrapper"), "dlms_wrapper", [sim], model
        )
        gateway._poll()
        self.assertEqual(meter.actual_relay_state, "on")
        meter._set_desired_relay("off", "credit exhausted")
        command = self.Command._cron_reconcile(meter)
        self.assertEqual(command.kind, "relay_off")
        sim.drop_next_action_answer = True  # the meter executes, its answer is lost
        with mute_logger("prepaid_core.buses.common", "prepaid_core.buses.dlms"):
            gateway._poll()
        self.assertFalse(sim.relay_on)
        self.assertEqual(sim.actions, 1)
        self.assertEqual(command.state, "confirmed")
        self.assertIn("read-back shows the command executed", command.state_reason)
        self.assertEqual(meter.actual_relay_state, "off")
        gateway._poll()
        self.assertEqual(sim.actions, 1)  # R8: never sent twice
        meter._set_desired_relay("on", "recharge")
        restore = self.Command._cron_reconcile(meter)
        gateway._poll()
        self.assertEqual((restore.state, sim.relay_on, sim.actions), ("confirmed", True, 2))
        self.assertAlmostEqual(self._reading(meter).forward_total, 50.0, places=4)

    def test_wrong_key_fails_that_meter_only_and_stores_nothing(self):
        sims = [
            DlmsMeter(physical_address=17, authentication="high_gmac", security=SUITE0),
            DlmsMeter(physical_address=18, authentication="high_gmac", security=SUITE0),
        ]
        for sim in sims:
            sim.set_energy_kwh(FORWARD, "10")
        gateway, meters = self._gateway(self._simulator(sims, "hdlc"), "dlms_hdlc", sims)
        meters[0].dlms_block_cipher_key = "FF" * 16
        with mute_logger("prepaid_core.buses.common", "prepaid_core.buses.dlms"):
            report = gateway._poll()
        self.assertEqual(report["stored"], 1)
        (failed,) = report["failed"]
        self.assertEqual(failed["address"], "dlms:1:1:17")  # named on its bus
        self.assertIn("association", failed["error"])
        self.assertFalse(self._reading(meters[0]))
        self.assertAlmostEqual(self._reading(meters[1]).forward_total, 10.0, places=4)


@tagged("post_install", "-at_install")
class TestDlmsRunner(HttpCase, MeterGatewayCommon):
    """G9/G3: the gateway runner reads DLMS meters too: the collector config carries each
    meter's DLMS key and association (secrets in hexadecimal, over the signed device API),
    the runner's readings and command answers are taken under that key."""

    def test_runner_reads_an_hdlc_meter_without_address_and_cuts_it(self):
        # other collectors (the common one, demo data) have no server behind them
        self.env["prepaid.gateway"].search([("gateway_type", "=", "tcp_collector")]).active = False
        sim = DlmsMeter(physical_address=300, authentication="high_gmac", security=SUITE0)
        sim.set_energy_kwh(FORWARD, "321.5", scaler=-1)
        sim.credit = 1_234
        simulator = DlmsSimulator([sim], "hdlc").start()
        self.addCleanup(simulator.stop)
        model = self.env["prepaid.meter.model"].create(
            {
                "name": "DLMS runner meter",
                "code": "DLMS-RUN",
                "protocol": "dlms_hdlc",
                "dlms_client_address": 1,
                "dlms_authentication": "high_gmac",
                "dlms_security": SUITE0,
                "billing_mode": "meter",
            }
        )
        gateway, bus = self._tcp_collector("DLMS by runner", simulator.port, "dlms_hdlc", 4)
        meter = self.env["prepaid.meter"].create(
            {
                "name": "DLMS meter by key",
                "model_id": model.id,
                "unit_id": self.unit.id,
                "gateway_id": gateway.id,
                "bus_id": bus.id,
                "state": "in_service",
                "dlms_physical_address": 300,
                "dlms_block_cipher_key": sim.block_cipher_key.hex(),
                "dlms_authentication_key": sim.authentication_key.hex(),
            }
        )
        [config] = gateway._api_collector_config()["buses"][0]["meters"]
        self.assertEqual(config["address"], "dlms:4:1:300")
        self.assertEqual(config["dlms"]["block_cipher_key"], sim.block_cipher_key.hex())
        self.assertTrue(config["read_balance"])
        meter._set_desired_relay("off", "credit exhausted")
        command = self.Command._queue(meter, "relay_off", "test", origin="billing")
        gateway._set_api_key(RUNNER_KEY)
        api = DeviceApiClient(self.base_url(), gateway.id, RUNNER_KEY, retries=1, backoff=0.05)
        runner = CollectorRunner(api, CollectorSettings())
        self.addCleanup(runner.close)
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = runner.tick()
        self.env.invalidate_all()
        self.assertEqual((done["readings"], done["failed"], done["commands"]), (1, 0, 1))
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])
        self.assertAlmostEqual(reading.forward_total, 321.5, places=4)
        self.assertAlmostEqual(reading.meter_balance, 12.34, places=4)
        self.assertEqual((command.state, sim.relay_on, sim.actions), ("confirmed", False, 1))
        self.assertEqual(meter.actual_relay_state, "off")
