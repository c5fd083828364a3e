from odoo import fields, models, tools


class PrepaidAgreementReport(models.Model):
    """B9: proof that prepaid balances agree with the accounting, per account (tenant) and in
    total.  From the accounting: payments received and refunds paid (``account.payment``
    linked to the account), consumption invoiced (posted invoices less credit notes); from
    the ledger: consumption charged and not invoiced yet, adjustments and transfers.

    ``payments - refunds - invoiced - not invoiced + adjustments = expected balance``, and
    ``difference = balance - expected balance`` is zero unless the ledger or the balance
    was changed behind the accounting's back (``ledger difference`` shows a balance that is
    not the sum of its ledger).

    Only companies that keep their prepaid money in the accounting (*Prepaid Accounting*)
    are listed: a ledger-only landlord has no accounting to agree with."""

    _name = "prepaid.agreement.report"
    _description = "Prepaid Balances Agreement"
    _auto = False
    _order = "difference desc, account_id"
    _rec_name = "account_id"

    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    site_id = fields.Many2one("prepaid.site", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    state = fields.Selection([("open", "Open"), ("closed", "Closed")], readonly=True)
    payments = fields.Monetary(readonly=True, string="Payments Received")
    refunds = fields.Monetary(readonly=True, string="Refunds Paid")
    invoiced = fields.Monetary(readonly=True, string="Consumption Invoiced")
    not_invoiced = fields.Float(
        digits=(16, 4), readonly=True, string="Consumption Not Yet Invoiced"
    )
    adjustments = fields.Float(digits=(16, 4), readonly=True, string="Adjustments & Transfers")
    expected_balance = fields.Float(digits=(16, 4), readonly=True)
    balance = fields.Float(digits=(16, 4), readonly=True)
    difference = fields.Float(digits=(16, 4), readonly=True)
    ledger_sum = fields.Float(digits=(16, 4), readonly=True, string="Sum of Ledger")
    ledger_difference = fields.Float(digits=(16, 4), readonly=True)
    agrees = fields.Boolean(readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE OR REPLACE VIEW {self._table} AS (
            WITH pay AS (
                SELECT p.prepaid_account_id AS account_id,
                       SUM(p.amount) FILTER (WHERE p.payment_type = 'inbound') AS paid_in,
                       SUM(p.amount) FILTER (WHERE p.payment_type = 'outbound') AS paid_out
                  FROM account_payment p
                 WHERE p.prepaid_account_id IS NOT NULL AND p.state IN ('in_process', 'paid')
                 GROUP BY p.prepaid_account_id
            ), inv AS (
                SELECT m.prepaid_account_id AS account_id,
                       SUM(CASE WHEN m.move_type = 'out_refund' THEN -m.amount_total
                                ELSE m.amount_total END) AS invoiced
                  FROM account_move m
                 WHERE m.prepaid_account_id IS NOT NULL AND m.state = 'posted'
                   AND m.move_type IN ('out_invoice', 'out_refund')
                 GROUP BY m.prepaid_account_id
            ), led AS (
                SELECT l.account_id,
                       SUM(l.amount) AS ledger_sum,
                       -SUM(l.amount) FILTER (
                           WHERE l.kind IN ('deduction', 'fixed_charge', 'common_area')
                              OR l.invoice_rounding) AS consumed,
                       SUM(l.amount) FILTER (
                           WHERE l.kind IN ('adjustment', 'transfer')
                             AND l.invoice_rounding IS NOT TRUE) AS adjustments
                  FROM prepaid_account_line l
                 GROUP BY l.account_id
            ), agg AS (
                SELECT a.id, a.partner_id, a.company_id, t.site_id, c.currency_id, a.state,
                       COALESCE(pay.paid_in, 0) AS payments,
                       COALESCE(pay.paid_out, 0) AS refunds,
                       COALESCE(inv.invoiced, 0) AS invoiced,
                       COALESCE(led.consumed, 0) - COALESCE(inv.invoiced, 0) AS not_invoiced,
                       COALESCE(led.adjustments, 0) AS adjustments,
                       COALESCE(pay.paid_in, 0) - COALESCE(pay.paid_out, 0)
                           - COALESCE(led.consumed, 0) + COALESCE(led.adjustments, 0)
                           AS expected_balance,
                       COALESCE(a.balance, 0) AS balance,
                       COALESCE(led.ledger_sum, 0) AS ledger_sum
                  FROM prepaid_account a
                  JOIN prepaid_tenancy t ON t.id = a.tenancy_id
                  JOIN res_company c ON c.id = a.company_id
                  LEFT JOIN pay ON pay.account_id = a.id
                  LEFT JOIN inv ON inv.account_id = a.id
                  LEFT JOIN led ON led.account_id = a.id
                 WHERE c.prepaid_accounting
            )
            SELECT id, id AS account_id, partner_id, company_id, site_id, currency_id, state,
                   payments, refunds, invoiced, not_invoiced, adjustments, expected_balance,
                   balance, balance - expected_balance AS difference, ledger_sum,
                   balance - ledger_sum AS ledger_difference,
                   (balance = expected_balance AND balance = ledger_sum) AS agrees
              FROM agg
            )
            """
        )
