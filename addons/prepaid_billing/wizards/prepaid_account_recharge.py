from odoo import api, fields, models

from ..const import PAYMENT_METHODS


class PrepaidAccountRecharge(models.TransientModel):
    """B4: a recharge at the operator desk; preset credit and overdraft are settled first."""

    _name = "prepaid.account.recharge"
    _description = "Recharge a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    partner_id = fields.Many2one(related="account_id.partner_id")
    balance = fields.Float(related="account_id.balance")
    preset_outstanding = fields.Float(related="account_id.preset_outstanding")
    amount = fields.Float(digits=(16, 4), required=True)
    payment_method = fields.Selection(PAYMENT_METHODS, required=True, default="cash")
    memo = fields.Char()

    @api.model
    def _amount_text(self, value):
        return f"{value:.4f}"

    def action_confirm(self):
        self.ensure_one()
        self.account_id._recharge(
            self._amount_text(self.amount), payment_method=self.payment_method, memo=self.memo or ""
        )
        return {"type": "ir.actions.act_window_close"}
