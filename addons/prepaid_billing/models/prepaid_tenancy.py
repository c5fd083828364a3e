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

    def action_close(self):
        """M4 account cancellation: the prepaid account is settled first (B5: what is still
        due is charged, the balance refunded), while the tenancy is still open."""
        if all(tenancy.state == "open" for tenancy in self):
            self.account_ids.filtered(lambda a: a.state == "open").with_context(
                prepaid_tenancy_closing=True
            ).action_close()
        return super().action_close()

    def _ensure_account(self):
        """Open the tenancy's prepaid account (M4 account opening, B2)."""
        missing = self.filtered(lambda t: not t.account_ids)
        accounts = self.env["prepaid.account"].create([{"tenancy_id": t.id} for t in missing])
        for account in accounts:
            account._take_over_preset_credit()
        return accounts
