from odoo import api, fields, models

from ..const import PAYMENT_METHODS


class PrepaidAccountRecharge(models.TransientModel):
    """B4: a recharge at the operator desk; preset credit and overdraft are settled first.
    The meter it is for (R5) is one of the account's; a meter that keeps its own balance
    gets it as a token (B13), so one of several such meters must be chosen."""

    _name = "prepaid.account.recharge"
    _description = "Recharge a Prepaid Account"

    account_id = fields.Many2one("prepaid.account", required=True)
    partner_id = fields.Many2one(related="account_id.partner_id")
    balance = fields.Float(related="account_id.balance")
    preset_outstanding = fields.Float(related="account_id.preset_outstanding")
    amount = fields.Float(digits=(16, 4), required=True)
    payment_method = fields.Selection(PAYMENT_METHODS, required=True, default="cash")
    memo = fields.Char()
    account_meter_ids = fields.Many2many(related="account_id.meter_ids")
    meter_id = fields.Many2one(
        "prepaid.meter",
        compute="_compute_meter_id",
        store=True,
        readonly=False,
        domain="[('id', 'in', account_meter_ids)]",
        help="The meter this recharge is for.",
    )
    meter_required = fields.Boolean(compute="_compute_meter_required")
    meter_billing_mode = fields.Selection(related="meter_id.billing_mode")

    @api.depends("account_id")
    def _compute_meter_id(self):
        for wizard in self:
            own_balance = wizard.account_id._meter_balance_meters()
            wizard.meter_id = own_balance if len(own_balance) == 1 else False

    @api.depends("account_id")
    def _compute_meter_required(self):
        for wizard in self:
            wizard.meter_required = len(wizard.account_id._meter_balance_meters()) > 1

    @api.model
    def _amount_text(self, value):
        return f"{value:.4f}"

    def action_confirm(self):
        self.ensure_one()
        self.account_id._recharge(
            self._amount_text(self.amount),
            payment_method=self.payment_method,
            memo=self.memo or "",
            meter=self.meter_id,
        )
        return {"type": "ir.actions.act_window_close"}
