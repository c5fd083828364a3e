from odoo import fields, models

from prepaid_core.protocols.modbus_maps import REGISTER_MAPS


class PrepaidMeterModel(models.Model):
    _inherit = "prepaid.meter.model"

    modbus_register_map = fields.Selection(
        [(name, regmap.description or name) for name, regmap in sorted(REGISTER_MAPS.items())],
        default="acrel_prepaid_1p",
        help="Register layout of the model's Modbus-RTU meters.",
    )
    holds_settings = fields.Boolean(
        string="Prices Held by the Meter",
        help="Meters of this model price locally: their prices and alarm thresholds are "
        "issued to them (price and thresholds commands) whenever they change: tariff, "
        "account or meter thresholds, Issue Prices and Thresholds.",
    )
