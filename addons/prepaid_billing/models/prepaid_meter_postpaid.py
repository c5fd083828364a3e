from odoo import api, fields, models

from prepaid_core import alarm

from ..const import POSTPAID_OVERDUE, POSTPAID_PAID

#: reason of the desired relay state of a meter cut by the overdue policy (B14)
OVERDUE_CUT = "postpaid_overdue"
#: decisions of the alarm machine the overdue policy may turn into a cut: those on credit
CREDIT_DECISIONS = frozenset({alarm.CREDIT_OK, alarm.CREDIT_LOW})


class PrepaidMeter(models.Model):
    """B14: the supply of a meter of a postpaid account: its balance never cuts it (the
    alarm machine sees a credit always above its thresholds); an invoice overdue beyond the
    policy does, below a manager's forced state, protect mode and an overload trip."""

    _inherit = "prepaid.meter"

    @api.model
    def _alarm_inputs(self, row, settings_cache):
        inputs = super()._alarm_inputs(row, settings_cache)
        if row.get("billing_type") != "postpaid":
            return inputs
        settings = inputs.settings
        return inputs._replace(balance=settings.alarm1 + settings.hysteresis)

    @api.model
    def _postpaid_supply(self, row, state, new_state, decision):
        """The machine's ``(new_state, decision)`` for a meter of an :meth:`_alarm_rows`
        ``row``; for a postpaid account with an overdue invoice, supply cut (notices once
        per invoice), and a notice when an overdue cut ends."""
        if row.get("billing_type") != "postpaid":
            return new_state, decision
        invoice_id = row.get("postpaid_overdue_invoice_id")
        old_relay = state.relay if state else alarm.ON
        was_cut = bool(state) and state.reason == OVERDUE_CUT
        Account = self.env["prepaid.account"]
        if invoice_id and decision.reason in CREDIT_DECISIONS:
            text = Account._postpaid_notice_text(POSTPAID_OVERDUE)
            notice = alarm.Notice(POSTPAID_OVERDUE, f"postpaid_overdue#{invoice_id}", text)
            decision = decision._replace(
                level=alarm.ARREARS,
                relay=alarm.OFF,
                reason=OVERDUE_CUT,
                text=text,
                notices=(*decision.notices, notice),
                changed=old_relay != alarm.OFF,
            )
            return new_state._replace(relay=alarm.OFF, reason=OVERDUE_CUT), decision
        if was_cut:
            text = Account._postpaid_notice_text(POSTPAID_PAID)
            key = f"postpaid_paid@{fields.Datetime.now().isoformat()}"
            notice = alarm.Notice(POSTPAID_PAID, key, text)
            decision = decision._replace(notices=(*decision.notices, notice))
        return new_state, decision
