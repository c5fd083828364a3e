from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_qr_anonymous = fields.Boolean(related="company_id.prepaid_qr_anonymous", readonly=False)
    prepaid_recharge_min = fields.Float(related="company_id.prepaid_recharge_min", readonly=False)
    prepaid_recharge_max = fields.Float(related="company_id.prepaid_recharge_max", readonly=False)
    prepaid_recharge_presets = fields.Char(
        related="company_id.prepaid_recharge_presets", readonly=False
    )
