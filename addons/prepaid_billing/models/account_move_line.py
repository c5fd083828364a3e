from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    prepaid_quantity = fields.Float(
        string="Consumption",
        digits=(16, 6),
        readonly=True,
        copy=False,
        help="kWh or m³ of prepaid consumption this invoice line bills.",
    )
