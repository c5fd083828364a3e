from odoo import fields, models, tools


class PrepaidArrearsReport(models.Model):
    """B11: accounts in arrears: a negative balance (overdraft or preset credit in use), or
    an amount owed at cancellation."""

    _name = "prepaid.arrears.report"
    _description = "Prepaid Arrears"
    _auto = False
    _order = "debt desc"
    _rec_name = "account_id"

    account_id = fields.Many2one("prepaid.account", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Tenant", readonly=True)
    company_id = fields.Many2one("res.company", string="Landlord", readonly=True)
    site_id = fields.Many2one("prepaid.site", readonly=True)
    building_id = fields.Many2one("prepaid.building", readonly=True)
    unit_id = fields.Many2one("prepaid.unit", readonly=True)
    state = fields.Selection([("open", "Open"), ("closed", "Closed")], readonly=True)
    balance = fields.Float(digits=(16, 4), readonly=True)
    overdraft_limit = fields.Float(digits=(16, 4), readonly=True, aggregator=False)
    debt = fields.Float(digits=(16, 4), readonly=True, help="What the tenant owes.")
    last_recharge_at = fields.Datetime(readonly=True, aggregator=False)
    days_since_recharge = fields.Integer(readonly=True, aggregator="max")
    meters_cut = fields.Integer(readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""
            CREATE OR REPLACE VIEW {self._table} AS (
            SELECT a.id, a.id AS account_id, a.partner_id, a.company_id, t.site_id,
                   t.building_id, t.unit_id, a.state, a.balance,
                   COALESCE(a.overdraft_limit, 0) AS overdraft_limit,
                   CASE WHEN a.state = 'closed' THEN COALESCE(a.closing_due, 0)
                        ELSE -a.balance END AS debt,
                   a.last_recharge_at,
                   (CURRENT_DATE - COALESCE(a.last_recharge_at::date, t.date_start))::int
                       AS days_since_recharge,
                   (SELECT COUNT(*) FROM prepaid_meter m
                     WHERE m.unit_id = t.unit_id AND m.state = 'in_service'
                       AND m.desired_relay_state = 'off')::int AS meters_cut
              FROM prepaid_account a
              JOIN prepaid_tenancy t ON t.id = a.tenancy_id
             WHERE (a.state = 'open' AND a.balance < 0)
                OR (a.state = 'closed' AND a.closing_due > 0)
            )
            """
        )
