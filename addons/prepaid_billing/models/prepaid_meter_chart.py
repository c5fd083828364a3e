"""M10: the balance line under a meter's consumption chart, and the same chart on the
prepaid account (its meters' consumption together)."""

from collections import defaultdict
from datetime import timedelta

from odoo import fields, models
from odoo.tools import SQL


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    def _chart_data(self, today):
        data = super()._chart_data(today)
        account = self.account_id
        if account:
            data["balance"] = {
                period: account._balance_series(
                    self.env["prepaid.meter"]._chart_range(period, today)
                )
                for period in ("day", "month")
            }
            data["currency"] = account.currency_id.symbol or ""
        return data


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    consumption_chart = fields.Json(compute="_compute_consumption_chart", string="Consumption")

    def _compute_consumption_chart(self):
        today = fields.Date.context_today(self)
        Meter = self.env["prepaid.meter"]
        for account in self:
            if not account.id:
                account.consumption_chart = False
                continue
            data = {"uom": "", "balance": {}, "currency": account.currency_id.symbol or ""}
            meters = account.meter_ids
            for period in ("day", "month"):
                data[period] = meters._consumption_series(period, today)
                data["balance"][period] = account._balance_series(Meter._chart_range(period, today))
            data["uom"] = " / ".join(sorted(set(meters.mapped("uom_name")) - {False}))
            account.consumption_chart = data

    def _balance_series(self, chart_range):
        """The balance at the end of each period of ``chart_range`` (its first day and the
        periods' first days): today's balance less what the ledger moved after it."""
        self.ensure_one()
        first, periods = chart_range
        self.env["prepaid.account.line"].flush_model()
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT date, SUM(amount) AS amount FROM prepaid_account_line
                 WHERE account_id = %s AND date >= %s GROUP BY date
                """,
                self.id,
                first,
            )
        )
        moved = defaultdict(float, {row["date"]: float(row["amount"]) for row in rows})
        ends = [*[start - timedelta(days=1) for start in periods[1:]], None]
        series = []
        for start, end in zip(periods, ends, strict=True):
            later = sum(amount for day, amount in moved.items() if end is not None and day > end)
            series.append({"x": str(start), "y": round(self.balance - later, 2)})
        return series
