from odoo import fields, models


class AccountPayment(models.Model):
    """B9: a recharge (inbound) or refund (outbound) of a prepaid account, desk or online."""

    _inherit = "account.payment"

    prepaid_account_id = fields.Many2one(
        "prepaid.account",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The prepaid account this payment credited (recharge) or paid back (refund).",
    )
    prepaid_line_ids = fields.One2many(
        "prepaid.account.line", "payment_id", string="Prepaid Ledger Lines", readonly=True
    )

    def action_view_prepaid_account(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.account",
            "res_id": self.prepaid_account_id.id,
            "view_mode": "form",
        }
