from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError


class PrepaidTenancy(models.Model):
    """M4: a tenant's account on a unit, from opening to cancellation.

    One household may have several meters: all meters of the unit supply the tenancy.
    prepaid_billing hangs the prepaid account (balance, ledger) on it.
    """

    _name = "prepaid.tenancy"
    _description = "Tenancy"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date_start desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Account Number", required=True, copy=False, readonly=True, default="/"
    )
    partner_id = fields.Many2one(
        "res.partner", string="Tenant", required=True, index=True, tracking=True
    )
    phone = fields.Char(related="partner_id.phone")
    email = fields.Char(related="partner_id.email")
    unit_id = fields.Many2one(
        "prepaid.unit", required=True, index=True, tracking=True, check_company=True
    )
    building_id = fields.Many2one(related="unit_id.building_id", store=True)
    site_id = fields.Many2one(related="unit_id.site_id", store=True, index=True)
    company_id = fields.Many2one(related="unit_id.company_id", store=True, index=True)
    meter_ids = fields.Many2many("prepaid.meter", compute="_compute_meter_ids", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_ids")
    date_start = fields.Date(
        string="Start", required=True, default=fields.Date.context_today, tracking=True
    )
    date_end = fields.Date(string="End", tracking=True)
    state = fields.Selection(
        [("draft", "Draft"), ("open", "Open"), ("closed", "Closed")],
        default="draft",
        required=True,
        tracking=True,
        copy=False,
    )
    opened_by_id = fields.Many2one("res.users", readonly=True, copy=False)
    closed_by_id = fields.Many2one("res.users", readonly=True, copy=False)
    note = fields.Html()

    @api.depends("unit_id.meter_ids.state")
    def _compute_meter_ids(self):
        for tenancy in self:
            meters = tenancy.unit_id.meter_ids.filtered(lambda m: m.state != "removed")
            tenancy.meter_ids = meters
            tenancy.meter_count = len(meters)

    @api.constrains("date_start", "date_end")
    def _check_dates(self):
        for tenancy in self:
            if tenancy.date_end and tenancy.date_end < tenancy.date_start:
                raise ValidationError(
                    self.env._(
                        "A tenancy cannot end (%(end)s) before it starts (%(start)s).",
                        end=tenancy.date_end,
                        start=tenancy.date_start,
                    )
                )

    @api.constrains("unit_id", "date_start", "date_end", "state")
    def _check_overlap(self):
        """Two live tenancies of one unit must not overlap in time."""
        live = self.filtered(lambda t: t.state != "draft")
        if not live:
            return
        self.flush_model(["unit_id", "date_start", "date_end", "state"])
        self.env.cr.execute(
            """
            SELECT a.name, b.name, u.name
              FROM prepaid_tenancy a
              JOIN prepaid_tenancy b
                ON b.unit_id = a.unit_id AND b.id != a.id AND b.state != 'draft'
              JOIN prepaid_unit u ON u.id = a.unit_id
             WHERE a.id = ANY(%s)
               AND daterange(a.date_start, a.date_end, '[]')
                   && daterange(b.date_start, b.date_end, '[]')
             LIMIT 1
            """,
            [live.ids],
        )
        row = self.env.cr.fetchone()
        if row:
            raise ValidationError(
                self.env._(
                    "Tenancies %(a)s and %(b)s of unit %(unit)s overlap in time.",
                    a=row[0],
                    b=row[1],
                    unit=row[2],
                )
            )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code("prepaid.tenancy") or "/"
        return super().create(vals_list)

    # === ACTIONS === #
    def action_open(self):
        """Account opening: the unit's meters now supply this tenant."""
        for tenancy in self:
            if tenancy.state != "draft":
                raise UserError(self.env._("Only a draft tenancy can be opened."))
        # serialise openings of the same unit: the overlap check then sees committed rows
        self.env.cr.execute(
            "SELECT id FROM prepaid_unit WHERE id = ANY(%s) FOR UPDATE", [self.unit_id.ids]
        )
        self.write({"state": "open", "opened_by_id": self.env.uid})
        self.meter_ids.filtered(lambda m: m.state == "draft" and m.unit_id).action_put_in_service()
        for tenancy in self:
            tenancy.message_post(body=self.env._("Account opened."))
            tenancy.meter_ids._rotate_access_token(
                self.env._("tenancy %(name)s opened.", name=tenancy.name)
            )
        return True

    def action_close(self):
        """Account cancellation; prepaid_billing settles the balance first."""
        for tenancy in self:
            if tenancy.state != "open":
                raise UserError(self.env._("Only an open tenancy can be closed."))
        today = fields.Date.context_today(self)
        for tenancy in self:
            tenancy.write(
                {
                    "state": "closed",
                    "closed_by_id": self.env.uid,
                    "date_end": min(tenancy.date_end or today, today)
                    if tenancy.date_start <= today
                    else tenancy.date_start,
                }
            )
            tenancy.message_post(body=self.env._("Account closed."))
            tenancy.meter_ids._rotate_access_token(
                self.env._("tenancy %(name)s ended.", name=tenancy.name)
            )
        return True

    def action_view_meters(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_meter.prepaid_meter_action")
        action["domain"] = [("id", "in", self.meter_ids.ids)]
        return action
