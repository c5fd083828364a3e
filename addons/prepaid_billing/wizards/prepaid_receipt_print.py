from odoo import fields, models


class PrepaidReceiptPrintMixin(models.AbstractModel):
    """B10: the recharge and refund wizards print the three-part receipt of what they post."""

    _name = "prepaid.receipt.print.mixin"
    _description = "Print the receipt of a desk movement"

    print_receipt = fields.Boolean(default=True, help="Print the three-part receipt.")

    def _confirm_and_print(self, confirm):
        """Run ``confirm`` (the wizard's own action); then the receipt of the lines posted."""
        self.ensure_one()
        before = self.account_id.line_ids
        result = confirm()
        posted = self.account_id.line_ids - before
        if self.print_receipt and posted:
            return posted.action_print_receipt()
        return result


class PrepaidAccountRecharge(models.TransientModel):
    _name = "prepaid.account.recharge"
    _inherit = ["prepaid.account.recharge", "prepaid.receipt.print.mixin"]

    def action_confirm(self):
        return self._confirm_and_print(super().action_confirm)


class PrepaidAccountRefund(models.TransientModel):
    _name = "prepaid.account.refund"
    _inherit = ["prepaid.account.refund", "prepaid.receipt.print.mixin"]

    def action_confirm(self):
        return self._confirm_and_print(super().action_confirm)
