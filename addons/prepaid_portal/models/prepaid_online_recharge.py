import logging
from decimal import Decimal
from functools import partial

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import float_compare, format_amount

from odoo.addons.prepaid_meter.utils import schedule_manager_activity

from ..const import ONLINE_RECHARGE_KINDS, ONLINE_RECHARGE_STATES

_logger = logging.getLogger(__name__)


class PrepaidOnlineRecharge(models.Model):
    """T4: a recharge a tenant started in the portal, from checkout to credit.

    Created with the payment transaction, it carries the meter and its prepaid account
    chosen at checkout (R5: nothing is matched later by free text) and what the transaction
    must bring (amount, currency, reference).  When the transaction is done, its
    post-processing credits the account once (R1: row lock here, unique ledger reference in
    prepaid_billing); a payment that does not match credits nothing and stays here as a
    conflict for an operator (R3); a credit that fails stays visible and is retried (R4).

    A refund the payment provider made of such a payment (a ``refund`` transaction) is kept
    here too, as kind ``refund``: it debits the account once, or, when the credit was used
    already, debits nothing and stays as a conflict for an operator."""

    _name = "prepaid.online.recharge"
    _description = "Online Recharge"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(string="Reference", required=True, readonly=True, index=True)
    kind = fields.Selection(
        ONLINE_RECHARGE_KINDS, default="recharge", required=True, readonly=True, index=True
    )
    refunded_recharge_id = fields.Many2one(
        "prepaid.online.recharge",
        readonly=True,
        index="btree_not_null",
        string="Refund Of",
        help="The online recharge whose payment the provider refunded.",
    )
    refund_ids = fields.One2many("prepaid.online.recharge", "refunded_recharge_id")
    meter_id = fields.Many2one(
        "prepaid.meter", required=True, readonly=True, index=True, check_company=True
    )
    account_id = fields.Many2one(
        "prepaid.account", required=True, readonly=True, index=True, check_company=True
    )
    partner_id = fields.Many2one("res.partner", string="Paid By", readonly=True)
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    amount = fields.Monetary(required=True, readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    transaction_id = fields.Many2one("payment.transaction", readonly=True, index=True, copy=False)
    transaction_state = fields.Selection(related="transaction_id.state", string="Payment State")
    provider_code = fields.Selection(related="transaction_id.provider_code")
    payment_id = fields.Many2one(related="transaction_id.payment_id")
    state = fields.Selection(
        ONLINE_RECHARGE_STATES, default="pending", required=True, readonly=True, tracking=True
    )
    problem = fields.Text(readonly=True, help="Why the payment was not credited.")
    attempt_count = fields.Integer(readonly=True, help="Credit attempts that failed.")
    credited_at = fields.Datetime(readonly=True, string="Credited/Debited At")
    line_ids = fields.One2many(
        "prepaid.account.line",
        compute="_compute_line_ids",
        string="Ledger Lines",
        help="Lines of the ledger this recharge credited.",
    )

    _transaction_uniq = models.UniqueIndex(
        "(transaction_id) WHERE transaction_id IS NOT NULL",
        "A payment transaction pays one recharge.",
    )

    def _compute_line_ids(self):
        lines = self.env["prepaid.account.line"].sudo()
        for recharge in self:
            recharge.line_ids = (
                lines.search([("reference", "=", recharge.name)]) if recharge.name else lines
            )

    # === CREDIT (R1-R5) === #
    def _check_payment(self, tx):
        """What is wrong with ``tx`` as payment of this recharge (R3), or None."""
        self.ensure_one()
        if tx != self.transaction_id or tx.prepaid_recharge_id != self:
            return self.env._("The payment is not the one of this recharge.")
        if tx.reference != self.name:
            return self.env._(
                "Reference mismatch: the payment says %(got)s, the recharge %(expected)s.",
                got=tx.reference,
                expected=self.name,
            )
        if tx.currency_id != self.currency_id or self.currency_id != self.account_id.currency_id:
            return self.env._(
                "Currency mismatch: paid in %(got)s, the account is kept in %(expected)s.",
                got=tx.currency_id.name,
                expected=self.account_id.currency_id.name,
            )
        if float_compare(tx.amount, self.amount, precision_rounding=self.currency_id.rounding):
            return self.env._(
                "Amount mismatch: %(got)s paid, %(expected)s expected.",
                got=tx.amount,
                expected=self.amount,
            )
        if self.meter_id.account_id != self.account_id:
            return self.env._(
                "The meter %(meter)s no longer draws on account %(account)s.",
                meter=self.meter_id.display_name,
                account=self.account_id.display_name,
            )
        return None

    def _credit(self):
        """Credit the done payment of each recharge to its account, once.  Return the
        recharges that could not be credited now (their transaction must be tried again)."""
        retry = self.browse()
        for recharge in self:
            # concurrent post-processings of one payment queue here; under REPEATABLE READ the
            # later one fails to serialize and is retried by its caller, then sees 'credited'
            self.env.cr.execute(
                "SELECT state FROM prepaid_online_recharge WHERE id = %s FOR UPDATE",
                [recharge.id],
            )
            if self.env.cr.fetchone()[0] in ("credited", "conflict"):
                continue
            recharge.invalidate_recordset()
            tx = recharge.transaction_id
            problem = recharge._check_payment(tx)
            if problem:
                recharge._set_conflict(problem)
                continue
            memo = self.env._(
                "Online recharge %(ref)s for %(meter)s",
                ref=tx.reference,
                meter=recharge.meter_id.name,
            )
            credit = partial(recharge.account_id.sudo()._recharge, meter=recharge.meter_id)
            lines = recharge._book(credit, tx, memo)
            if lines is None:
                retry |= recharge
                continue
            recharge.write(
                {"state": "credited", "problem": False, "credited_at": fields.Datetime.now()}
            )
            recharge.message_post(
                body=self.env._(
                    "Credited %(amount)s to account %(account)s (%(count)s ledger lines).",
                    amount=format_amount(self.env, tx.amount, tx.currency_id),
                    account=recharge.account_id.display_name,
                    count=len(lines),
                )
            )
        return retry

    def _book(self, move, tx, memo):
        """``move`` (the account's ``_recharge`` or ``_refund``) of the payment ``tx``, in a
        savepoint; the ledger lines, or None when it failed: the failure is kept on the
        record, and a later run tries again (R4)."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                return move(
                    self._decimal_amount(tx),
                    payment_method="online",
                    memo=memo,
                    reference=tx.reference,
                    payment=tx.payment_id,
                )
        except Exception as exc:  # any failure leaves it to retry
            _logger.warning("Online %s %s not booked: %s", self.kind, self.name, exc)
            self.write(
                {"state": "failed", "problem": str(exc), "attempt_count": self.attempt_count + 1}
            )
            return None

    def _set_conflict(self, problem):
        """R3: credit nothing; an operator decides (activity on the recharge)."""
        self.ensure_one()
        _logger.warning("Online recharge %s is in conflict: %s", self.name, problem)
        self.write({"state": "conflict", "problem": problem})
        self.message_post(body=problem)
        schedule_manager_activity(self, lambda env: (env._("Online payment in conflict"), problem))

    def _set_canceled(self):
        self.filtered(lambda r: r.state == "pending").write({"state": "canceled"})

    # === PROVIDER REFUNDS === #
    @api.model
    def _from_refund_transaction(self, tx):
        """The refund record of the provider refund ``tx`` (created once, under a lock on
        the recharge refunded), or an empty recordset when ``tx`` refunds no recharge."""
        recharge = tx.source_transaction_id.prepaid_recharge_id
        if tx.operation != "refund" or not recharge or recharge.kind != "recharge":
            return self.browse()
        self.env.cr.execute(
            "SELECT id FROM prepaid_online_recharge WHERE id = %s FOR UPDATE", [recharge.id]
        )
        refund = self.search([("transaction_id", "=", tx.id)], limit=1)
        if refund:
            return refund
        return self.create(
            {
                "name": tx.reference,
                "kind": "refund",
                "refunded_recharge_id": recharge.id,
                "meter_id": recharge.meter_id.id,
                "account_id": recharge.account_id.id,
                "partner_id": recharge.partner_id.id,
                "amount": -tx.amount,
                "currency_id": tx.currency_id.id,
                "transaction_id": tx.id,
            }
        )

    def _check_refund(self, tx):
        """What forbids debiting the provider refund ``tx`` (R3), or None."""
        self.ensure_one()
        recharge = self.refunded_recharge_id
        if tx != self.transaction_id or tx.source_transaction_id != recharge.transaction_id:
            return self.env._("The refund is not one of the recharge's payment.")
        if recharge.state != "credited":
            return self.env._(
                "The refunded recharge %(ref)s was never credited: nothing to take back.",
                ref=recharge.name,
            )
        if tx.currency_id != self.account_id.currency_id:
            return self.env._(
                "Currency mismatch: refunded in %(got)s, the account is kept in %(expected)s.",
                got=tx.currency_id.name,
                expected=self.account_id.currency_id.name,
            )
        if self.account_id.state != "open":
            return self.env._(
                "Account %(account)s is closed: the refund is settled by hand.",
                account=self.account_id.display_name,
            )
        balance, _preset = self.account_id.sudo()._lock_balance()
        if balance < self._decimal_amount(tx):
            return self.env._(
                "The credit was used already: the provider refunded %(amount)s, the balance "
                "is %(balance)s. Nothing was debited; settle it with the tenant.",
                amount=self.account_id._money_text(self._decimal_amount(tx)),
                balance=self.account_id._money_text(balance),
            )
        return None

    @staticmethod
    def _decimal_amount(tx):
        return Decimal(f"{abs(tx.amount):.{tx.currency_id.decimal_places}f}")

    def _debit(self, retry_conflict=False):
        """Debit each done provider refund from its account, once.  Return the refunds that
        could not be debited now (their transaction must be tried again, R4)."""
        retry = self.browse()
        for refund in self:
            self.env.cr.execute(
                "SELECT state FROM prepaid_online_recharge WHERE id = %s FOR UPDATE", [refund.id]
            )
            state = self.env.cr.fetchone()[0]
            if state == "debited" or (state == "conflict" and not retry_conflict):
                continue
            refund.invalidate_recordset()
            tx = refund.transaction_id
            problem = refund._check_refund(tx)
            if problem:
                if state != "conflict":
                    refund._set_conflict(problem)
                else:
                    refund.problem = problem
                continue
            memo = self.env._(
                "Provider refund %(ref)s of %(recharge)s",
                ref=tx.reference,
                recharge=refund.refunded_recharge_id.name,
            )
            lines = refund._book(refund.account_id.sudo()._refund, tx, memo)
            if lines is None:
                retry |= refund
                continue
            refund.write(
                {"state": "debited", "problem": False, "credited_at": fields.Datetime.now()}
            )
            refund.activity_ids.action_done()
            refund.message_post(
                body=self.env._(
                    "Debited %(amount)s from account %(account)s (%(count)s ledger lines).",
                    amount=refund.account_id._money_text(self._decimal_amount(tx)),
                    account=refund.account_id.display_name,
                    count=len(lines),
                )
            )
        return retry

    def action_retry_debit(self):
        """Try a provider refund in conflict again (e.g. once the tenant recharged): it is
        debited if the balance now covers it, else stays in conflict."""
        self.check_access("write")
        self.filtered(lambda r: r.kind == "refund" and r.state == "conflict")._debit(
            retry_conflict=True
        )
        return True

    # === ACTIONS === #
    def action_retry_credit(self):
        """Try again to credit recharges whose credit failed (R4)."""
        for recharge in self.filtered(lambda r: r.state == "failed"):
            tx = recharge.transaction_id.sudo()
            if tx.state == "done":
                tx._post_process()
        return True

    def action_confirm_transfer(self):
        """The accountant saw the tenant's wire transfer on the bank account: its pending
        transaction (``payment_custom``, which never confirms by itself) is done, and its
        post-processing credits the recharge once (R1)."""
        if not self.env.user.has_group("account.group_account_invoice"):
            raise AccessError(self.env._("Only an accountant confirms a received transfer."))
        for recharge in self:
            tx = recharge.transaction_id.sudo()
            if recharge.kind != "recharge" or tx.provider_code != "custom":
                raise UserError(
                    self.env._("%(ref)s was not paid by wire transfer.", ref=recharge.name)
                )
            if tx.state != "pending":
                continue  # confirmed already, or never sent: nothing to confirm
            tx._set_done(
                state_message=self.env._(
                    "Transfer received, confirmed by %(user)s.", user=self.env.user.name
                )
            )
            tx._post_process()
        return True

    @api.model
    def _cron_retry_failed(self):
        """Recharges paid but not credited are tried again (Odoo's own post-processing
        action retries only for four days)."""
        self.search([("state", "=", "failed")]).action_retry_credit()

    def action_view_transaction(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "payment.transaction",
            "view_mode": "form",
            "res_id": self.transaction_id.id,
        }
