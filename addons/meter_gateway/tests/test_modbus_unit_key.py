"""G2/G3: a Modbus-RTU meter addressed on its bus by its unit id alone (no made-up
communication address) is read by Odoo's scheduled poll and by the gateway runner: the
collector config names it by its unit key, and the device API takes the runner's readings
and command answers under that name.  The meter is pymodbus's own server."""

from decimal import Decimal

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.simulator.modbus_reference import PymodbusMeter

from .common import MeterGatewayCommon

KEY = "runner-unit-key-0123456789abcdef"
UNIT_ID = 17


@tagged("post_install", "-at_install")
class TestModbusUnitKey(HttpCase, MeterGatewayCommon):
    def setUp(self):
        super().setUp()
        # other collectors (the common one, demo data) have no server behind them
        self.env["prepaid.gateway"].search([("gateway_type", "=", "tcp_collector")]).active = False
        regmap = self.env.ref("meter_gateway.register_map_acrel_prepaid_1p")
        values = {"total_energy": Decimal("321.5"), "remaining_balance": Decimal("12.34")}
        self.server = PymodbusMeter(UNIT_ID, regmap._register_map(), values).start()
        self.addCleanup(self.server.stop)
        self.gateway, bus = self._tcp_collector(
            "Modbus by unit id", self.server.port, "modbus_rtu", number=3
        )
        model = self.ddsy.copy(
            {"code": "ACREL-UNIT", "protocol": "modbus_rtu", "modbus_register_map": regmap.id}
        )
        self.meter = self.env["prepaid.meter"].create(
            {
                "name": "Acrel by unit id",
                "model_id": model.id,
                "unit_id": self.unit.id,
                "gateway_id": self.gateway.id,
                "bus_id": bus.id,
                "state": "in_service",
                "modbus_unit_id": UNIT_ID,
            }
        )
        self.assertFalse(self.meter.address)

    def _readings(self):
        return self.env["prepaid.meter.reading"].search(
            [("meter_id", "=", self.meter.id)], order="read_at"
        )

    def test_scheduled_poll_reads_it(self):
        report = self.gateway._poll()
        self.assertEqual((report["stored"], report["failed"]), (1, []))
        self.assertAlmostEqual(self._readings().forward_total, 321.5, places=3)
        # a unit that does not answer is named by its unit key in the poll's summary
        self.meter.modbus_unit_id = UNIT_ID + 1
        with mute_logger("prepaid_core.buses.common"):
            report = self.gateway._poll()
        [failed] = report["failed"]
        self.assertEqual(failed["address"], "modbus:3:18")
        self.assertIn("Failed: modbus:3:18: ", self.gateway.last_poll_summary)

    def test_runner_reads_it_by_its_unit_key_and_its_answers_are_taken(self):
        [bus] = self.gateway._api_collector_config()["buses"]
        [config] = bus["meters"]
        self.assertEqual((config["address"], config["unit_id"]), ("modbus:3:17", UNIT_ID))
        command = self.env["meter.gateway.command"]._queue(
            self.meter, "price", "test", payload={"price": "0.6543"}
        )
        self.gateway._set_api_key(KEY)
        api = DeviceApiClient(self.base_url(), self.gateway.id, KEY, retries=1, backoff=0.05)
        runner = CollectorRunner(api, CollectorSettings())
        self.addCleanup(runner.close)
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = runner.tick()
        self.env.invalidate_all()
        self.assertEqual((done["readings"], done["failed"], done["commands"]), (1, 0, 1))
        reading = self._readings()
        self.assertEqual(len(reading), 1)
        self.assertAlmostEqual(reading.forward_total, 321.5, places=3)
        self.assertAlmostEqual(reading.meter_balance, 12.34, places=2)
        self.assertEqual(self.meter.connection_state, "online")
        # the command went out under the unit key and its answer settled it
        self.assertEqual(command.state, "confirmed", command.reason_log)

    def test_unit_key_of_another_bus_or_unit_names_no_meter(self):
        found = self.gateway._api_meters_by_address(
            {"modbus:3:17", "modbus:3:18", "modbus:4:17", "modbus:x:17"}
        )
        self.assertEqual(found, {"modbus:3:17": self.meter.id})
