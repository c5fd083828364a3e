"""T6: the tenant's own low-balance alerts, and billing's notices by the chosen channel."""

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestAlertSubscriptions(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_notices()

    def setUp(self):
        super().setUp()
        self.sms = self._mock_sms_gateway()

    def _emails(self):
        return self._notice_emails(self.account_a1, self.tenant_a)

    def test_own_threshold_by_sms_once_then_rearmed(self):
        subscription = self._subscribe(self.account_a1, self.tenant_a, 30.0, "sms")
        emails = self._emails()
        self.account_a1.sudo()._refund("25")  # 25 left: below the tenant's 30
        self.assertEqual(len(self.sms), 1)
        self.assertIn("below your alert threshold", self.sms[0]["body"])
        self.assertEqual(self.sms[0]["number"], "+15550201")
        self.assertTrue(subscription.notified)
        self.account_a1.sudo()._refund("5")  # still below: told once
        self.assertEqual(len(self.sms), 1)
        self.assertEqual(self._emails(), emails, "SMS only, as chosen")
        self.account_a1.sudo()._recharge("40")  # back above: re-armed
        self.assertFalse(subscription.notified)
        self.account_a1.sudo()._refund("40")
        self.assertEqual(len(self.sms), 2)

    def test_own_threshold_by_email(self):
        self._subscribe(self.account_a1, self.tenant_a, 45.0, "email")
        emails = self._emails()
        self.account_a1.sudo()._refund("10")
        self.assertEqual(len(self._emails() - emails), 1)
        self.assertFalse(self.sms)

    def test_inactive_subscription_is_silent(self):
        self._subscribe(self.account_a1, self.tenant_a, 45.0, "sms", active=False)
        self.account_a1.sudo()._refund("10")
        self.assertFalse(self.sms)

    def test_billing_notices_follow_the_channel(self):
        """Billing's alarm-1 notice goes by the tenant's channel only (SMS here), not by
        e-mail and SMS as without a subscription."""
        self._subscribe(self.account_a1, self.tenant_a, 1.0, "sms")
        emails = self._emails()
        self.account_a1.sudo()._refund("46")  # 4 left: below billing's alarm 1 (5)
        self.assertEqual(self.account_a1.meter_ids.alarm_level, "alarm1")
        self.assertFalse(self.sms, "queued: sent by the notices' scheduled action")
        self._send_notices()
        self.assertEqual(len(self.sms), 1)
        self.assertEqual(self._emails(), emails)

    def test_billing_notices_without_subscription(self):
        """Without a subscription billing's own behaviour stays: e-mail and SMS."""
        emails = self._emails()
        self.account_a1.sudo()._refund("46")
        self._send_notices()
        self.assertEqual(len(self.sms), 1)
        self.assertEqual(len(self._emails() - emails), 1)

    def test_threshold_must_be_positive(self):
        with self.assertRaises(ValidationError):
            self.env["prepaid.alert.subscription"].create(
                {"account_id": self.account_a1.id, "partner_id": self.tenant_a.id, "threshold": 0}
            )
