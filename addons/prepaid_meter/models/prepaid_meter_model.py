from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_core.readings import MeterLimits, transformer_ratio

from ..const import BILLING_MODES, PROTOCOLS

#: the nameplate fields of a transformer, by the ratio computed from them
TRANSFORMER_PAIRS = {
    "ct_ratio": ("ct_primary", "ct_secondary"),
    "pt_ratio": ("pt_primary", "pt_secondary"),
}

#: how both ratios are computed (from their pairs) and kept
_COMPUTED_RATIO = {"compute": "_compute_transformer_ratios", "store": True}


class PrepaidTransformerRatios(models.AbstractModel):
    """M2/M3: a current (CT) and a voltage (PT) transformer entered as on their nameplates
    (CT 50/5 A, PT 10000/100 V), and the ratios computed from them, which scale a meter's
    readings to the primary side.  A ratio written (code, data files) is the pair ratio/1."""

    _name = "prepaid.transformer.ratios"
    _description = "CT/PT Nameplate Ratios"

    ct_primary = fields.Float(string="CT Primary (A)", default=1.0)
    ct_secondary = fields.Float(string="CT Secondary (A)", default=1.0)
    pt_primary = fields.Float(string="PT Primary (V)", default=1.0)
    pt_secondary = fields.Float(string="PT Secondary (V)", default=1.0)
    ct_ratio = fields.Float(
        string="CT Ratio",
        inverse="_inverse_ct_ratio",
        help="CT primary / secondary: currents, energy and power are multiplied by it.",
        **_COMPUTED_RATIO,
    )
    pt_ratio = fields.Float(
        string="PT Ratio",
        inverse="_inverse_pt_ratio",
        help="PT primary / secondary: voltages, energy and power are multiplied by it.",
        **_COMPUTED_RATIO,
    )

    @api.depends("ct_primary", "ct_secondary", "pt_primary", "pt_secondary")
    def _compute_transformer_ratios(self):
        for record in self:
            for ratio, (primary, secondary) in TRANSFORMER_PAIRS.items():
                try:
                    value = transformer_ratio(record[primary], record[secondary])
                except ValueError:  # (refused by _check_transformer_pairs)
                    value = 0
                record[ratio] = float(value)

    def _inverse_ct_ratio(self):
        self._pairs_from_ratio("ct_ratio")

    def _inverse_pt_ratio(self):
        self._pairs_from_ratio("pt_ratio")

    def _pairs_from_ratio(self, ratio):
        """A ratio written as such becomes the nameplate pair ratio/1, unless the pair
        already gives it (a data file writing the ratio again keeps a pair such as 200/5)."""
        primary, secondary = TRANSFORMER_PAIRS[ratio]
        for record in self:
            record._check_positive(ratio)
            try:
                same = float(transformer_ratio(record[primary], record[secondary])) == record[ratio]
            except ValueError:
                same = False
            if not same:
                record.write({primary: record[ratio], secondary: 1.0})

    @api.constrains("ct_primary", "ct_secondary", "pt_primary", "pt_secondary")
    def _check_transformer_pairs(self):
        for record in self:
            for pair in TRANSFORMER_PAIRS.values():
                for name in pair:
                    record._check_positive(name)

    def _check_positive(self, name):
        if not self[name] > 0:
            raise ValidationError(
                self.env._(
                    "%(record)s: %(field)s must be a positive number (got %(value)s).",
                    record=self.display_name,
                    field=self._fields[name]._description_string(self.env),
                    value=self[name],
                )
            )

    def _transformer_values(self):
        """The nameplate pairs of this record, as values for another (a new meter)."""
        self.ensure_one()
        return {name: self[name] for pair in TRANSFORMER_PAIRS.values() for name in pair}


class PrepaidMeterModel(models.Model):
    """M2: a meter type as the manufacturer rates it (DDSY, DTSY, water meter...)."""

    _name = "prepaid.meter.model"
    _inherit = ["prepaid.transformer.ratios"]
    _description = "Meter Model"
    _order = "utility, name"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="Manufacturer's model code, e.g. DDSY 5(60)A.")
    active = fields.Boolean(default=True)
    manufacturer = fields.Char()
    utility = fields.Selection(
        [("electricity", "Electricity"), ("water", "Water")], required=True, default="electricity"
    )
    phases = fields.Selection([("1", "Single-phase"), ("3", "Three-phase")], default="1")
    voltage = fields.Float(string="Rated Voltage (V)", help="Phase voltage, e.g. 220.")
    voltage_label = fields.Char(string="Voltage", help="As printed, e.g. 3×220/380 V.")
    basic_current = fields.Float(string="Basic Current Ib (A)")
    max_current = fields.Float(string="Maximum Current Imax (A)")
    constant = fields.Integer(help="Pulses per kWh (or per m³).")
    accuracy_class = fields.Char(default="1.0")
    frequency = fields.Integer(string="Frequency (Hz)", default=50)
    max_flow = fields.Float(string="Maximum Flow (m³/h)", help="Water meters: Q4 flow rate.")
    has_relay = fields.Boolean(
        string="Relay / Valve", default=True, help="The meter can cut supply itself."
    )
    bidirectional = fields.Boolean(
        help="Reverse energy is added to forward energy (anti-theft metering)."
    )
    register_max = fields.Float(
        digits=(16, 4), default=999999.99, help="Largest value the register shows before it wraps."
    )
    register_resolution = fields.Float(digits=(16, 4), default=0.01)
    protocol = fields.Selection(PROTOCOLS, default="dlt645_2007", required=True)
    channel_4g = fields.Boolean(string="4G / MQTT")
    channel_rs485 = fields.Boolean(string="RS-485", default=True)
    channel_bluetooth = fields.Boolean(string="Bluetooth")
    channel_ir = fields.Boolean(string="Infrared", default=True)
    billing_mode = fields.Selection(
        BILLING_MODES,
        default="server",
        required=True,
        help="Server Billing: the server deducts consumption and cuts or restores supply "
        "by relay command. Meter Billing: the meter deducts at the prices issued to it and "
        "every recharge reaches it as a credit token. New meters of the model take it; a "
        "meter may differ.",
    )
    max_rate = fields.Float(
        compute="_compute_max_rate",
        store=True,
        digits=(16, 4),
        string="Maximum Rate",
        help="Most a meter can register per hour on its own side: kW from voltage × Imax × "
        "phases, or the maximum flow for water. Readings above it are flagged as spikes.",
    )
    uom_name = fields.Char(compute="_compute_uom_name", string="Unit of Measure")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _code_uniq = models.UniqueIndex("(code)", "A meter model code must be unique.")

    @api.depends("utility", "phases", "voltage", "max_current", "max_flow")
    def _compute_max_rate(self):
        for model in self:
            if model.utility == "water":
                model.max_rate = model.max_flow
            else:
                model.max_rate = int(model.phases or 1) * model.voltage * model.max_current / 1000

    @api.depends("utility")
    def _compute_uom_name(self):
        for model in self:
            model.uom_name = "m³" if model.utility == "water" else "kWh"

    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group(
                [("model_id", "in", self.ids)], ["model_id"], ["__count"]
            )
        )
        for model in self:
            model.meter_count = counts.get(model, 0)

    def _limits(self):
        """The pure validation limits of this model (prepaid_core.readings)."""
        self.ensure_one()
        return MeterLimits(
            max_rate=Decimal(str(self.max_rate or 0)) or Decimal("1e9"),
            register_max=Decimal(str(self.register_max or "999999.99")),
            resolution=Decimal(str(self.register_resolution or "0.01")),
        )
