from odoo import models

#: channels whose token the tenant types or carries to the meter: they are told it
TENANT_CHANNELS = ("keypad", "card")


class PrepaidMeterCredit(models.Model):
    """B13/T4: the tenant is told the token of a keypad or card credit once it is issued.

    An e-mail (template) and an SMS carry the token to the meter's tenant; the credit's
    chatter records that they were sent, not the token (readable by managers only), and
    nothing here logs it. A credit sent over the meter's own connection needs no notice."""

    _inherit = "prepaid.meter.credit"

    def _mark_issued(self, reason):
        newly = self.filtered(lambda c: c.state == "to_issue")
        result = super()._mark_issued(reason)
        for credit in newly.filtered(lambda c: c.state == "issued"):
            if credit.channel in TENANT_CHANNELS and credit.partner_id:
                credit._send_token_notice()
        return result

    def _token_sms_text(self):
        """The SMS of the token, in the tenant's language."""
        self.ensure_one()
        credit = self.with_context(lang=self.partner_id.lang or self.env.lang)
        return credit.env._(
            "Meter %(meter)s: %(amount)s %(currency)s credit. Token %(token)s (ref. %(ref)s)",
            meter=credit.meter_id.name,
            amount=f"{credit.amount:.2f}",
            currency=credit.currency_id.symbol or "",
            token=credit._token_groups(),
            ref=credit.token_reference or credit.name,
        )

    def _send_token_notice(self):
        """E-mail and SMS the token to the tenant, each logged (without the token) on the
        credit. Both are queued and go out after the issue is committed: a rolled back
        issue sends no token the server does not know."""
        self.ensure_one()
        credit = self.sudo()
        partner = credit.partner_id
        if partner.email:
            template = self.env.ref("prepaid_billing.mail_template_prepaid_meter_token")
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
