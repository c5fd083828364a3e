from odoo import fields, models


class PrepaidTenancy(models.Model):
    _inherit = "prepaid.tenancy"

    account_ids = fields.One2many("prepaid.account", "tenancy_id")
    account_id = fields.Many2one(
        "prepaid.account", compute="_compute_account_id", string="Prepaid Account"
    )

    def _compute_account_id(self):
        for tenancy in self:
            tenancy.account_id = tenancy.account_ids[:1]

    def action_open(self):
        res = super().action_open()
        self._ensure_account()
        return res

    def _ensure_account(self):
        """Open the tenancy's prepaid account (M4 account opening, B2)."""
        missing = self.filtered(lambda t: not t.account_ids)
        accounts = self.env["prepaid.account"].create([{"tenancy_id": t.id} for t in missing])
        for account in accounts:
            account._take_over_preset_credit()
        return accounts
