from odoo import fields, models


class ResCompany(models.Model):
    """B14: the company's overdue policy for postpaid accounts."""

    _inherit = "res.company"

    prepaid_postpaid_cut_days = fields.Integer(
        string="Cut Supply After (days overdue)",
        help="Supply of a postpaid account is cut when its oldest unpaid invoice is overdue "
        "by more than this many days (a tariff may set its own); 0: never cut.",
    )
