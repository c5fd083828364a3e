from odoo import fields, models

JOURNAL_DOMAIN = "[('type', 'in', ('bank', 'cash', 'credit')), ('company_id', 'in', [id, False])]"


class ResCompany(models.Model):
    """B9: how a landlord (a company) records prepaid money in its accounting."""

    _inherit = "res.company"

    prepaid_accounting = fields.Boolean(
        help="Recharges and refunds at the desk are customer payments, consumption is "
        "invoiced.  Off: the prepaid ledger only (online payments are still linked).",
    )
    prepaid_journal_cash_id = fields.Many2one(
        "account.journal", string="Cash Recharges Journal", domain=JOURNAL_DOMAIN
    )
    prepaid_journal_bank_id = fields.Many2one(
        "account.journal", string="Bank Transfer Recharges Journal", domain=JOURNAL_DOMAIN
    )
    prepaid_journal_card_id = fields.Many2one(
        "account.journal", string="Card Recharges Journal", domain=JOURNAL_DOMAIN
    )
    prepaid_journal_online_id = fields.Many2one(
        "account.journal",
        string="Online Recharges Journal",
        domain=JOURNAL_DOMAIN,
        help="Used for online recharges recorded without a payment of the payment module.",
    )
    prepaid_sale_journal_id = fields.Many2one(
        "account.journal",
        string="Consumption Invoices Journal",
        domain="[('type', '=', 'sale'), ('company_id', 'in', [id, False])]",
    )
    prepaid_meter_balance_tolerance = fields.Float(
        string="Meter Balance Tolerance",
        digits=(16, 4),
        default=1.0,
        help="A meter that keeps its own balance is flagged when the balance it reports "
        "differs from the credit sold to it minus the consumption charged by more than this "
        "(and tokens not entered yet do not explain it).",
    )
    prepaid_product_ids = fields.One2many(
        "prepaid.consumption.product", "company_id", string="Consumption Products"
    )

    def _prepaid_collecting_journal(self, payment_method):
        """The journal that collects recharges paid by ``payment_method`` (desk or online):
        the one configured, else the company's first cash journal for cash and its first
        bank journal for the others."""
        self.ensure_one()
        journal = self[f"prepaid_journal_{payment_method}_id"]
        if journal:
            return journal
        journals = (
            self.env["account.journal"]
            .sudo()
            .search(
                [
                    *self.env["account.journal"]._check_company_domain(self),
                    ("type", "in", ("cash", "bank")),
                ]
            )
        )
        preferred = "cash" if payment_method == "cash" else "bank"
        return journals.filtered(lambda j: j.type == preferred)[:1] or journals[:1]

    def _prepaid_sale_journal(self):
        self.ensure_one()
        return self.prepaid_sale_journal_id or self.env["account.journal"].sudo().search(
            [*self.env["account.journal"]._check_company_domain(self), ("type", "=", "sale")],
            limit=1,
        )
