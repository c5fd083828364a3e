from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_core import balance

RECEIVABLE = "asset_receivable"


class PrepaidAccount(models.Model):
    """B9: recharges and refunds are real customer payments in the landlord's accounting.

    A desk recharge creates and posts an inbound ``account.payment`` (partner: the tenant)
    in the journal collecting its payment method; an online recharge comes with the payment
    the payment module created, which is linked, never duplicated.  A refund is an outbound
    payment.  The payments stay as credits on the tenant's receivable (the prepayment) until
    consumption invoices use them up (:meth:`_reconcile_prepayments`)."""

    _inherit = "prepaid.account"

    payment_ids = fields.One2many("account.payment", "prepaid_account_id", string="Payments")
    payment_count = fields.Integer(compute="_compute_payment_count")

    @api.depends("payment_ids")
    def _compute_payment_count(self):
        for account in self:
            account.payment_count = len(account.sudo().payment_ids)

    def _prepaid_accounting(self):
        self.ensure_one()
        return self.company_id.sudo().prepaid_accounting

    def _currency_amount(self, amount):
        """``amount`` as an exact Decimal that the company currency can pay (whole cents)."""
        value = self._engine_call(balance.money, amount)
        currency = self.currency_id
        if value != value.quantize(Decimal(1).scaleb(-currency.decimal_places)):
            raise UserError(
                self.env._(
                    "%(amount)s cannot be paid in %(currency)s: use at most %(digits)s decimals.",
                    amount=value,
                    currency=currency.name,
                    digits=currency.decimal_places,
                )
            )
        return value

    # === RECHARGE AND REFUND === #
    def _recharge(
        self, amount, payment_method="cash", memo="", reference=None, payment=None, meter=None
    ):
        self.ensure_one()
        if payment:
            payment = payment.sudo()
            done = self._check_linked_payment(amount, payment, "inbound")
            if done:
                return done
            lines = super()._recharge(
                amount, payment_method, memo, reference, payment=payment, meter=meter
            )
            payment.prepaid_account_id = self
            self._reconcile_prepayments()
            return lines
        if not self._prepaid_accounting():
            return super()._recharge(amount, payment_method, memo, reference, meter=meter)
        self._check_open()
        if reference and self.env["prepaid.account.line"].sudo().search_count(
            [("reference", "=", reference)], limit=1
        ):
            return super()._recharge(amount, payment_method, memo, reference, meter=meter)
        value = self._currency_amount(amount)
        lines = super()._recharge(amount, payment_method, memo, reference, meter=meter)
        payment = self._create_prepaid_payment("inbound", value, payment_method, memo)
        lines.sudo().write({"payment_id": payment.id})
        self._reconcile_prepayments()
        return lines

    def _check_linked_payment(self, amount, payment, payment_type):
        """``payment`` may move ``amount`` of this account once: posted, received from
        (``inbound``: a recharge) or sent to (``outbound``: a refund) a customer, this
        company and currency, the same amount.  Returns the lines of a payment already
        booked (under a row lock on the payment, R1)."""
        self._check_open()
        payment.ensure_one()
        self.env.cr.execute("SELECT id FROM account_payment WHERE id = %s FOR UPDATE", [payment.id])
        done = self.env["prepaid.account.line"].sudo().search([("payment_id", "=", payment.id)])
        inbound = payment_type == "inbound"
        if done:
            if done.account_id != self:
                message = (
                    self.env._(
                        "Payment %(payment)s credited another account.", payment=payment.name
                    )
                    if inbound
                    else self.env._(
                        "Payment %(payment)s debited another account.", payment=payment.name
                    )
                )
                raise UserError(message)
            return done
        value = self._engine_call(balance.money, amount)
        problems = []
        if payment.state not in ("in_process", "paid"):
            problems.append(self.env._("it is not posted"))
        if payment.payment_type != payment_type or payment.partner_type != "customer":
            problems.append(
                self.env._("it is not a customer payment received")
                if inbound
                else self.env._("it is not a payment sent to a customer")
            )
        if payment.company_id != self.company_id:
            problems.append(self.env._("it belongs to another company"))
        if payment.currency_id != self.currency_id:
            problems.append(self.env._("it is in another currency"))
        if payment.currency_id.compare_amounts(payment.amount, float(value)):
            problems.append(
                self.env._(
                    "it is of %(paid)s, not %(amount)s",
                    paid=self._money_text(payment.amount),
                    amount=self._money_text(value),
                )
            )
        if payment.prepaid_account_id and payment.prepaid_account_id != self:
            problems.append(self.env._("it is for another prepaid account"))
        if problems:
            values = {
                "payment": payment.name,
                "account": self.display_name,
                "problems": ", ".join(problems),
            }
            raise UserError(
                self.env._(
                    "Payment %(payment)s cannot recharge %(account)s: %(problems)s.", **values
                )
                if inbound
                else self.env._(
                    "Payment %(payment)s cannot refund %(account)s: %(problems)s.", **values
                )
            )
        return done

    def _refund(self, amount, payment_method="cash", memo="", reference=None, payment=None):
        self.ensure_one()
        if payment:
            payment = payment.sudo()
            done = self._check_linked_payment(amount, payment, "outbound")
            if done:
                return done
            lines = super()._refund(amount, payment_method, memo, reference, payment=payment)
            payment.prepaid_account_id = self
            self._reconcile_prepayments()
            return lines
        if not self._prepaid_accounting():
            return super()._refund(amount, payment_method, memo, reference)
        self._check_open()
        if reference and self.env["prepaid.account.line"].sudo().search_count(
            [("reference", "=", reference), ("kind", "=", balance.REFUND)], limit=1
        ):
            return super()._refund(amount, payment_method, memo, reference)
        value = self._currency_amount(amount)
        lines = super()._refund(amount, payment_method, memo, reference)
        payment = self._create_prepaid_payment(
            "outbound", value, payment_method, memo or self.env._("Refund")
        )
        lines.sudo().write({"payment_id": payment.id})
        self._reconcile_prepayments()
        return lines

    # === PAYMENTS === #
    def _create_prepaid_payment(self, payment_type, amount, payment_method, memo=""):
        """Create and post the customer payment of a recharge (inbound) or refund (outbound)
        in the journal collecting ``payment_method``; always with a journal entry, so that
        invoices can be reconciled against it."""
        self.ensure_one()
        company = self.company_id.sudo()
        journal = company._prepaid_collecting_journal(payment_method)
        if not journal:
            raise UserError(
                self.env._(
                    "%(company)s has no cash or bank journal to record prepaid payments.",
                    company=company.display_name,
                )
            )
        method_lines = (
            journal.inbound_payment_method_line_ids
            if payment_type == "inbound"
            else journal.outbound_payment_method_line_ids
        )
        kind = self.env._("Recharge") if payment_type == "inbound" else self.env._("Refund")
        payment = (
            self.env["account.payment"]
            .sudo()
            .with_company(company)
            .with_context(force_payment_move=True)
            .create(
                {
                    "payment_type": payment_type,
                    "partner_type": "customer",
                    "partner_id": self.partner_id.id,
                    "amount": float(amount),
                    "currency_id": company.currency_id.id,
                    "journal_id": journal.id,
                    "company_id": company.id,
                    "payment_method_line_id": method_lines[:1].id,
                    "date": fields.Date.context_today(self),
                    "memo": f"{self.name} {kind}" + (f": {memo}" if memo else ""),
                    "prepaid_account_id": self.id,
                }
            )
        )
        payment.action_post()
        return payment

    def _reconcile_prepayments(self):
        """Match the tenant's open receivable lines of this account: invoices (debit) and
        refunds (debit) against recharges (credit), oldest first."""
        for account in self.sudo():
            moves = account.payment_ids.filtered(
                lambda p: p.state in ("in_process", "paid")
            ).move_id | self.env["account.move"].sudo().search(
                [("prepaid_account_id", "=", account.id), ("state", "=", "posted")]
            )
            lines = moves.line_ids.filtered(
                lambda line: (
                    line.account_id.account_type == RECEIVABLE
                    and line.account_id.reconcile
                    and not line.reconciled
                )
            )
            for receivable in lines.account_id:
                group = lines.filtered(lambda line, r=receivable: line.account_id == r)
                if any(line.balance > 0 for line in group) and any(
                    line.balance < 0 for line in group
                ):
                    group.reconcile()

    def action_view_payments(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("account.action_account_payments")
        action.update(
            domain=[("prepaid_account_id", "=", self.id)],
            context={"create": False, "search_default_partner_id": False},
        )
        return action
