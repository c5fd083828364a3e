from odoo import fields, models


class PrepaidFloor(models.Model):
    """M1: a floor (level) of a building, grouping its units."""

    _name = "prepaid.floor"
    _description = "Prepaid Floor"
    _order = "building_id, sequence, name"
    _check_company_auto = True

    name = fields.Char(required=True)
    sequence = fields.Integer(default=10)
    building_id = fields.Many2one(
        "prepaid.building", required=True, index=True, ondelete="cascade", check_company=True
    )
    site_id = fields.Many2one(related="building_id.site_id", store=True)
    company_id = fields.Many2one(related="building_id.company_id", store=True, index=True)
    unit_ids = fields.One2many("prepaid.unit", "floor_id", string="Units")

    _name_building_uniq = models.UniqueIndex(
        "(building_id, name)", "A floor name must be unique within its building."
    )

    def _compute_display_name(self):
        for floor in self:
            floor.display_name = f"{floor.building_id.name} / {floor.name}"
