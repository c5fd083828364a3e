"""T8: the tenant's meter page says how long the credit lasts at the recent use."""

from decimal import Decimal

from lxml import etree

from odoo.tests import HttpCase, tagged

from prepaid_core.forecast import Forecast

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestPortalForecast(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("30", memo="desk")

    def _forecast_shown(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        response = self.url_open(f"/my/meters/{self.meter_a1.id}", allow_redirects=False)
        self.assertEqual(response.status_code, 200)
        page = etree.fromstring(response.text, etree.HTMLParser())
        return [
            (" ".join("".join(div.itertext()).split()), div.get("class"))
            for div in page.xpath("//div[contains(@class, 'o_prepaid_forecast')]")
        ]

    def test_days_left_under_the_credit(self):
        self.account_a1.sudo()._store_forecast({self.account_a1.sudo(): _forecast("6", "5.0")})
        ((text, css),) = self._forecast_shown()
        self.assertEqual(text, "About 5 day(s) of credit left at your recent use")
        self.assertNotIn("text-warning-emphasis", css)

    def test_few_days_left_stand_out(self):
        self.account_a1.sudo()._store_forecast({self.account_a1.sudo(): _forecast("60", "0.5")})
        ((text, css),) = self._forecast_shown()
        self.assertEqual(text, "Less than a day of credit left at your recent use")
        self.assertIn("text-warning-emphasis", css)

    def test_no_recent_use_no_forecast(self):
        self.assertEqual(self._forecast_shown(), [])


def _forecast(use, days):
    return Forecast(Decimal(use), Decimal(days))


@tagged("post_install", "-at_install")
class TestPortalForecastCreditUsedUp(PrepaidPortalMixin, HttpCase):
    def test_no_forecast_once_the_credit_is_used_up(self):
        """With no credit left the alarms and the supply speak: no "less than a day"."""
        self._setup_portal()
        account = self.account_a1.sudo()
        account._store_forecast({account: _forecast("6", "0")})
        self.authenticate("tenant_a", "tenant_a_pw")
        response = self.url_open(f"/my/meters/{self.meter_a1.id}")
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("o_prepaid_forecast", response.text)
