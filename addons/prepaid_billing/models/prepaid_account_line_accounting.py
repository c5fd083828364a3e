from odoo import fields, models


class PrepaidAccountLine(models.Model):
    """B9: a ledger line's place in the accounting: the payment that collected or paid back
    the money (``payment_id``), the invoice that billed the consumption."""

    _inherit = "prepaid.account.line"

    invoice_id = fields.Many2one(
        "account.move",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Latest customer invoice that billed this consumption line.",
    )
    invoice_rounding = fields.Boolean(
        readonly=True,
        copy=False,
        help="Adjustment bringing the consumption charged to the cent of the final invoice.",
    )

    def action_view_payment(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.payment",
            "res_id": self.payment_id.id,
            "view_mode": "form",
        }
