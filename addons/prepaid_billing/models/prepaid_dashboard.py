"""M10: the managers' dashboard: what a property manager looks at first, for the active
company: sales and energy sold today and this month, meters by status, lost connections,
alarms, arrears, the largest consumers and recharges by channel.

One read-only call gathers it with grouped reads (record rules apply); the client action
``prepaid_dashboard`` draws it and opens the records behind each figure."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import format_amount

from odoo.addons.prepaid_meter.utils import selection_label

#: largest consumers shown
TOP_CONSUMERS = 10
#: days of the energy chart
ENERGY_DAYS = 30


class PrepaidDashboard(models.AbstractModel):
    _name = "prepaid.dashboard"
    _description = "Prepaid Energy Dashboard"

    @api.model
    @api.readonly
    def get_dashboard_data(self):
        company = self.env.company
        today = fields.Date.context_today(self)
        month = today.replace(day=1)
        return {
            "company": company.name,
            "currency": company.currency_id.symbol or "",
            "today": str(today),
            "month": str(month),
            "sales": self._sales(company, today, month),
            "energy": self._energy(company, today, month),
            "statuses": self._meters_by_status(company),
            "connections": self._connections(company),
            "arrears": self._arrears(company),
            "top_consumers": self._top_consumers(company, month),
            "channels": self._recharges_by_channel(company, month),
        }

    def _money(self, company, amount):
        return format_amount(self.env, amount, company.currency_id)

    def _sales(self, company, today, month):
        """Recharges (desk and online) less refunds, today and this month."""
        Line = self.env["prepaid.account.line"]
        base = [("company_id", "=", company.id), ("kind", "in", ("recharge", "refund"))]
        result = {}
        for key, first in (("today", today), ("month", month)):
            [[total, count]] = Line._read_group(
                [*base, ("date", ">=", first), ("date", "<=", today)],
                aggregates=["amount:sum", "__count"],
            )
            result[key] = {"amount": total, "shown": self._money(company, total), "count": count}
        return result

    def _energy(self, company, today, month):
        """Charged consumption by utility, today and this month, and by day for the chart."""
        Daily = self.env["prepaid.meter.reading.daily"]
        base = [("company_id", "=", company.id)]
        totals = {}
        for key, first in (("today", today), ("month", month)):
            groups = Daily._read_group(
                [*base, ("day", ">=", first), ("day", "<=", today)],
                groupby=["utility"],
                aggregates=["consumption:sum"],
            )
            totals[key] = {utility or "electricity": round(total, 3) for utility, total in groups}
        first = today - timedelta(days=ENERGY_DAYS - 1)
        by_day = dict(
            Daily._read_group(
                [*base, ("day", ">=", first), ("day", "<=", today), ("utility", "!=", "water")],
                groupby=["day:day"],
                aggregates=["consumption:sum"],
            )
        )
        days = [first + timedelta(days=i) for i in range(ENERGY_DAYS)]
        totals["by_day"] = [{"x": str(day), "y": round(by_day.get(day, 0.0), 3)} for day in days]
        return totals

    def _meters_by_status(self, company):
        Meter = self.env["prepaid.meter"]
        counts = dict(Meter._read_group([("company_id", "=", company.id)], ["status"], ["__count"]))
        return [
            {"status": status, "label": label, "count": counts.get(status, 0)}
            for status, label in Meter._selection_status()
            if status != "removed"
        ]

    def _connections(self, company):
        domain = [("company_id", "=", company.id), ("connection_state", "=", "lost")]
        return {
            "meters": self.env["prepaid.meter"].search_count(
                [*domain, ("state", "=", "in_service")]
            ),
            "gateways": self.env["prepaid.gateway"].search_count(domain),
        }

    def _arrears(self, company):
        [[total, count]] = self.env["prepaid.account"]._read_group(
            [
                ("company_id", "=", company.id),
                ("state", "=", "open"),
                ("billing_type", "=", "prepaid"),
                ("balance", "<", 0),
            ],
            aggregates=["balance:sum", "__count"],
        )
        return {"count": count, "amount": total, "shown": self._money(company, -total)}

    def _top_consumers(self, company, month):
        groups = self.env["prepaid.meter.reading.daily"]._read_group(
            [("company_id", "=", company.id), ("day", ">=", month)],
            groupby=["meter_id"],
            aggregates=["consumption:sum"],
            order="consumption:sum desc",
            limit=TOP_CONSUMERS,
        )
        return [
            {
                "meter_id": meter.id,
                "meter": meter.display_name,
                "tenant": meter.tenant_id.display_name or "",
                "uom": meter.uom_name or "",
                "quantity": round(total, 3),
            }
            for meter, total in groups
            if total
        ]

    def _recharges_by_channel(self, company, month):
        Line = self.env["prepaid.account.line"]
        groups = Line._read_group(
            [("company_id", "=", company.id), ("kind", "=", "recharge"), ("date", ">=", month)],
            groupby=["payment_method"],
            aggregates=["amount:sum"],
        )
        return [
            {
                "method": method or "",
                "label": selection_label(Line, "payment_method", method) or self.env._("Other"),
                "amount": amount,
                "shown": self._money(company, amount),
            }
            for method, amount in groups
        ]
