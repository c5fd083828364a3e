"""M10: the consumption chart's data on the meter and the account: every day and month of
the range, the daily frozen consumption, the balance at the end of each period."""

from datetime import date, timedelta

from odoo import fields
from odoo.tests import tagged

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestConsumptionChart(PrepaidBillingCommon):
    def _frozen(self, meter, day, consumption):
        self.env["prepaid.meter.reading.daily"].create(
            {
                "meter_id": meter.id,
                "day": day,
                "company_id": meter.company_id.id,
                "consumption": consumption,
            }
        )

    def test_meter_chart_by_day_and_month_with_the_balance(self):
        meter, end = self.meter, self.t0.date() + timedelta(days=40)
        data = meter._chart_data(end)
        self.assertEqual(len(data["day"]), 30)
        self.assertEqual(len(data["month"]), 12)
        self.assertEqual({point["y"] for point in data["day"]}, {0.0})

        self._frozen(meter, end - timedelta(days=1), 12.5)
        self._frozen(meter, end, 2.25)
        self._frozen(meter, end - timedelta(days=35), 7.0)  # before the 30 days
        self.account._recharge("50", memo="desk")
        data = meter._chart_data(end)
        self.assertEqual(data["uom"], "kWh")
        self.assertEqual(
            data["day"][-2:],
            [{"x": str(end - timedelta(days=1)), "y": 12.5}, {"x": str(end), "y": 2.25}],
        )
        self.assertEqual(sum(point["y"] for point in data["month"]), 21.75)
        self.assertEqual(data["month"][-1]["x"], str(end.replace(day=1)))
        # the balance line ends on today's balance
        self.assertEqual(data["balance"]["day"][-1]["y"], 50.0)
        self.assertEqual(len(data["balance"]["month"]), 12)

    def test_years_from_the_first_with_consumption(self):
        meter, end = self.meter, self.t0.date() + timedelta(days=40)
        self.assertEqual(
            meter._consumption_series("year", end), [{"x": f"{end.year}-01-01", "y": 0.0}]
        )
        self._frozen(meter, date(end.year - 2, 6, 1), 3.0)
        self._frozen(meter, end, 1.5)
        self.assertEqual(
            meter._consumption_series("year", end),
            [
                {"x": f"{end.year - 2}-01-01", "y": 3.0},
                {"x": f"{end.year - 1}-01-01", "y": 0.0},  # a year without: shown at 0
                {"x": f"{end.year}-01-01", "y": 1.5},
            ],
        )

    def test_balance_at_the_end_of_each_day(self):
        today = fields.Date.context_today(self.account)
        self.account._recharge("50", memo="desk")
        lines = self.account.line_ids
        lines.flush_recordset()
        # the recharge moved to three days ago: the days before it show 0, after it 50
        self.env.cr.execute(
            "UPDATE prepaid_account_line SET date = %s WHERE id IN %s",
            [today - timedelta(days=3), tuple(lines.ids)],
        )
        self.account._recharge("5", memo="desk")
        series = self.account._balance_series(self.env["prepaid.meter"]._chart_range("day", today))
        self.assertEqual([p["y"] for p in series[-5:]], [0.0, 50.0, 50.0, 50.0, 55.0])

    def test_account_chart_adds_its_meters(self):
        meter2 = self._create_meter("Power T-102", "000000000102", self.unit)
        day = fields.Date.context_today(self.account)
        self._frozen(self.meter, day, 4.0)
        self._frozen(meter2, day, 1.5)
        self.account._recharge("20", memo="desk")
        self.account.invalidate_recordset(["consumption_chart"])
        data = self.account.consumption_chart
        self.assertEqual(data["day"][-1], {"x": str(day), "y": 5.5})
        self.assertEqual(data["balance"]["day"][-1]["y"], 20.0)
        self.assertEqual(data["uom"], "kWh")
