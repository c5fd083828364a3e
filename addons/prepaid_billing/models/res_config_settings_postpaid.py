from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_postpaid_cut_days = fields.Integer(
        related="company_id.prepaid_postpaid_cut_days", readonly=False
    )
