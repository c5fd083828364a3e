from odoo import fields, models


class AccountMove(models.Model):
    """B9: a customer invoice (or credit note) of prepaid consumption."""

    _inherit = "account.move"

    prepaid_account_id = fields.Many2one(
        "prepaid.account",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The prepaid account whose consumption this invoice bills.",
    )
    prepaid_invoiced_until = fields.Date(
        string="Consumption Until",
        readonly=True,
        copy=False,
        help="The invoice bills the consumption charged before this day (excluded).",
    )
