from odoo import models
from odoo.tools import format_amount

#: channels whose credit the tenant is told about: the keypad token they type, the card the
#: desk writes
TENANT_CHANNELS = ("keypad", "card")


class PrepaidMeterCredit(models.Model):
    """B13/T4: what the tenant sees of a credit: the token to type on a keypad meter, on
    the receipt, the portal and in the notice sent when it is issued.

    An e-mail (template) and an SMS tell the meter's tenant; the credit's chatter records
    that they were sent, not the token (readable by managers only), and nothing here logs
    it. A card credit's token is the card payload, written by the desk: the tenant is told
    the credit is ready, not the payload. A credit sent over the meter's own connection
    needs no notice."""

    _inherit = "prepaid.meter.credit"

    def _tenant_token(self):
        """The token as the tenant types it (digits grouped 4-4-4-4-4), or "" when there is
        none to type: not issued (or cancelled), sent over the meter's connection, or
        written to the meter's card by the desk."""
        self.ensure_one()
        if self.state not in ("issued", "applied") or self.channel != "keypad":
            return ""
        return self._token_groups()

    def _mark_issued(self, reason):
        newly = self.filtered(lambda c: c.state == "to_issue")
        result = super()._mark_issued(reason)
        for credit in newly.filtered(lambda c: c.state == "issued"):
            if credit.channel in TENANT_CHANNELS and credit.partner_id:
                credit._send_token_notice()
        return result

    def _token_sms_text(self):
        """The SMS of the credit, in the tenant's language: the token to type, or that the
        desk writes the card."""
        self.ensure_one()
        credit = self.with_context(lang=self.partner_id.lang or self.env.lang)
        values = {
            "meter": credit.meter_id.name,
            "amount": format_amount(credit.env, credit.amount, credit.currency_id),
            "ref": credit.token_reference or credit.name,
        }
        if token := credit._tenant_token():
            return credit.env._(
                "Meter %(meter)s: %(amount)s credit. Token %(token)s (ref. %(ref)s)",
                token=token,
                **values,
            )
        return credit.env._(
            "Meter %(meter)s: %(amount)s credit ready to be written to your "
            "card at the desk (ref. %(ref)s).",
            **values,
        )

    def _send_token_notice(self):
        """E-mail and SMS the token to the tenant, each logged (without the token) on the
        credit. Both are queued and go out after the issue is committed: a rolled back
        issue sends no token the server does not know."""
        self.ensure_one()
        credit = self.sudo()
        partner = credit.partner_id
        template = self.env.ref(
            "prepaid_billing.mail_template_prepaid_meter_token", raise_if_not_found=False
        )
        if partner.email and template:
            # not attached to the credit: its readers would see the token in its messages
            template.send_mail(
                credit.id,
                email_layout_xmlid="mail.mail_notification_light",
                email_values={"model": False, "res_id": False},
            )
            self.env.ref("mail.ir_cron_mail_scheduler_action")._trigger()
            credit.message_post(
                body=self.env._("The token goes to %(to)s by e-mail.", to=partner.email)
            )
        if partner.phone:
            credit._send_token_sms()

    def _send_token_sms(self):
        """The SMS goes out with the token while the chatter keeps only that it was sent
        (``_message_sms`` would post the SMS text itself on the credit)."""
        self.ensure_one()
        info = self._sms_get_recipients_info()[self.id]
        number = info["sanitized"] or self.partner_id.phone
        message = self.message_post(body=self.env._("The token goes to %(to)s by SMS.", to=number))
        # queued (creating it triggers the SMS queue), sent once the issue is committed
        return (
            self.env["sms.sms"]
            .sudo()
            .create(
                {
                    "number": number,
                    "body": self._token_sms_text(),
                    "partner_id": self.partner_id.id,
                    "mail_message_id": message.id,
                }
            )
        )
