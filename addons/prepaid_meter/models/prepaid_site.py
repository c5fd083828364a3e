from odoo import api, fields, models


class PrepaidSite(models.Model):
    """M1: a property (park, campus, mall, residence) run by one landlord company."""

    _name = "prepaid.site"
    _description = "Prepaid Site"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(help="Short code printed on labels and receipts.")
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
        tracking=True,
        help="The landlord or property company that sells energy on this site.",
    )
    partner_id = fields.Many2one("res.partner", string="Address")
    manager_id = fields.Many2one(
        "res.users", string="Site Manager", default=lambda self: self.env.user
    )
    building_ids = fields.One2many("prepaid.building", "site_id", string="Buildings")
    building_count = fields.Integer(compute="_compute_counts")
    unit_count = fields.Integer(compute="_compute_counts")
    meter_count = fields.Integer(compute="_compute_counts")
    note = fields.Html()

    _code_company_uniq = models.UniqueIndex(
        "(company_id, code) WHERE code IS NOT NULL", "A site code must be unique per company."
    )

    def _compute_counts(self):
        for model, field in (
            ("prepaid.building", "building_count"),
            ("prepaid.unit", "unit_count"),
            ("prepaid.meter", "meter_count"),
        ):
            counts = dict(
                self.env[model]._read_group([("site_id", "in", self.ids)], ["site_id"], ["__count"])
            )
            for site in self:
                site[field] = counts.get(site, 0)

    def _action_open(self, model, name):
        action = self.env["ir.actions.act_window"]._for_xml_id(f"prepaid_meter.{model}_action")
        action["domain"] = [("site_id", "in", self.ids)]
        action["context"] = {"default_site_id": self.id} if len(self) == 1 else {}
        action["display_name"] = name
        return action

    def action_view_buildings(self):
        return self._action_open("prepaid_building", self.env._("Buildings"))

    def action_view_units(self):
        return self._action_open("prepaid_unit", self.env._("Units"))

    def action_view_meters(self):
        return self._action_open("prepaid_meter", self.env._("Meters"))

    @api.model
    def _default_site(self):
        return self.search([("company_id", "in", self.env.companies.ids)], limit=1)
