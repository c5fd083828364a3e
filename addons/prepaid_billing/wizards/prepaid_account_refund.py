from odoo import api, fields, models

from ..const import PAYMENT_METHODS


class PrepaidAccountRefund(models.TransientModel):
    """B5: pay back part of the balance (never more than the balance). On an account with
    meters that keep their own balance (B13) the money is on those meters too: the operator
    is warned to take it back from them first (docs/meter_balance.md)."""

    _name = "prepaid.account.refund"
    _description = "Refund from a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    partner_id = fields.Many2one(related="account_id.partner_id")
    balance = fields.Float(related="account_id.balance")
    amount = fields.Float(digits=(16, 4), required=True)
    payment_method = fields.Selection(PAYMENT_METHODS, required=True, default="cash")
    memo = fields.Char()
    meter_balance_warning = fields.Boolean(compute="_compute_meter_balance_warning")

    @api.depends("account_id")
    def _compute_meter_balance_warning(self):
        for wizard in self:
            wizard.meter_balance_warning = bool(wizard.account_id._meter_balance_meters())

    def action_confirm(self):
        self.ensure_one()
        self.account_id._refund(
            f"{self.amount:.4f}", payment_method=self.payment_method, memo=self.memo or ""
        )
        return {"type": "ir.actions.act_window_close"}
