from odoo import fields, models


class PrepaidTariff(models.Model):
    """B14: the overdue policy of the postpaid accounts on this tariff."""

    _inherit = "prepaid.tariff"

    postpaid_cut_days = fields.Integer(
        string="Cut Supply After (days overdue)",
        help="Postpaid accounts on this tariff: supply is cut when the oldest unpaid invoice "
        "is overdue by more than this many days; 0: the company's policy.",
    )
