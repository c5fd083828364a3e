from odoo import fields, models

from prepaid_core import alarm


class PrepaidMeter(models.Model):
    """Why the supply should be on or off, as the meter form shows it: the alarm machine
    stores its English reason (prepaid_core.alarm.REASON_TEXTS; a search filters on it), the
    form shows it in the user's language; a manager's own words stay as written."""

    _inherit = "prepaid.meter"

    desired_relay_why = fields.Char(
        string="Supply Reason",
        compute="_compute_desired_relay_why",
        help="Why the supply should be in this state.",
    )

    def _compute_desired_relay_why(self):
        texts = self._relay_reason_texts()
        for meter in self:
            reason = meter.desired_relay_reason or ""
            meter.desired_relay_why = texts.get(reason, reason)

    def _relay_reason_texts(self):
        """``{English reason the alarm machine stores: the same in the user's language}``."""
        worded = {
            alarm.FORCED_ON: self.env._("Supply forced on by a manager."),
            alarm.FORCED_OFF: self.env._("Supply forced off by a manager."),
            alarm.PROTECTED: self.env._("Protect mode: supply is never cut."),
            alarm.OVERLOAD: self.env._("Supply cut: power above the meter's limit (overload)."),
            alarm.CUT_ARREARS: self.env._(
                "Supply cut: credit used up. It comes back on after a recharge."
            ),
            alarm.REMINDER_CUT: self.env._(
                "Supply cut briefly to remind the tenant that credit is low."
            ),
            alarm.CREDIT_LOW: self.env._("Supply on; credit is low."),
            alarm.CREDIT_OK: self.env._("Supply on."),
        }
        return {alarm.REASON_TEXTS[code]: text for code, text in worded.items()}
