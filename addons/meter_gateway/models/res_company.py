import secrets

from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_vending_key = fields.Char(
        string="Token Vending Key",
        groups="base.group_system",
        copy=False,
        help="Secret from which each meter's token key is derived (G6): hex, 32 bytes. "
        "Generated on first use; meters must be keyed with it.",
    )

    def _prepaid_vending_key(self):
        """The company's vending key as bytes (generated once, on first use)."""
        self.ensure_one()
        company = self.sudo()
        if not company.prepaid_vending_key:
            company.prepaid_vending_key = secrets.token_hex(32)
        return bytes.fromhex(company.prepaid_vending_key)
