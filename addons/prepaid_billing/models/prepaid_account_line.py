from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import LINE_KINDS, PAYMENT_METHODS


class PrepaidAccountLine(models.Model):
    """B2: one movement of a prepaid account's balance; the ledger is append-only.

    Lines are created only through :meth:`prepaid.account._post_lines` (which keeps the
    account's balance equal to the sum of its lines) and by the deduction run, which keeps
    at most one consumption line per account and day and adds to it as the day goes on;
    ``detail`` traces it to the meters, readings and tariff lines it charges."""

    _name = "prepaid.account.line"
    _description = "Prepaid Account Ledger Line"
    _order = "posted_at desc, id desc"

    account_id = fields.Many2one(
        "prepaid.account", required=True, index=True, ondelete="restrict", readonly=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="account_id.currency_id")
    partner_id = fields.Many2one(related="account_id.partner_id")
    kind = fields.Selection(LINE_KINDS, required=True, readonly=True)
    amount = fields.Float(digits=(16, 4), required=True, readonly=True)
    date = fields.Date(required=True, readonly=True, default=fields.Date.context_today)
    posted_at = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    memo = fields.Char(readonly=True)
    user_id = fields.Many2one(
        "res.users", string="Operator", readonly=True, default=lambda self: self.env.user
    )
    payment_method = fields.Selection(PAYMENT_METHODS, readonly=True)
    reference = fields.Char(
        readonly=True,
        copy=False,
        help="Payment reference of a recharge (e.g. an online payment transaction): a "
        "reference is credited once (unique with the line's kind).",
    )
    payment_id = fields.Many2one(
        "account.payment",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The customer payment (desk or online) this recharge or refund line records.",
    )
    meter_id = fields.Many2one(
        "prepaid.meter",
        readonly=True,
        index="btree_not_null",
        help="The meter a recharge was bought for.",
    )
    meter_credit_id = fields.Many2one(
        "prepaid.meter.credit",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The credit this recharge sent to a meter that keeps its own balance.",
    )
    quantity = fields.Float(digits=(16, 6), readonly=True, help="Consumption charged.")
    reading_from = fields.Datetime(readonly=True, help="Start of the first interval charged.")
    reading_to = fields.Datetime(readonly=True, help="Time of the last reading charged.")
    reading_count = fields.Integer(readonly=True)
    detail = fields.Json(
        readonly=True,
        help="Readings and tariff lines of a deduction: per meter (first, last reading time, "
        "number of readings) and per (version, band, step, utility) quantity and amount.",
    )

    _deduction_day_uniq = models.UniqueIndex(
        "(account_id, date) WHERE kind = 'deduction'",
        "An account has at most one consumption line a day.",
    )
    _account_date_idx = models.Index("(account_id, date)")
    _reference_kind_uniq = models.UniqueIndex(
        "(reference, kind) WHERE reference IS NOT NULL",
        "A payment reference is credited once.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get("prepaid_ledger_post"):
            raise UserError(
                self.env._("Ledger lines are posted by recharges, refunds and deductions only.")
            )
        return super().create(vals_list)

    def write(self, vals):
        if set(vals) & {"account_id", "kind", "amount", "date", "quantity", "detail", "meter_id"}:
            raise UserError(self.env._("The ledger is append-only: a line cannot be changed."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(self.env._("The ledger is append-only: a line cannot be deleted."))
