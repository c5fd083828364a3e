import logging
from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_core import balance

from ..const import POSTPAID_OVERDUE, POSTPAID_PAID

_logger = logging.getLogger(__name__)

#: ledger reference of what paid a postpaid invoice (then its id)
INVOICE_REFERENCE = "account.move,"
BILLING_TYPES = [("prepaid", "Prepaid"), ("postpaid", "Postpaid")]


class PrepaidAccount(models.Model):
    """B14: a postpaid account is charged by the same deduction run as a prepaid one (same
    prices, ledger lines), but its balance may go below zero without any alarm or cut: the
    consumption of each billing period is a customer invoice with the tenant's payment
    terms, and supply is cut only by the overdue policy (days past the due date of the
    oldest unpaid invoice, per tariff or company), and restored when it is paid."""

    _inherit = "prepaid.account"

    billing_type = fields.Selection(
        BILLING_TYPES,
        string="Billing",
        default="prepaid",
        required=True,
        tracking=True,
        help="Prepaid: consumption is paid in advance, supply is cut when the credit is used "
        "up. Postpaid: consumption is invoiced on the billing day with a due date; supply is "
        "cut only when an invoice is overdue beyond the policy.",
    )
    postpaid_overdue_invoice_id = fields.Many2one(
        "account.move",
        string="Overdue Invoice",
        readonly=True,
        copy=False,
        help="The oldest unpaid invoice, overdue beyond the policy: supply is cut until it "
        "is paid.",
    )

    @api.constrains("billing_type", "company_id")
    def _check_postpaid_invoicing(self):
        for account in self.filtered(lambda a: a.billing_type == "postpaid"):
            if not account.company_id.sudo().prepaid_accounting:
                raise ValidationError(
                    self.env._(
                        "%(account)s: a postpaid account needs its company to record payments "
                        "and invoice consumption.",
                        account=account.display_name,
                    )
                )

    def write(self, vals):
        res = super().write(vals)
        if "billing_type" in vals:
            # the balance decides supply (prepaid) or does not (postpaid)
            self.meter_ids._evaluate_alarms()
        return res

    def _taxes_may_be_added(self):
        """A postpaid invoice may add taxes to the prices charged: the tenant pays it."""
        return self.billing_type == "postpaid" or super()._taxes_may_be_added()

    # === OVERDUE POLICY === #
    def _postpaid_cut_days(self):
        """Days past due after which supply is cut: the tariff's, else the company's; 0:
        never."""
        self.ensure_one()
        return self.tariff_id.postpaid_cut_days or self.company_id.prepaid_postpaid_cut_days

    def _postpaid_overdue_invoices(self, today):
        """{account: its oldest unpaid invoice overdue beyond its policy} of ``self``."""
        moves = (
            self.env["account.move"]
            .sudo()
            .search(
                [
                    *self.env["account.move"]._prepaid_unpaid_domain(self),
                    ("invoice_date_due", "<", today),
                ],
                order="invoice_date_due, id",
            )
        )
        overdue = {}
        for move in moves:
            account = move.prepaid_account_id
            days = account._postpaid_cut_days()
            if account in overdue or not days:
                continue
            if move.invoice_date_due + timedelta(days=days) < today:
                overdue[account] = move
        return overdue

    def _postpaid_update_overdue(self, today=None):
        """Set each postpaid account's overdue invoice (or clear it) and let its meters'
        alarm machine queue the cut or the restore; the accounts whose state changed."""
        today = today or fields.Date.context_today(self)
        accounts = self.sudo().filtered(
            lambda a: a.billing_type == "postpaid" and a.state == "open"
        )
        overdue = accounts._postpaid_overdue_invoices(today)
        changed = self.browse()
        for account in accounts:
            invoice = overdue.get(account, self.env["account.move"])
            if invoice == account.postpaid_overdue_invoice_id:
                continue
            account.postpaid_overdue_invoice_id = invoice
            account.message_post(body=account._postpaid_supply_message(invoice))
            changed |= account
        changed.meter_ids._evaluate_alarms()
        return changed

    def _notice_text(self, notice, partner):
        if notice.kind in (POSTPAID_OVERDUE, POSTPAID_PAID):  # in the tenant's language
            account = self.with_context(lang=partner.lang or self.env.lang)
            return account._postpaid_notice_text(notice.kind)
        return super()._notice_text(notice, partner)

    @api.model
    def _postpaid_notice_text(self, kind):
        """The overdue policy's notice ``kind`` in this environment's language."""
        if kind == POSTPAID_OVERDUE:
            return self.env._(
                "Supply cut: an invoice is overdue. It comes back on when it is paid."
            )
        return self.env._("The overdue invoice is paid: supply is restored.")

    def _postpaid_supply_message(self, invoice):
        if invoice:
            return self.env._(
                "Invoice %(invoice)s is overdue since %(due)s: supply is cut until it is paid.",
                invoice=invoice._get_html_link(),
                due=invoice.invoice_date_due,
            )
        return self.env._("No invoice is overdue any more: supply is restored.")

    @api.model
    def _cron_postpaid_overdue(self, today=None):
        """Scheduled: apply the overdue policy to every open postpaid account."""
        accounts = self.search([("billing_type", "=", "postpaid"), ("state", "=", "open")])
        return accounts._postpaid_update_overdue(today)

    # === PAYMENTS === #
    def _postpaid_credit_payment(self, invoice):
        """What paid ``invoice`` other than the account's own recharges (the invoice's
        *Register Payment*, a bank statement) is credited to the ledger once, for the part
        of the invoice that bills consumption (taxes added to it are not the ledger's);
        the payments are linked to the account."""
        self.ensure_one()
        reference = f"{INVOICE_REFERENCE}{invoice.id}"
        paid, payments = self._postpaid_paid_outside(invoice)
        if not paid or self.env["prepaid.account.line"].sudo().search_count(
            [("reference", "=", reference)], limit=1
        ):
            return self.env["prepaid.account.line"]
        lines = invoice.invoice_line_ids
        billed = Decimal(f"{sum(lines.mapped(lambda ln: ln._prepaid_billed_amount())):.2f}")
        total = Decimal(f"{invoice.amount_total:.2f}")
        credited = (Decimal(f"{paid:.2f}") * billed / total).quantize(balance.MONEY_QUANTUM)
        self._lock_balance()
        payments.filtered(lambda p: not p.prepaid_account_id).write({"prepaid_account_id": self.id})
        memo = self.env._("Payment of invoice %(invoice)s", invoice=invoice.name)
        line = balance.LedgerLine(balance.RECHARGE, credited, memo)
        return self._post_lines(
            [line],
            payment_method="bank",
            reference=reference,
            payment_id=payments.id if len(payments) == 1 else False,
        )

    def _postpaid_paid_outside(self, invoice):
        """``(amount, payments)`` that paid ``invoice``, other than the account's
        prepayments (recharges already in the ledger) and credit notes."""
        receivable = invoice.line_ids.filtered(
            lambda line: line.account_id.account_type == "asset_receivable"
        )
        paid, payments = 0.0, self.env["account.payment"]
        for partial in receivable.matched_credit_ids:
            move = partial.credit_move_id.move_id
            payment = move.origin_payment_id
            if move.prepaid_account_id or self._is_prepayment(payment):
                continue
            paid += partial.amount
            payments |= payment
        return paid, payments

    @api.model
    def _is_prepayment(self, payment):
        """A payment the ledger has as a recharge or refund (not as an invoice's payment)."""
        return any(
            not (line.reference or "").startswith(INVOICE_REFERENCE)
            for line in payment.sudo().prepaid_line_ids
        )

    # === DEMO === #
    @api.model
    def _demo_postpaid(self, addresses):
        """Demo data: the accounts of the meters at ``addresses`` become postpaid (their
        consumption so far is invoiced as prepaid already), their tenants paying 30 days
        after each invoice."""
        meters = self.env["prepaid.meter"].search([("address", "in", list(addresses))])
        accounts = meters.account_id
        term = self.env.ref("account.account_payment_term_30days", raise_if_not_found=False)
        if term:
            accounts.partner_id.property_payment_term_id = term
        accounts.billing_type = "postpaid"
        return accounts
