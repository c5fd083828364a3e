"""M10: the consumption chart of a meter's form: its charged consumption by day (the last
30 days) and by month (the last 12), from the daily frozen records; by year too (the last
12, from the meter's first year with consumption on) for the tenant's portal."""

from datetime import date, timedelta

from odoo import fields, models
from odoo.tools import SQL

#: days, months and years the chart shows
CHART_DAYS = 30
CHART_MONTHS = 12
CHART_YEARS = 12


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    consumption_chart = fields.Json(compute="_compute_consumption_chart", string="Consumption")

    def _compute_consumption_chart(self):
        today = fields.Date.context_today(self)
        for meter in self:
            meter.consumption_chart = meter._chart_data(today) if meter.id else False

    def _chart_data(self, today):
        """``{"uom", "day": [{"x": date, "y": quantity}], "month": [...]}``: every day and
        month of the range, those without consumption at 0."""
        self.ensure_one()
        return {
            "uom": self.uom_name or "",
            "day": self._consumption_series("day", today),
            "month": self._consumption_series("month", today),
        }

    def _chart_range(self, period, today):
        """The first day of the chart's ``period`` range (day, month or year) and the
        periods' first days."""
        if period == "day":
            first = today - timedelta(days=CHART_DAYS - 1)
            return first, [first + timedelta(days=i) for i in range(CHART_DAYS)]
        if period == "year":
            years = [date(today.year - n, 1, 1) for n in reversed(range(CHART_YEARS))]
            return years[0], years
        months, month = [], today.replace(day=1)
        for _i in range(CHART_MONTHS):
            months.insert(0, month)
            month = (month - timedelta(days=1)).replace(day=1)
        return months[0], months

    def _consumption_series(self, period, today):
        """``[{"x": period's first day, "y": quantity}]`` of every period of the chart's
        range, oldest first, those without consumption at 0 (years: from the first year with
        consumption on); the meters' quantities added together."""
        first, periods = self._chart_range(period, today)
        self.env["prepaid.meter.reading.daily"].flush_model()
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT date_trunc(%s, day)::date AS period, SUM(consumption) AS quantity
                  FROM prepaid_meter_reading_daily
                 WHERE meter_id = ANY(%s) AND day >= %s AND day <= %s
                 GROUP BY 1
                """,
                period,
                self.ids,
                first,
                today,
            )
        )
        quantities = {row["period"]: float(row["quantity"] or 0.0) for row in rows}
        if period == "year":  # from the first year with consumption on (this year at least)
            start = min(quantities, default=periods[-1])
            periods = [year for year in periods if year >= start]
        return [{"x": str(day), "y": round(quantities.get(day, 0.0), 3)} for day in periods]
