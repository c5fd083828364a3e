from odoo import fields, models

from ..const import BANDS


class PrepaidTariffSegment(models.Model):
    """B1: a daily time-of-use period of a tariff version (up to 14 a day)."""

    _name = "prepaid.tariff.segment"
    _description = "Tariff Time-of-Use Period"
    _order = "version_id, hour_from"

    version_id = fields.Many2one(
        "prepaid.tariff.version", required=True, index=True, ondelete="cascade"
    )
    hour_from = fields.Float(string="From", required=True, help="Hour of the day, e.g. 8.5.")
    hour_to = fields.Float(string="To", required=True, help="24 or 0 means midnight.")
    band = fields.Selection(BANDS, required=True, default="flat")
