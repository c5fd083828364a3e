from odoo import fields, models

from ..const import PAYMENT_METHODS


class PrepaidAccountRefund(models.TransientModel):
    """B5: pay back part of the balance (never more than the balance)."""

    _name = "prepaid.account.refund"
    _description = "Refund from a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    partner_id = fields.Many2one(related="account_id.partner_id")
    balance = fields.Float(related="account_id.balance")
    amount = fields.Float(digits=(16, 4), required=True)
    payment_method = fields.Selection(PAYMENT_METHODS, required=True, default="cash")
    memo = fields.Char()

    def action_confirm(self):
        self.ensure_one()
        self.account_id._refund(
            f"{self.amount:.4f}", payment_method=self.payment_method, memo=self.memo or ""
        )
        return {"type": "ir.actions.act_window_close"}
