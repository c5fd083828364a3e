import base64
import json
from decimal import Decimal

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged

from prepaid_core.protocols.modbus_maps import REGISTER_MAPS
from prepaid_core.protocols.modbus_registers import register_map_data
from prepaid_core.simulator.modbus_reference import PymodbusMeter

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestRegisterMaps(MeterGatewayCommon):
    """G2/X1: Modbus register maps kept as data, checked, exported and imported, and read
    through the real poll from pymodbus's own server by unit id alone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Map = cls.env["meter.gateway.register.map"]
        cls.sdm630 = cls.env.ref("meter_gateway.register_map_eastron_sdm630")

    def _model_with_map(self, regmap):
        return self.ddsy.copy(
            {
                "name": f"Modbus model {regmap.code}",
                "code": f"MB-{regmap.code}",
                "protocol": "modbus_rtu",
                "modbus_register_map": regmap.id,
            }
        )

    def _poll_from_pymodbus(self, regmap, unit_id, values):
        """A meter of a model read by ``regmap``, addressed by ``unit_id`` only, polled
        from pymodbus's server holding ``values``; returns the meter's reading."""
        server = PymodbusMeter(unit_id, regmap._register_map(), values).start()
        self.addCleanup(server.stop)
        gateway, bus = self._tcp_collector("pymodbus collector", server.port, "modbus_rtu")
        meter = self.env["prepaid.meter"].create(
            {
                "name": "Modbus by unit id",
                "model_id": self._model_with_map(regmap).id,
                "unit_id": self.unit.id,
                "gateway_id": gateway.id,
                "bus_id": bus.id,
                "state": "in_service",
                "modbus_unit_id": unit_id,
            }
        )
        self.assertFalse(meter.address)
        gateway._poll()
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)])

    def test_shipped_maps_are_records(self):
        for name, regmap in REGISTER_MAPS.items():
            record = self.env.ref(f"meter_gateway.register_map_{name}")
            self.assertEqual(register_map_data(record._register_map()), register_map_data(regmap))
        self.assertEqual(
            self.env.ref("prepaid_meter.meter_model_ddsy_5_60").modbus_register_map,
            self.env.ref("meter_gateway.register_map_acrel_prepaid_1p"),
        )

    def test_sdm630_read_by_unit_id_from_pymodbus_server(self):
        # the meter holds W in float32; the reading is in kW, energy in kWh
        reading = self._poll_from_pymodbus(
            self.sdm630,
            201,
            {"import_energy": Decimal("1234.5"), "active_power": Decimal("7.25")},
        )
        self.assertEqual(len(reading), 1)
        self.assertAlmostEqual(reading.forward_total, 1234.5, places=3)
        self.assertAlmostEqual(reading.power, 7.25, places=3)
        # the gateway runner keys meters by address: this one is named by its unit key
        config = reading.meter_id.gateway_id._api_collector_config()
        self.assertEqual(config["buses"][0]["meters"][0]["address"], "modbus:1:201")

    def test_map_made_in_the_backend_read_through_the_poll(self):
        regmap = self.Map.create(
            {
                "name": "Low word first, x0.01",
                "code": "test_low_word",
                "line_ids": [
                    Command.create(
                        {
                            "measure": "import_energy",
                            "address": 100,
                            "value_type": "uint32",
                            "word_order": "little",
                            "scale": 0.01,
                            "unit": "kWh",
                        }
                    ),
                    Command.create(
                        {
                            "measure": "active_power",
                            "address": 102,
                            "value_type": "int16",
                            "scale": 0.001,
                            "unit": "kW",
                        }
                    ),
                    Command.create({"measure": "relay_state", "address": 103}),
                ],
            }
        )
        reading = self._poll_from_pymodbus(
            regmap,
            5,
            {
                "import_energy": Decimal("98765.43"),
                "active_power": Decimal("-1.5"),
                "relay_state": 1,
            },
        )
        self.assertAlmostEqual(reading.forward_total, 98765.43, places=2)
        self.assertAlmostEqual(reading.power, -1.5, places=3)
        self.assertEqual(reading.relay_state, "off")

    def test_export_then_import_makes_the_same_map(self):
        action = self.sdm630.action_export_file()
        wizard = self.env["meter.gateway.register.map.transfer"].search(
            [], order="id desc", limit=1
        )
        self.assertIn(str(wizard.id), action["url"])
        data = json.loads(base64.b64decode(wizard.file))
        self.assertEqual(data["source"], self.sdm630.source)
        data["name"] = "sdm630_copy"
        imported = (
            self.env["meter.gateway.register.map.transfer"]
            .create({"file": base64.b64encode(json.dumps(data).encode())})
            .action_import()
        )
        copy = self.Map.browse(imported["res_id"])
        self.assertEqual(copy.code, "sdm630_copy")
        ours, theirs = (
            register_map_data(copy._register_map()),
            register_map_data(self.sdm630._register_map()),
        )
        self.assertEqual({**ours, "name": "x"}, {**theirs, "name": "x"})
        # the same file again replaces that map's registers rather than adding a map
        data["registers"] = data["registers"][:2]
        again = (
            self.env["meter.gateway.register.map.transfer"]
            .create({"file": base64.b64encode(json.dumps(data).encode())})
            .action_import()
        )
        self.assertEqual(again["res_id"], copy.id)
        self.assertEqual(len(copy.line_ids), 2)

    def test_bad_maps_are_refused_naming_the_field(self):
        with self.assertRaisesRegex(ValidationError, "voltage.address.*overlaps"):
            self.Map.create(
                {
                    "name": "Overlap",
                    "code": "test_overlap",
                    "line_ids": [
                        Command.create(
                            {"measure": "import_energy", "address": 0, "value_type": "uint32"}
                        ),
                        Command.create({"measure": "voltage", "address": 1}),
                    ],
                }
            )
        regmap = self.Map.create(
            {
                "name": "Ok",
                "code": "test_ok",
                "line_ids": [Command.create({"measure": "voltage", "address": 0})],
            }
        )
        with self.assertRaisesRegex(ValidationError, "max_registers"):
            regmap.max_registers = 200
        with self.assertRaisesRegex(ValidationError, "scale"):
            regmap.line_ids.scale = 0
        bad = {"name": "bad", "registers": [{"measure": "voltage", "address": 0, "type": "u64"}]}
        wizard = self.env["meter.gateway.register.map.transfer"].create(
            {"file": base64.b64encode(json.dumps(bad).encode())}
        )
        with self.assertRaisesRegex(UserError, r"registers\[0\]\.type.*unknown type"):
            wizard.action_import()
        wizard.file = base64.b64encode(b"not json")
        with self.assertRaisesRegex(UserError, "not a register map"):
            wizard.action_import()

    def test_unit_id_outside_1_to_247_or_taken_on_the_bus_is_refused(self):
        gateway = self.env["prepaid.gateway"].create(
            {"name": "Units", "gateway_type": "tcp_collector", "site_id": self.site.id}
        )
        bus = self.env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": 1, "port": 4001, "protocol": "modbus_rtu"}
        )
        meter, other = self.meter, self.meter2
        (meter | other).write({"gateway_id": gateway.id, "bus_id": bus.id})
        for unit_id in (248, -3):
            with self.assertRaisesRegex(ValidationError, "Modbus unit id"):
                meter.modbus_unit_id = unit_id
        meter.modbus_unit_id = 247
        with self.assertRaisesRegex(ValidationError, "already used on the bus"):
            other.modbus_unit_id = 247
        other.modbus_unit_id = 246


@tagged("post_install", "-at_install")
class TestRegisterMapDownload(HttpCase):
    """G2: a manager's Export File action downloads the map's JSON file over HTTP."""

    def test_manager_downloads_the_exported_file(self):
        manager = new_test_user(
            self.env, login="map_manager", groups="prepaid_meter.group_prepaid_manager"
        )
        sdm630 = self.env.ref("meter_gateway.register_map_eastron_sdm630")
        action = sdm630.with_user(manager).action_export_file()
        self.authenticate("map_manager", "map_manager")
        response = self.url_open(action["url"])
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), sdm630._register_map_data())
