"""T5: the tenant's history by day (the last 30, each shown) with the money charged for it,
as well as by month and year."""

from decimal import Decimal

from lxml import html

from odoo import fields
from odoo.tests import HttpCase, tagged

from prepaid_core import balance

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestPortalHistoryDays(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        account = cls.account_a1.sudo()
        account._recharge("30", memo="desk")
        cls.today = fields.Date.context_today(account)
        cls.env["prepaid.meter.reading.daily"].create(
            {
                "meter_id": cls.meter_a1.id,
                "day": cls.today,
                "company_id": cls.meter_a1.company_id.id,
                "consumption": 7.0,
            }
        )
        account._lock_balance()
        account._post_lines(
            [balance.LedgerLine(balance.DEDUCTION, Decimal("-3.5"), "Consumption of today")]
        )

    def _page(self, period):
        self.authenticate("tenant_a", "tenant_a_pw")
        response = self.url_open(f"/my/meters/{self.meter_a1.id}/history?period={period}")
        self.assertEqual(response.status_code, 200)
        return html.fromstring(response.content)

    def test_days_with_the_money_charged(self):
        page = self._page("day")
        bars = page.xpath("//*[contains(@class, 'o_prepaid_bar ')]")
        self.assertEqual(len(bars), 30)
        self.assertTrue(bars[-1].get("title").endswith(": 7.00 kWh, $\N{NO-BREAK SPACE}3.50"))
        self.assertTrue(bars[0].get("title").endswith(": 0.00 kWh, $\N{NO-BREAK SPACE}0.00"))
        (spent,) = page.xpath("//*[contains(@class, 'o_prepaid_spent')]")
        self.assertEqual(
            spent.text_content().strip(), "Charged for this consumption: $\N{NO-BREAK SPACE}3.50"
        )
        (day,) = page.xpath("//a[contains(@class, 'o_prepaid_period_day')]")
        self.assertIn("btn-primary", day.get("class"))

    def test_months_still_shown_with_their_money(self):
        """The last 12 months, each shown (as on the meter's form), this one last."""
        page = self._page("month")
        bars = page.xpath("//*[contains(@class, 'o_prepaid_bar ')]")
        self.assertEqual(len(bars), 12)
        self.assertIn("7.00 kWh, $\N{NO-BREAK SPACE}3.50", bars[-1].get("title"))
        self.assertIn("0.00 kWh, $\N{NO-BREAK SPACE}0.00", bars[0].get("title"))
