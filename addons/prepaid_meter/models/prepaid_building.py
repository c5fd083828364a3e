from odoo import fields, models


class PrepaidBuilding(models.Model):
    """M1: a building of a site."""

    _name = "prepaid.building"
    _description = "Prepaid Building"
    _inherit = ["mail.thread"]
    _order = "site_id, sequence, name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    site_id = fields.Many2one(
        "prepaid.site", required=True, index=True, ondelete="restrict", check_company=True
    )
    company_id = fields.Many2one(related="site_id.company_id", store=True, index=True)
    floor_ids = fields.One2many("prepaid.floor", "building_id", string="Floors")
    unit_ids = fields.One2many("prepaid.unit", "building_id", string="Units")
    unit_count = fields.Integer(compute="_compute_counts")
    meter_count = fields.Integer(compute="_compute_counts")

    def _compute_counts(self):
        units = dict(
            self.env["prepaid.unit"]._read_group(
                [("building_id", "in", self.ids)], ["building_id"], ["__count"]
            )
        )
        meters = dict(
            self.env["prepaid.meter"]._read_group(
                [("building_id", "in", self.ids)], ["building_id"], ["__count"]
            )
        )
        for building in self:
            building.unit_count = units.get(building, 0)
            building.meter_count = meters.get(building, 0)

    def action_view_units(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_meter.prepaid_unit_action")
        action["domain"] = [("building_id", "in", self.ids)]
        action["context"] = {"default_building_id": self.id} if len(self) == 1 else {}
        return action

    def action_view_meters(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_meter.prepaid_meter_action")
        action["domain"] = [("building_id", "in", self.ids)]
        return action
