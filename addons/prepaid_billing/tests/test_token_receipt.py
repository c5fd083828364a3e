"""Where the tenant sees a meter credit's token: the three-part receipt of the recharge
(B10/B13) and the e-mail and SMS sent when a keypad or card token is issued (T4)."""

import logging
import re

from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.common import render_pdf

from .common import MockSmsGatewayMixin, PrepaidBillingCommon

RECEIPT = "prepaid_billing.action_report_prepaid_receipt"
TOKEN = "12345678901234567890"
GROUPED = "1234 5678 9012 3456 7890"


class TokenCreditMixin:
    """Issued credits with tokens as meter_gateway makes them (channel, token and reference
    set with sudo, then ``_mark_issued``), without the gateway itself."""

    def _credit(self, meter, amount, origin, channel=None, token=TOKEN, reference="TID-1"):
        credit = self.env["prepaid.meter.credit"]._vend(meter, amount, origin)
        if channel:
            credit.sudo().write({"channel": channel, "token": token, "token_reference": reference})
            credit._mark_issued("test")
        return credit

    def _sell_credit(self, line, meter, channel=None, token=TOKEN, reference="TID-1"):
        """The credit the recharge ``line`` sold for ``meter``, linked as the recharge does."""
        origin = f"prepaid.account.line,{line.id}"
        credit = self._credit(meter, str(line.amount), origin, channel, token, reference)
        line.sudo().meter_credit_id = credit
        return credit


@tagged("post_install", "-at_install")
class TestTokenReceipt(TokenCreditMixin, MockSmsGatewayMixin, PrepaidBillingCommon):
    def setUp(self):
        super().setUp()
        self.sent = self._mock_sms_gateway()
        self.tenant.email = "tenant.one@example.com"

    def _recharge_with_credit(self, channel, amount="40"):
        line = self.account._recharge(amount, memo="desk")[:1]
        return line, self._sell_credit(line, self.meter, channel)

    def _html(self, line, user=None):
        Report = self.env["ir.actions.report"]
        if user:
            Report = Report.with_user(user)
        html, _fmt = Report._render_qweb_html(RECEIPT, line.ids)
        return html.decode()

    # === RECEIPT === #
    def test_keypad_token_grouped_with_qr_on_tenant_copy(self):
        line, credit = self._recharge_with_credit("keypad")
        self.assertEqual(credit.state, "issued")
        html = self._html(line)
        self.assertEqual(html.count(GROUPED), 1, "the token, on the tenant copy only")
        self.assertEqual(len(re.findall(r"prepaid_receipt_credit\b", html)), 3, "each copy")
        self.assertEqual(html.count("The token is printed on the tenant copy."), 2)
        qr = re.findall(r'<img[^>]*src="data:image/png;base64,[^"]+"', html)
        self.assertEqual(len(qr), 1, "one QR code of the digits")
        self.assertIn(self.meter.name, html)
        self.assertIn("40.00", html)
        self.assertIn("TID-1", html)
        pdf, _fmt = render_pdf(self.env, RECEIPT, line.ids)
        self.assertEqual(len(re.findall(rb"/Type\s*/Page[^s]", pdf)), 1, "still one page")

    def test_device_credit_shows_reference_not_digits(self):
        line, _credit = self._recharge_with_credit("device")
        html = self._html(line)
        self.assertNotIn(GROUPED, html)
        self.assertNotIn(TOKEN, html)
        self.assertNotIn("data:image/png", html)
        self.assertEqual(html.count("Sent to the meter over its connection."), 3)
        self.assertIn("TID-1", html)

    def test_credit_to_issue_says_so(self):
        line, credit = self._recharge_with_credit(None)
        self.assertEqual(credit.state, "to_issue")
        html = self._html(line)
        self.assertEqual(html.count("Still to be issued to the meter."), 3)

    def test_card_credit_written_at_the_desk(self):
        """A card credit's token is the card payload the desk writes: never printed."""
        line, _credit = self._recharge_with_credit("card")
        html = self._html(line)
        self.assertEqual(html.count("Written to the meter's card at the desk."), 3)
        self.assertNotIn(GROUPED, html)
        self.assertNotIn(TOKEN, html)
        self.assertNotIn("data:image/png", html)

    def test_token_printed_by_the_desk_only(self):
        line, _credit = self._recharge_with_credit("keypad")
        reader = self._user("reader", "prepaid_meter.group_prepaid_accountant")
        desk = self._user("desk", "prepaid_meter.group_prepaid_user")
        self.assertNotIn(GROUPED, self._html(line, reader))
        self.assertIn(GROUPED, self._html(line, desk))

    def test_receipt_without_credit_unchanged(self):
        line = self.account._recharge("15", memo="desk")[:1]
        self.assertNotIn("prepaid_receipt_credit", self._html(line))

    # === NOTICE === #
    def _token_mails(self, credit):
        subject = f"{credit.meter_id.name}: your credit"
        return (
            self.env["mail.mail"]
            .sudo()
            .search([("recipient_ids", "in", self.tenant.ids), ("subject", "=", subject)])
        )

    def _token_sms(self):
        return (
            self.env["sms.sms"]
            .sudo()
            .search(
                [
                    ("partner_id", "=", self.tenant.id),
                    ("mail_message_id.model", "=", "prepaid.meter.credit"),
                ]
            )
        )

    def test_keypad_token_mailed_and_sent_by_sms_once(self):
        line, credit = self._recharge_with_credit("keypad")
        mails = self._token_mails(credit)
        self.assertEqual(len(mails), 1)
        self.assertIn(GROUPED, str(mails.body_html))
        self.assertIn(self.tenant, mails.recipient_ids)
        sms = self._token_sms()
        self.assertEqual(len(sms), 1)
        self.assertEqual(sms.state, "outgoing", "queued: sent after the issue is committed")
        self.assertFalse(self.sent)
        # issued again (a retried delivery): nothing more goes out
        credit._mark_issued("again")
        self.assertEqual(len(self._token_mails(credit)), 1)
        self.assertEqual(len(self._token_sms()), 1)
        # what the SMS queue sends
        sms.send()
        self.assertEqual(len(self.sent), 1)
        self.assertIn(GROUPED, self.sent[0]["body"])
        self.assertIn(self.meter.name, self.sent[0]["body"])
        self.assertIn("TID-1", self.sent[0]["body"])
        # the chatter says it was sent, never the token itself
        bodies = " ".join(str(body) for body in credit.message_ids.mapped("body"))
        self.assertIn("tenant.one@example.com by e-mail", bodies)
        self.assertIn("by SMS", bodies)
        self.assertNotIn(GROUPED, bodies)
        self.assertNotIn(TOKEN, bodies)
        self.assertEqual(line.meter_credit_id, credit)

    def test_card_credit_notice_without_phone_is_mail_only(self):
        self.tenant.phone = False
        _line, credit = self._recharge_with_credit("card")
        mail = self._token_mails(credit)
        self.assertEqual(len(mail), 1)
        self.assertIn("writes it to your meter", str(mail.body_html))
        self.assertNotIn(GROUPED, str(mail.body_html))
        self.assertNotIn(TOKEN, str(mail.body_html))
        self.assertFalse(self._token_sms())

    def test_device_credit_sends_no_notice(self):
        _line, credit = self._recharge_with_credit("device")
        self.assertEqual(credit.state, "issued")
        self.assertFalse(self._token_mails(credit))
        self.assertFalse(self._token_sms())

    def test_token_not_in_server_log(self):
        records = []
        handler = logging.Handler(level=logging.INFO)
        handler.emit = records.append
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            self._recharge_with_credit("keypad")
        finally:
            root.removeHandler(handler)
        output = "\n".join(record.getMessage() for record in records)
        self.assertNotIn(TOKEN, output)
        self.assertNotIn(GROUPED, output)
