"""Modbus register maps kept as data (G2): managers and installers add a meter brand in the
backend, without code, and export or import it as a JSON file.

A map record turns into prepaid_core's plain map (``_register_map_data``) and from there
into the ``RegisterMap`` the driver and the simulator read; the checks on a map (unknown
type or measure, scale 0, overlapping registers) are prepaid_core's, run by the
constraints here.  The maps shipped in ``prepaid_core.protocols.modbus_maps`` are loaded as
records with external ids (``register_map_<name>``) and not overwritten by an update."""

import base64
import json

from odoo import Command, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import float_repr

from prepaid_core.protocols.modbus_maps import REGISTER_MAPS
from prepaid_core.protocols.modbus_registers import (
    RegisterMapError,
    build_register_map,
    register_map_data,
)

MEASURE_LABELS = [
    ("total_energy", "Active energy, total"),
    ("import_energy", "Active energy, forward (import)"),
    ("export_energy", "Active energy, reverse (export)"),
    ("sharp_energy", "Active energy, sharp tariff"),
    ("peak_energy", "Active energy, peak tariff"),
    ("flat_energy", "Active energy, flat tariff"),
    ("valley_energy", "Active energy, valley tariff"),
    ("active_power", "Active power, total"),
    ("active_power_a", "Active power, phase A"),
    ("active_power_b", "Active power, phase B"),
    ("active_power_c", "Active power, phase C"),
    ("voltage", "Voltage"),
    ("voltage_a", "Voltage, phase A"),
    ("voltage_b", "Voltage, phase B"),
    ("voltage_c", "Voltage, phase C"),
    ("current", "Current"),
    ("current_a", "Current, phase A"),
    ("current_b", "Current, phase B"),
    ("current_c", "Current, phase C"),
    ("power_factor", "Power factor"),
    ("frequency", "Frequency"),
    ("remaining_balance", "Meter balance"),
    ("purchase_count", "Purchase count"),
    ("cumulative_purchase", "Cumulative purchase"),
    ("alarm_amount_1", "Alarm amount 1"),
    ("alarm_amount_2", "Alarm amount 2"),
    ("overdraft_limit", "Overdraft limit"),
    ("price", "Price"),
    ("relay_state", "Relay state"),
    ("relay_control", "Relay control"),
    ("relay_coil", "Relay coil"),
    ("ct_ratio", "CT ratio"),
    ("pt_ratio", "PT ratio"),
]
TYPE_LABELS = [
    ("uint16", "u16"),
    ("int16", "s16"),
    ("uint32", "u32"),
    ("int32", "s32"),
    ("float32", "float32"),
    ("bcd16", "BCD, 4 digits"),
    ("bcd32", "BCD, 8 digits"),
    ("coil", "Coil"),
]
ORDERS = [("big", "High first"), ("little", "Low first")]


class MeterGatewayRegisterMap(models.Model):
    """The registers of one Modbus meter model, as its datasheet gives them."""

    _name = "meter.gateway.register.map"
    _description = "Modbus Register Map"
    _order = "name"

    name = fields.Char(required=True)
    code = fields.Char(
        required=True,
        help="Technical name of the map, unique; the name of the map in an exported file.",
    )
    active = fields.Boolean(default=True)
    brand = fields.Char(help="Maker and model of the meters the map is for.")
    source = fields.Char(
        help="The datasheet the register addresses come from (title or URL).",
    )
    max_registers = fields.Integer(
        default=125, help="Registers the meter answers at most in one read (1-125)."
    )
    relay_trip_value = fields.Integer(
        help="Value written to the Relay control register to open the relay (supply off)."
    )
    relay_close_value = fields.Integer(
        help="Value written to the Relay control register to close the relay (supply on)."
    )
    line_ids = fields.One2many(
        "meter.gateway.register.map.line", "map_id", string="Registers", copy=True
    )

    _code_uniq = models.Constraint("UNIQUE(code)", "A register map's technical name is unique.")

    @api.constrains("max_registers", "relay_trip_value", "relay_close_value", "line_ids")
    def _check_register_map(self):
        for regmap in self:
            try:
                regmap._register_map()
            except RegisterMapError as exc:
                raise ValidationError(
                    self.env._(
                        "The register map %(map)s is not valid: %(error)s",
                        map=regmap.display_name,
                        error=str(exc),
                    )
                ) from None

    def _register_map_data(self):
        """The map in prepaid_core's plain form (the exported file's content)."""
        self.ensure_one()
        lines = self.line_ids.sorted(lambda line: (line.sequence, line.id))
        has_relay = "relay_control" in lines.mapped("measure")
        return {
            "name": self.code,
            "description": self.name,
            "brand": self.brand or "",
            "source": self.source or "",
            "max_registers": self.max_registers,
            "relay": has_relay
            and {
                "measure": "relay_control",
                "trip": self.relay_trip_value,
                "close": self.relay_close_value,
            },
            "registers": [line._register_data() for line in lines],
        }

    def _register_map(self):
        """The ``RegisterMap`` the driver reads (RegisterMapError when it is not valid)."""
        return build_register_map(self._register_map_data())

    @api.model
    def _values_from_data(self, data):
        """Record values from a map's plain form, checked by prepaid_core first."""
        regmap = build_register_map(data)
        relay = regmap.relay
        return {
            "name": regmap.description or regmap.model,
            "code": regmap.model,
            "brand": data.get("brand") or False,
            "source": regmap.source or False,
            "max_registers": regmap.max_registers,
            "relay_trip_value": relay.trip_value if relay else 0,
            "relay_close_value": relay.close_value if relay else 0,
            "line_ids": [Command.clear()]
            + [
                Command.create({"sequence": index, **line})
                for index, line in enumerate(
                    self.env["meter.gateway.register.map.line"]._values_from_data(
                        register_map_data(regmap)["registers"]
                    )
                )
            ],
        }

    @api.model
    def _load_shipped_maps(self):
        """The maps of ``modbus_maps`` as records; a manager's edits survive updates."""
        self._load_records(
            [
                {
                    "xml_id": f"meter_gateway.register_map_{name}",
                    "values": self._values_from_data(register_map_data(regmap)),
                    "noupdate": True,
                }
                for name, regmap in REGISTER_MAPS.items()
            ],
            update=True,
        )
        # meter models created before the maps existed (at install) take the default map,
        # the one the driver falls back to for a model without a map
        default = self.env.ref("meter_gateway.register_map_acrel_prepaid_1p")
        self.env["prepaid.meter.model"].with_context(active_test=False).search(
            [("modbus_register_map", "=", False)]
        ).modbus_register_map = default

    def action_export_file(self):
        """Download the map as a JSON file (importable here or on another database)."""
        self.ensure_one()
        wizard = self.env["meter.gateway.register.map.transfer"].create(
            {
                "file": base64.b64encode(json.dumps(self._register_map_data(), indent=2).encode()),
                "filename": f"{self.code}.json",
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/meter.gateway.register.map.transfer/{wizard.id}/file/"
            f"{wizard.filename}?download=true",
            "target": "self",
        }


class MeterGatewayRegisterMapLine(models.Model):
    """One register of a map: where it is, how it is encoded, what it measures."""

    _name = "meter.gateway.register.map.line"
    _description = "Modbus Register Map Line"
    _order = "map_id, sequence, id"

    map_id = fields.Many2one(
        "meter.gateway.register.map", required=True, index=True, ondelete="cascade"
    )
    sequence = fields.Integer(default=10)
    measure = fields.Selection(MEASURE_LABELS, required=True, help="What the register holds.")
    address = fields.Integer(
        required=True, help="Register address as sent on the wire (30001 is address 0)."
    )
    function = fields.Selection(
        [("3", "03 Holding registers"), ("4", "04 Input registers"), ("1", "01 Coils")],
        required=True,
        default="3",
    )
    value_type = fields.Selection(TYPE_LABELS, string="Type", required=True, default="uint16")
    word_order = fields.Selection(ORDERS, required=True, default="big")
    byte_order = fields.Selection(ORDERS, required=True, default="big")
    scale = fields.Float(
        required=True, default=1.0, digits=(16, 8), help="Raw value × scale = value in unit."
    )
    unit = fields.Char()
    writable = fields.Boolean(help="Written by commands: relay control, price, thresholds.")

    @api.constrains(
        "measure", "address", "function", "value_type", "word_order", "byte_order", "scale"
    )
    def _check_register(self):
        self.map_id._check_register_map()

    def _register_data(self):
        self.ensure_one()
        return {
            "measure": self.measure,
            "address": self.address,
            "function": int(self.function),
            "type": self.value_type,
            "word_order": self.word_order,
            "byte_order": self.byte_order,
            "scale": float_repr(self.scale, 8).rstrip("0").rstrip(".") or "0",
            "unit": self.unit or "",
            "writable": self.writable,
        }

    @api.model
    def _values_from_data(self, registers):
        return [
            {
                "measure": line["measure"],
                "address": line["address"],
                "function": str(line["function"]),
                "value_type": line["type"],
                "word_order": line["word_order"],
                "byte_order": line["byte_order"],
                "scale": float(line["scale"]),
                "unit": line["unit"] or False,
                "writable": line["writable"],
            }
            for line in registers
        ]
