from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import DEFAULT_PRESET_AMOUNTS, DEFAULT_RECHARGE_MAX, DEFAULT_RECHARGE_MIN


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_qr_anonymous = fields.Boolean(
        string="QR Pages Without Login",
        help="A meter's QR code shows its page (balance, last reading, recharge) to anyone "
        "holding it, without an account. Off: the visitor logs in first.",
    )
    prepaid_recharge_min = fields.Float(
        string="Minimum Online Recharge", default=DEFAULT_RECHARGE_MIN
    )
    prepaid_recharge_max = fields.Float(
        string="Maximum Online Recharge", default=DEFAULT_RECHARGE_MAX
    )
    prepaid_recharge_presets = fields.Char(
        string="Recharge Amounts Offered",
        default=DEFAULT_PRESET_AMOUNTS,
        help="Comma-separated amounts shown as buttons on the recharge page.",
    )

    @api.constrains("prepaid_recharge_min", "prepaid_recharge_max", "prepaid_recharge_presets")
    def _check_prepaid_recharge_limits(self):
        for company in self:
            low, high = company.prepaid_recharge_min, company.prepaid_recharge_max
            if low <= 0 or high < low:
                raise ValidationError(self.env._("Online recharges need 0 < minimum <= maximum."))
            try:
                presets = company._prepaid_recharge_presets()
            except ValueError as exc:
                raise ValidationError(
                    self.env._("Recharge amounts must be numbers separated by commas.")
                ) from exc
            if any(not low <= amount <= high for amount in presets):
                raise ValidationError(
                    self.env._("Every recharge amount offered must lie within the limits.")
                )

    def _prepaid_recharge_presets(self):
        self.ensure_one()
        text = self.prepaid_recharge_presets or ""
        return [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
