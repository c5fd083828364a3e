from odoo import models
from odoo.exceptions import UserError

from prepaid_core import balance

#: ledger kinds that are money paid in (parts of one recharge) or paid back
MONEY_IN = (balance.RECHARGE, balance.PRESET_CREDIT, balance.OVERDRAFT_REPAYMENT)
MONEY_KINDS = (*MONEY_IN, balance.REFUND)


class PrepaidAccountLine(models.Model):
    """B10: the three-part receipt of a recharge (sale) or refund."""

    _inherit = "prepaid.account.line"

    def _receipt_lines(self):
        """The lines of the movement this line belongs to: the parts of one recharge share
        its payment (or its reference, or its posting)."""
        self.ensure_one()
        lines = self.account_id.line_ids.filtered(lambda line: line.kind in MONEY_KINDS)
        if self.payment_id:
            return lines.filtered(lambda line: line.payment_id == self.payment_id)
        if self.reference:
            return lines.filtered(lambda line: line.reference == self.reference)
        return lines.filtered(
            lambda line: line.posted_at == self.posted_at and line.user_id == self.user_id
        ).filtered(lambda line: (line.kind == balance.REFUND) == (self.kind == balance.REFUND))

    def _receipt_kind(self):
        self.ensure_one()
        return "refund" if self.kind == balance.REFUND else "sale"

    def _receipt_number(self):
        self.ensure_one()
        if self.payment_id:
            return self.payment_id.sudo().name
        return f"{self.account_id.name}/{min(self._receipt_lines().ids)}"

    def _receipt_credits(self):
        """B13: the meter credits this movement sent (sudo, for the receipt only: the token
        is printed for the tenant, and only by who may print receipts)."""
        self.ensure_one()
        return self._receipt_lines().meter_credit_id.sudo()

    def _receipt_shows_tokens(self):
        """Tokens are printed by the desk (prepaid users and managers), not by readers."""
        return self.env.su or self.env.user.has_group("prepaid_meter.group_prepaid_user")

    def action_print_receipt(self):
        lines = self.filtered(lambda line: line.kind in MONEY_KINDS)
        if not lines:
            raise UserError(self.env._("Receipts are printed for recharges and refunds."))
        return self.env.ref("prepaid_billing.action_report_prepaid_receipt").report_action(
            lines[:1], config=False
        )
