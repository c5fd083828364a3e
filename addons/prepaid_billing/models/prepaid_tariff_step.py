from odoo import fields, models


class PrepaidTariffStep(models.Model):
    """B1: one ladder step of a tariff version, with its price in each band."""

    _name = "prepaid.tariff.step"
    _inherit = ["prepaid.tariff.part"]
    _description = "Tariff Ladder Step"
    _order = "version_id, sequence, id"

    version_id = fields.Many2one(
        "prepaid.tariff.version", required=True, index=True, ondelete="cascade"
    )
    sequence = fields.Integer(default=1, help="Step number: 1 is the first step of the ladder.")
    limit_qty = fields.Float(
        string="Up To",
        digits=(16, 4),
        help="Cycle consumption at which the next step begins (ignored on the last step).",
    )
    price_sharp = fields.Float(string="Sharp Price", digits=(16, 6))
    price_peak = fields.Float(string="Peak Price", digits=(16, 6))
    price_flat = fields.Float(string="Flat Price", digits=(16, 6))
    price_valley = fields.Float(string="Valley Price", digits=(16, 6))
    price_deep_valley = fields.Float(string="Deep Valley Price", digits=(16, 6))

    def _part_tariffs(self):
        return self.version_id.tariff_id
