"""T8: the credit forecast from the consumption the deduction run charged, and its early
notice, sent once per recharge and before the alarms."""

from datetime import timedelta

from odoo.tests import tagged

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestCreditForecast(PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant.lang = "en_US"
        cls.env.company.prepaid_forecast_notice_days = 3
        cls.account._recharge("200", memo="desk")

    def _read_nine_days(self):
        """From t0 03:00, a reading every 6 hours for nine days, 2.5 kWh each: the first day
        charges 3 intervals, every later day 4 (10 kWh, 5.00 at the flat 0.50)."""
        self._ingest(self.meter, *((180 + 360 * i, 1000 + 2.5 * i) for i in range(36)))
        self._deduct()
        self.today = (self.t0 + timedelta(days=9)).date()

    def _notices(self):
        self.env["prepaid.account.notice"]._send_queued()  # their scheduled action
        return self.account.message_ids.filtered(
            lambda m: m.message_type == "comment" and "day(s) left" in (m.body or "")
        )

    def test_forecast_from_the_last_full_week(self):
        self._read_nine_days()
        # 3.75 + 8 x 5.00 charged; the last 7 days give 5.00 a day
        self.assertEqual(self._balance(), 200 - 43.75)
        self.account._update_forecast(today=self.today)
        self.assertAlmostEqual(self.account.daily_use, 5.0, places=4)
        self.assertAlmostEqual(self.account.credit_days_left, 31.2, places=1)
        self.assertTrue(self.account.forecast_at)
        self.assertIn("About 31 day(s) of credit left", self.account._forecast_label())
        self.assertFalse(self._notices(), "31 days is not within the 3 days' notice")

    def test_overdraft_lasts_too_and_new_tenancy_counts_from_its_start(self):
        self._read_nine_days()
        self.account.overdraft_limit = 10.0
        self.account._update_forecast(today=self.today)
        self.assertAlmostEqual(self.account.credit_days_left, 33.2, places=1)
        # a tenancy that started two days ago: its two days only
        self.tenancy.date_start = self.today - timedelta(days=2)
        self.account._update_forecast(today=self.today)
        self.assertAlmostEqual(self.account.daily_use, 5.0, places=4)

    def test_no_consumption_no_forecast(self):
        self.account._update_forecast(today=(self.t0 + timedelta(days=9)).date())
        self.assertEqual(self.account.daily_use, 0.0)
        self.assertEqual(self.account._forecast_label(), "")

    def test_early_notice_once_per_recharge_and_before_the_alarms(self):
        self._read_nine_days()
        self.env.company.prepaid_forecast_notice_days = 40
        self.account._update_forecast(today=self.today)
        self.account._update_forecast(today=self.today)
        (notice,) = self._notices()
        self.assertIn("Credit for about 31 day(s) left at your recent use.", notice.body)
        # a recharge starts a new cycle: told again, once
        self.account._recharge("10", memo="desk")
        self.account._update_forecast(today=self.today)
        self.account._update_forecast(today=self.today)
        self.assertEqual(len(self._notices()), 2)
        # within the first alarm the alarm notices speak
        self.account._recharge("1", memo="desk")
        self.account.alarm1_threshold = 500.0
        self.account._update_forecast(today=self.today)
        self.assertEqual(len(self._notices()), 2)

    def test_notice_off_with_zero_days(self):
        self._read_nine_days()
        self.env.company.prepaid_forecast_notice_days = 0
        self.account._update_forecast(today=self.today)
        self.assertFalse(self._notices())

    def test_the_scheduled_action_updates_every_open_account(self):
        self._read_nine_days()
        other = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit2.id, "date_start": "2026-01-01"}
        )
        other.action_open()
        count = self.env["prepaid.account"]._run_forecasts(batch_size=1)
        self.assertGreaterEqual(count, 2)
        self.assertTrue(self.account.forecast_at)
        self.assertTrue(other.account_id.forecast_at)
        self.assertEqual(other.account_id.daily_use, 0.0)
