from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestChinesePrepaidPortal(PrepaidPortalMixin, ChineseTranslationCase):
    _module = "prepaid_portal"
    _messages = {"A new reading arrived.": "新读数"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("50", memo="desk")

    def test_low_balance_alert_in_the_subscribers_language(self):
        """X4/T6: the alert goes out in the subscriber's language, whoever runs the check."""
        sent = self._mock_sms_gateway()
        self.tenant_a.lang = "zh_CN"
        self.env["prepaid.alert.subscription"].create(
            {
                "account_id": self.account_a1.id,
                "partner_id": self.tenant_a.id,
                "threshold": 30.5,
                "channel": "sms",
            }
        )
        self.account_a1.sudo().with_context(lang="en_US")._refund("25")
        self.assertIn("已低于您设置的提醒金额", sent[0]["body"])
