from odoo import fields, models, tools


class PrepaidIncomeReport(models.Model):
    """B11: the landlords' income from prepaid consumption: the lines of the posted
    consumption invoices (credit notes negative), untaxed, taxes and total, by product."""

    _name = "prepaid.income.report"
    _description = "Landlord Income Analysis"
    _auto = False
    _order = "date desc"
    _rec_name = "date"

    date = fields.Date(readonly=True, string="Invoice Date")
    company_id = fields.Many2one("res.company", string="Landlord", readonly=True)
    site_id = fields.Many2one("prepaid.site", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    move_id = fields.Many2one("account.move", string="Invoice", readonly=True)
    product_id = fields.Many2one("product.product", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    quantity = fields.Float(digits=(16, 3), readonly=True, string="Consumption")
    untaxed = fields.Monetary(readonly=True, string="Income (untaxed)")
    tax = fields.Monetary(readonly=True, string="Taxes")
    total = fields.Monetary(readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE OR REPLACE VIEW {self._table} AS (
            SELECT l.id, m.invoice_date AS date, m.company_id, t.site_id,
                   m.prepaid_account_id AS account_id, m.partner_id, m.id AS move_id,
                   l.product_id, m.currency_id,
                   sign * COALESCE(l.prepaid_quantity, 0) AS quantity,
                   sign * l.price_subtotal AS untaxed,
                   sign * (l.price_total - l.price_subtotal) AS tax,
                   sign * l.price_total AS total
              FROM account_move_line l
              JOIN account_move m ON m.id = l.move_id
              JOIN prepaid_account a ON a.id = m.prepaid_account_id
              JOIN prepaid_tenancy t ON t.id = a.tenancy_id
              CROSS JOIN LATERAL (
                  SELECT CASE WHEN m.move_type = 'out_refund' THEN -1 ELSE 1 END AS sign) s
             WHERE m.state = 'posted' AND l.display_type = 'product'
            )
            """
        )
