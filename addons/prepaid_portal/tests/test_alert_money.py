"""T6: the tenant's low-balance alert states the credit and the threshold as Odoo formats
amounts in the account's currency (symbol and decimals of the currency, not ``%.2f``)."""

from odoo.tests import TransactionCase, tagged
from odoo.tools import format_amount

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestAlertMoney(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("50", memo="desk")

    def test_alert_sms_formats_amounts_in_the_currency(self):
        sent = self._mock_sms_gateway()
        self.env["prepaid.alert.subscription"].create(
            {
                "account_id": self.account_a1.id,
                "partner_id": self.tenant_a.id,
                "threshold": 30.5,
                "channel": "sms",
            }
        )
        self.account_a1.sudo()._refund("25")
        currency = self.account_a1.currency_id
        credit, threshold = (format_amount(self.env, v, currency) for v in (25.0, 30.5))
        self.assertIn(currency.symbol, credit)
        self.assertIn(f"is {credit}, below your alert threshold of {threshold}.", sent[0]["body"])
