"""Notices by SMS fall back to e-mail when Odoo cannot send the SMS (no IAP credit, no IAP
account, SMS service unreachable), and the failure shows on the account.  Odoo's own sms.sms
runs; only its call to the IAP server is replaced (it cannot be reached from here)."""

from unittest.mock import patch

from odoo.tests import TransactionCase, tagged

from odoo.addons.sms.tools.sms_api import SmsApi

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestSmsFallback(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_notices()

    def _iap_answers(self, state):
        """IAP's answer to every SMS: ``state`` ('insufficient_credit', 'unregistered', ...),
        or, for None, no answer at all (the server cannot be reached)."""

        def contact_iap(api, endpoint, params, timeout=15):
            if state is None:
                raise ConnectionError("sms.api.odoo.com unreachable")
            return [
                {"uuid": number["uuid"], "state": state}
                for message in params["messages"]
                for number in message["numbers"]
            ]

        patcher = patch.object(SmsApi, "_contact_iap", contact_iap)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _emails(self):
        return self._notice_emails(self.account_a1, self.tenant_a)

    def _subscribe_by_sms(self):
        return self._subscribe(self.account_a1, self.tenant_a, 30.0, "sms")

    def _failure_notes(self):
        return self.account_a1.message_ids.filtered(lambda m: "could not be sent" in (m.body or ""))

    def test_no_credit_alert_goes_by_email(self):
        """The tenant chose SMS; IAP says the database has no credit: the alert goes by
        e-mail instead, the SMS stays in error, and the account says why."""
        self._iap_answers("insufficient_credit")
        subscription = self._subscribe_by_sms()
        emails = self._emails()
        self.account_a1.sudo()._refund("25")  # 25 left: below the tenant's 30
        self.assertTrue(subscription.notified)
        new = self._emails() - emails
        self.assertEqual(len(new), 1)
        self.assertIn("below your alert threshold", new.body)
        sms = self.env["sms.sms"].sudo().search([("number", "=", "+15550201")])
        self.assertEqual(sms.mapped("state"), ["error"])
        self.assertEqual(sms.failure_type, "sms_credit")
        self.assertEqual(self.account_a1.sms_failure, "Insufficient Credit")
        self.assertEqual(len(self._failure_notes()), 1)
        self.assertIn(
            self.account_a1,
            self.env["prepaid.account"].search([("sms_failure", "!=", False)]),
            "the accounts' 'SMS Not Sent' filter finds it",
        )

    def test_unreachable_service_alert_goes_by_email(self):
        self._iap_answers(None)
        self._subscribe_by_sms()
        emails = self._emails()
        self.account_a1.sudo()._refund("25")
        self.assertEqual(len(self._emails() - emails), 1)
        self.assertEqual(self.account_a1.sms_failure, "Server Error")

    def test_billing_notice_is_emailed_once(self):
        """Without a subscription billing's notice goes by e-mail and SMS: an SMS that
        fails adds no second e-mail, only the failure on the account."""
        self._iap_answers("unregistered")
        emails = self._emails()
        self.account_a1.sudo()._refund("46")  # 4 left: below billing's alarm 1 (5)
        self.assertEqual(len(self._emails() - emails), 1)
        self.assertEqual(self.account_a1.sms_failure, "Unregistered Account")
        self.assertEqual(len(self._failure_notes()), 1)

    def test_sms_sent_again_clears_the_failure(self):
        self.account_a1.sudo().sms_failure = "Insufficient Credit"
        sent = self._mock_sms_gateway()
        self._subscribe_by_sms()
        emails = self._emails()
        self.account_a1.sudo()._refund("25")
        self.assertEqual(len(sent), 1)
        self.assertEqual(self._emails(), emails, "SMS only, as chosen")
        self.assertFalse(self.account_a1.sms_failure)
