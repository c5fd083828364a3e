from odoo import fields, models, tools

from ..const import PAYMENT_METHODS


class PrepaidSalesReport(models.Model):
    """B11: sales (recharges) and refunds, by day, month or year, site, operator and payment
    method, from the prepaid ledger (each recharge counted once with all its parts)."""

    _name = "prepaid.sales.report"
    _description = "Prepaid Sales Analysis"
    _auto = False
    _order = "date desc"
    _rec_name = "date"

    date = fields.Date(readonly=True)
    posted_at = fields.Datetime(readonly=True)
    company_id = fields.Many2one("res.company", string="Landlord", readonly=True)
    site_id = fields.Many2one("prepaid.site", readonly=True)
    building_id = fields.Many2one("prepaid.building", readonly=True)
    unit_id = fields.Many2one("prepaid.unit", readonly=True)
    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    user_id = fields.Many2one("res.users", string="Operator", readonly=True)
    payment_method = fields.Selection(PAYMENT_METHODS, readonly=True)
    movement = fields.Selection([("sale", "Sale"), ("refund", "Refund")], readonly=True)
    sales = fields.Float(digits=(16, 4), readonly=True)
    refunds = fields.Float(digits=(16, 4), readonly=True)
    net = fields.Float(digits=(16, 4), readonly=True, string="Net Sales")
    count = fields.Integer(readonly=True, string="Movements")

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE OR REPLACE VIEW {self._table} AS (
            SELECT MIN(l.id) AS id, l.date, MIN(l.posted_at) AS posted_at, l.company_id,
                   t.site_id, t.building_id, t.unit_id, l.account_id, a.partner_id,
                   l.user_id, l.payment_method,
                   CASE WHEN l.kind = 'refund' THEN 'refund' ELSE 'sale' END AS movement,
                   SUM(l.amount) FILTER (WHERE l.kind != 'refund') AS sales,
                   -SUM(l.amount) FILTER (WHERE l.kind = 'refund') AS refunds,
                   SUM(l.amount) AS net,
                   1 AS count
              FROM prepaid_account_line l
              JOIN prepaid_account a ON a.id = l.account_id
              JOIN prepaid_tenancy t ON t.id = a.tenancy_id
             WHERE l.kind IN ('recharge', 'preset_credit', 'overdraft_repayment', 'refund')
             GROUP BY l.date, l.company_id, t.site_id, t.building_id, t.unit_id, l.account_id,
                      a.partner_id, l.user_id, l.payment_method,
                      CASE WHEN l.kind = 'refund' THEN 'refund' ELSE 'sale' END,
                      -- one movement: the parts of one recharge (its payment, its reference,
                      -- or its posting)
                      COALESCE(l.payment_id::text, l.reference, l.posted_at::text)
            )
            """
        )
