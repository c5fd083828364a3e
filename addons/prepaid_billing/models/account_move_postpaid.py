from odoo import api, fields, models


class AccountMove(models.Model):
    """B14: the invoice of one billing period of a prepaid or postpaid account: a period is
    invoiced once (a unique index, whatever runs the scheduled action twice); a postpaid
    invoice paid credits the account's ledger with what was paid outside it."""

    _inherit = "account.move"

    prepaid_period = fields.Date(
        string="Billing Period",
        readonly=True,
        copy=False,
        help="The billing day this invoice closes: one invoice per account and period.",
    )

    _prepaid_period_uniq = models.UniqueIndex(
        "(prepaid_account_id, prepaid_period) WHERE prepaid_period IS NOT NULL "
        "AND state != 'cancel'",
        "A billing period of a prepaid account is invoiced once.",
    )

    def _invoice_paid_hook(self):
        res = super()._invoice_paid_hook()
        self._prepaid_postpaid_paid()
        return res

    def _prepaid_postpaid_paid(self):
        """Postpaid invoices paid: their payments enter the ledger, supply comes back."""
        invoices = self.sudo().filtered(
            lambda m: (
                m.prepaid_account_id.billing_type == "postpaid" and m.move_type == "out_invoice"
            )
        )
        for invoice in invoices:
            invoice.prepaid_account_id._postpaid_credit_payment(invoice)
        invoices.prepaid_account_id._postpaid_update_overdue()

    @api.model
    def _prepaid_unpaid_domain(self, accounts):
        """Posted postpaid consumption invoices of ``accounts`` not paid in full."""
        return [
            ("prepaid_account_id", "in", accounts.ids),
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("payment_state", "in", ("not_paid", "partial")),
        ]
