from odoo import fields, models

from ..const import BANDS


class AccountMoveLine(models.Model):
    """B9: an invoice line of consumption names the tariff part it bills (time-of-use band,
    ladder step, tariff unit price), so that the next invoice bills only what is new."""

    _inherit = "account.move.line"

    prepaid_band = fields.Selection(BANDS, string="Band", readonly=True, copy=False)
    prepaid_step = fields.Integer(string="Ladder Step", readonly=True, copy=False)
    prepaid_rate = fields.Float(
        string="Tariff Price",
        digits=(16, 6),
        readonly=True,
        copy=False,
        help="Unit price of the tariff for this band and step.",
    )

    def _prepaid_billed_amount(self):
        """What the line bills of the consumption charged: its total when its taxes are
        included in the price, else its amount before taxes."""
        self.ensure_one()
        if any(not tax.price_include for tax in self.tax_ids):
            return self.price_subtotal
        return self.price_total
