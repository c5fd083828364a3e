from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_core import balance

from ..const import CREDIT_CHANNELS, CREDIT_STATES
from ..error_texts import error_text


class PrepaidMeterCredit(models.Model):
    """B13: credit sold for a meter that keeps its own balance, on its way to the meter.

    One record per credit, created in the transaction that posts the money; its ``origin``
    (what sold it, e.g. ``prepaid.account.line,42``) is unique, so a retried or duplicated
    notification finds the first record instead of vending a second credit (R10). The
    gateway add-on turns it into a token and delivers it by the meter's channel
    (:meth:`_issue_token`); until then it stays *To Issue*, visible to the operators. The
    token, a bearer of credit, is readable by managers only; receipts and the tenant's own
    portal pages show it through their own access checks."""

    _name = "prepaid.meter.credit"
    _description = "Meter Credit"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True, copy=False, default="/")
    meter_id = fields.Many2one(
        "prepaid.meter",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    partner_id = fields.Many2one(related="meter_id.tenant_id", string="Tenant")
    amount = fields.Float(
        digits=(16, 4), required=True, readonly=True, help="Money credited to the meter."
    )
    origin = fields.Char(
        required=True,
        readonly=True,
        copy=False,
        help="What sold this credit (a ledger line, e.g. prepaid.account.line,42): one "
        "credit per origin.",
    )
    state = fields.Selection(
        CREDIT_STATES, default="to_issue", required=True, readonly=True, tracking=True
    )
    channel = fields.Selection(
        CREDIT_CHANNELS,
        readonly=True,
        help="How the token reaches the meter: over its own connection (4G, Bluetooth, "
        "collector), typed on its keypad, or written to its IC card.",
    )
    token = fields.Char(
        readonly=True,
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="The token as the tenant types it or the meter receives it: whoever holds it "
        "can credit the meter once.",
    )
    token_reference = fields.Char(
        readonly=True, copy=False, help="Sequence number or token identifier (not secret)."
    )
    issued_at = fields.Datetime(readonly=True, copy=False)
    applied_at = fields.Datetime(readonly=True, copy=False)
    reason = fields.Char(readonly=True, copy=False, help="Why it is in its state.")

    _origin_uniq = models.UniqueIndex("(origin)", "A sale credits its meter once.")
    _amount_positive = models.Constraint("CHECK(amount > 0)", "A meter credit is positive.")

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.meter.credit") or "/"
        credits = super().create(vals_list)
        credits._issue_token()
        return credits

    @api.model
    def _vend(self, meter, amount, origin):
        """The credit of ``origin`` for ``meter`` (created once: a second call with the same
        origin returns the first record, R10). ``amount`` is a Decimal or text."""
        try:
            value = balance.money(amount, self.env._("The meter credit"))
        except balance.BalanceError as exc:
            raise UserError(error_text(self.env, exc, meter.company_id.currency_id)) from exc
        existing = self.sudo().search([("origin", "=", origin)], limit=1)
        if existing:
            if existing.meter_id != meter:
                raise UserError(self.env._("This sale already credited another meter."))
            return existing
        return self.sudo().create({"meter_id": meter.id, "amount": float(value), "origin": origin})

    def _issue_token(self):
        """Turn credits into tokens on their way to the meter: the gateway add-on does it;
        without it they stay *To Issue*."""
        return self

    def _mark_issued(self, reason):
        self.filtered(lambda c: c.state == "to_issue").write(
            {"state": "issued", "issued_at": fields.Datetime.now(), "reason": reason}
        )

    def _mark_applied(self, reason):
        """The meter applied the credit (its confirmation, or the reconciliation)."""
        todo = self.filtered(lambda c: c.state in ("to_issue", "issued"))
        todo.write({"state": "applied", "applied_at": fields.Datetime.now(), "reason": reason})
        for credit in todo:
            credit.message_post(body=reason)
        return todo

    def _cancel_blocker(self):
        """Why this credit can no longer be cancelled, or None: a credit that may already
        have reached the meter cannot be taken back by cancelling it."""
        self.ensure_one()
        if self.state == "to_issue":
            return None
        if self.state in ("applied", "cancelled"):
            return self.env._("Credit %(name)s is already applied or cancelled.", name=self.name)
        return self.env._(
            "The token of %(name)s may already be on its way to the meter: take the credit "
            "back with a clear-credit token instead (see the meter's management tokens).",
            name=self.name,
        )

    def action_cancel(self):
        """Cancel credits not applied yet; they are never applied afterwards."""
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise UserError(self.env._("Only managers cancel a meter credit."))
        for credit in self:
            blocker = credit._cancel_blocker()
            if blocker:
                raise UserError(blocker)
        reason = self.env._("Cancelled by %(user)s.", user=self.env.user.name)
        self._cancel(reason)
        return True

    def _cancel(self, reason):
        self.write({"state": "cancelled", "reason": reason})
        for credit in self:
            credit.message_post(body=reason)

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(self.env._("Meter credits are kept: cancel one instead."))

    def _token_groups(self):
        """The token as printed: digits in groups of four (4-4-4-4-4 for 20 digits)."""
        self.ensure_one()
        token = self.sudo().token or ""
        if not token.isdigit():
            return token
        return " ".join(token[i : i + 4] for i in range(0, len(token), 4))
