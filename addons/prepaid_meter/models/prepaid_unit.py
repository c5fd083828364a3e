from odoo import api, fields, models


class PrepaidUnit(models.Model):
    """M1: what a tenant rents (shop, room, apartment, office); its meters supply it."""

    _name = "prepaid.unit"
    _description = "Prepaid Unit"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "site_id, building_id, floor_id, name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    unit_type = fields.Selection(
        [
            ("shop", "Shop"),
            ("room", "Room"),
            ("apartment", "Apartment"),
            ("office", "Office"),
            ("other", "Other"),
        ],
        string="Type",
        required=True,
        default="apartment",
    )
    building_id = fields.Many2one(
        "prepaid.building", required=True, index=True, ondelete="restrict", check_company=True
    )
    floor_id = fields.Many2one(
        "prepaid.floor",
        index=True,
        ondelete="restrict",
        domain="[('building_id', '=', building_id)]",
        check_company=True,
    )
    site_id = fields.Many2one(related="building_id.site_id", store=True, index=True)
    company_id = fields.Many2one(related="building_id.company_id", store=True, index=True)
    area = fields.Float(string="Area (m²)", digits=(10, 2))
    meter_ids = fields.One2many("prepaid.meter", "unit_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")
    tenancy_ids = fields.One2many("prepaid.tenancy", "unit_id", string="Tenancies")
    current_tenancy_id = fields.Many2one("prepaid.tenancy", compute="_compute_current_tenancy")
    tenant_id = fields.Many2one(
        "res.partner", compute="_compute_current_tenancy", search="_search_tenant_id"
    )
    occupancy = fields.Selection(
        [("vacant", "Vacant"), ("let", "Let")], compute="_compute_current_tenancy"
    )

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for unit in self:
            unit.meter_count = len(unit.meter_ids)

    @api.depends("tenancy_ids.state")
    def _compute_current_tenancy(self):
        for unit in self:
            tenancy = unit.tenancy_ids.filtered(lambda t: t.state == "open")[:1]
            unit.current_tenancy_id = tenancy
            unit.tenant_id = tenancy.partner_id
            unit.occupancy = "let" if tenancy else "vacant"

    def _search_tenant_id(self, operator, value):
        return [("tenancy_ids", "any", [("state", "=", "open"), ("partner_id", operator, value)])]

    def _compute_display_name(self):
        for unit in self:
            unit.display_name = (
                f"{unit.building_id.name} {unit.name}" if unit.building_id else unit.name
            )
