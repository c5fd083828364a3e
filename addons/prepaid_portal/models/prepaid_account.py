from odoo import fields, models


class PrepaidAccount(models.Model):
    """T6: billing's notices honour the tenant's alert subscriptions: a tenant who chose a
    channel receives the notices by that channel only."""

    _inherit = "prepaid.account"

    alert_subscription_ids = fields.One2many("prepaid.alert.subscription", "account_id")

    def _deliver_notice(self, notice):
        subscriptions = self.alert_subscription_ids.filtered("active")
        if not subscriptions:
            super()._deliver_notice(notice)
            return
        self.ensure_one()
        for subscription in subscriptions:
            partner = subscription.partner_id
            self._send_to_partner(partner, self._notice_text(notice, partner), subscription.channel)

    def _send_to_partner(self, partner, text, channel):
        """One notice to one tenant by ``channel`` ('email' or 'sms'), logged on the account;
        an SMS that cannot be sent falls back to e-mail (the failure stays on the account)."""
        self.ensure_one()
        account = self.sudo()
        if channel == "sms" and partner.phone and self._send_notice_sms(partner, text):
            return "sms"
        template = self.env.ref("prepaid_billing.mail_template_prepaid_notice")
        account.with_context(notice_text=text).message_post_with_source(
            template,
            subtype_xmlid="mail.mt_comment",
            message_type="comment",
            partner_ids=partner.ids,
        )
        return "email"
