from odoo import fields, models


class PrepaidAccount(models.Model):
    """T6: billing's notices honour the tenant's alert subscriptions: a tenant who chose a
    channel receives the notices by that channel only."""

    _inherit = "prepaid.account"

    alert_subscription_ids = fields.One2many("prepaid.alert.subscription", "account_id")

    def _deliver_notice(self, notice):
        subscriptions = self.alert_subscription_ids.filtered("active")
        if not subscriptions:
            return super()._deliver_notice(notice)
        self.ensure_one()
        channels = set()
        for subscription in subscriptions:
            partner = subscription.partner_id
            text = self._notice_text(notice, partner)
            channels.add(self._send_to_partner(partner, text, subscription.channel))
        return "sms" in channels  # an SMS went out

    def _send_to_partner(self, partner, text, channel):
        """One notice to one tenant by ``channel`` ('email' or 'sms'), logged on the account;
        an SMS that cannot be sent falls back to e-mail (the failure stays on the account)."""
        self.ensure_one()
        if channel == "sms" and partner.phone and self._send_notice_sms(partner, text):
            return "sms"
        self._post_notice_mail(partner, text)
        return "email"
