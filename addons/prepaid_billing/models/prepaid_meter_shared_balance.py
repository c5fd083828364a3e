from odoo import api, fields, models


class PrepaidMeter(models.Model):
    """B2: a meter whose account pays for other meters too shows them: they all draw on
    one balance."""

    _inherit = "prepaid.meter"

    shared_meter_ids = fields.Many2many(
        "prepaid.meter",
        compute="_compute_shared_meter_ids",
        string="Balance Shared With",
        help="The other meters drawing on the same prepaid account.",
    )

    @api.depends("account_id")
    def _compute_shared_meter_ids(self):
        for meter in self:
            meter.shared_meter_ids = meter.account_id.meter_ids - meter
