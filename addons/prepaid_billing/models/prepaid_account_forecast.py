"""T8: the credit forecast of each prepaid account and its early notice.

A scheduled action reads the consumption lines of the last full days (one query per batch
of accounts), stores each account's daily use and the days its credit lasts
(``prepaid_core.forecast``), and tells a tenant once per recharge when the credit lasts
about as many days as the company's notice says, before the alarm thresholds are reached.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.prepaid_meter.utils import again_if_changed

from prepaid_core import forecast
from prepaid_core.alarm import Notice

from .prepaid_account import to_money

_logger = logging.getLogger(__name__)

NOTICE_FORECAST = "forecast"
FORECAST_BATCH_SIZE = 1000
#: times a batch of the scheduled action is started again when its accounts change meanwhile
FORECAST_TRIES = 5


class PrepaidAccount(models.Model):
    _inherit = "prepaid.account"

    daily_use = fields.Float(
        digits=(16, 4),
        readonly=True,
        copy=False,
        help="Money charged a day on average over the last full days (a week, or the days "
        "since the account was opened); empty when there is no recent consumption.",
    )
    credit_days_left = fields.Float(
        string="Credit Lasts (Days)",
        digits=(16, 1),
        readonly=True,
        copy=False,
        help="Days the credit keeps the supply on at the daily use (the available credit "
        "plus the overdraft allowed, divided by the daily use).",
    )
    forecast_at = fields.Datetime(string="Forecast Updated", readonly=True, copy=False)

    # === FORECAST === #
    @api.model
    def _cron_forecast(self, batch_size=FORECAST_BATCH_SIZE):
        return self._run_forecasts(batch_size=batch_size, commit=True)

    @api.model
    def _run_forecasts(self, batch_size=FORECAST_BATCH_SIZE, commit=False):
        """The forecast of every open prepaid account, a batch at a time; from the scheduled action
        each batch is committed (``_commit_progress``) so a stopped run loses nothing done."""
        # postpaid accounts are invoiced for what they used: no credit to forecast
        accounts = self.search(
            [("state", "=", "open"), ("billing_type", "=", "prepaid")], order="id"
        )
        if commit:  # each batch in a transaction of its own from the first one on
            self.env["ir.cron"]._commit_progress(0, remaining=len(accounts))
        for start in range(0, len(accounts), batch_size):
            batch = accounts[start : start + batch_size]
            if commit:
                batch._update_forecast_again_if_changed()
            else:
                batch._update_forecast()
            remaining = len(accounts) - start - len(batch)
            if commit and not self.env["ir.cron"]._commit_progress(len(batch), remaining=remaining):
                break
        return len(accounts)

    def _update_forecast(self, today=None):
        """Store the forecast of these accounts and send the early notices due."""
        today = today or fields.Date.context_today(self)
        spent = self._forecast_spent_by_day(today)
        results = {account: account._forecast(spent.get(account.id, {}), today) for account in self}
        self._store_forecast(results)
        for account, result in results.items():
            account._send_forecast_notice(result)

    def _update_forecast_again_if_changed(self, tries=FORECAST_TRIES):
        """:meth:`_update_forecast` in a transaction of its own, started again (a new
        snapshot) when a deduction or a recharge of one of these accounts commits meanwhile:
        on a large fleet the charging never stops, and one such batch would otherwise fail
        the whole run, at every run."""

        def again():
            _logger.info("forecast: %s accounts changed meanwhile, again", len(self))
            return True

        return again_if_changed(self.env, self._update_forecast, tries, again)

    def _store_forecast(self, results):
        """One UPDATE for a batch's forecasts (no forecast: 0 a day, 0 days)."""
        if not results:
            return
        self.env.cr.execute(
            SQL(
                """
                UPDATE prepaid_account AS a
                   SET daily_use = f.use, credit_days_left = f.days, forecast_at = %s
                  FROM unnest(%s::int[], %s::numeric[], %s::numeric[]) AS f(id, use, days)
                 WHERE a.id = f.id
                """,
                fields.Datetime.now(),
                [account.id for account in results],
                [result.daily_use or 0 for result in results.values()],
                [result.days_left or 0 for result in results.values()],
            )
        )
        self.browse([account.id for account in results]).invalidate_recordset(
            ["daily_use", "credit_days_left", "forecast_at"]
        )

    def _forecast_credit(self):
        """The credit that keeps the supply on: available credit plus the overdraft allowed."""
        return to_money(self.available_credit) + to_money(self.overdraft_limit)

    def _forecast(self, spent_by_day, today):
        self.ensure_one()
        opened = self.tenancy_id.date_start
        return forecast.forecast(self._forecast_credit(), spent_by_day, today, opened)

    def _forecast_spent_by_day(self, today):
        """``{account id: {day: money charged}}`` over the forecast's window before ``today``."""
        if not self:
            return {}
        query = SQL(
            """
            SELECT account_id, date, (-SUM(amount))::text AS spent
              FROM prepaid_account_line
             WHERE kind = 'deduction' AND account_id = ANY(%s) AND date >= %s AND date < %s
             GROUP BY account_id, date
            """,
            self.ids,
            today - timedelta(days=forecast.WINDOW_DAYS),
            today,
        )
        spent = defaultdict(dict)
        for row in self.env.execute_query_dict(query):
            spent[row["account_id"]][row["date"]] = Decimal(row["spent"])
        return spent

    # === EARLY NOTICE === #
    def _send_forecast_notice(self, result):
        """Tell the tenant the credit lasts about N days, once per recharge, when the
        company's notice says so and the credit is still above the first alarm."""
        self.ensure_one()
        notice_days = self.company_id.prepaid_forecast_notice_days
        credit = to_money(self.available_credit)
        if not forecast.notice_due(
            result.days_left, notice_days, credit, to_money(self.alarm1_threshold)
        ):
            return False
        # once per credit: the newest line that added to the balance names the cycle
        credit_line = self.env["prepaid.account.line"].search(
            [("account_id", "=", self.id), ("amount", ">", 0)], order="id desc", limit=1
        )
        days = forecast.whole_days(result.days_left)
        notice = Notice(
            NOTICE_FORECAST,
            f"{NOTICE_FORECAST}@{credit_line.id}",
            f"Credit for about {days} day(s) left. Please recharge.",
            {"days": days},
        )
        return self._send_notice(notice)

    def _notice_text(self, notice, partner):
        if notice.kind != NOTICE_FORECAST:
            return super()._notice_text(notice, partner)
        env = self.with_context(lang=partner.lang or self.env.lang).env
        days = notice.values["days"]
        if days < 1:
            return env._("Credit for less than a day left at your recent use. Please recharge.")
        return env._(
            "Credit for about %(days)s day(s) left at your recent use. Please recharge.",
            days=days,
        )

    def _forecast_label(self):
        """The forecast as a tenant reads it ("about 3 days of credit left"), or ``""``."""
        self.ensure_one()
        if not self.daily_use or self._forecast_credit() <= 0:
            return ""  # no recent use, or no credit left: the alarms speak
        days = forecast.whole_days(Decimal(str(self.credit_days_left)))
        if days < 1:
            return self.env._("Less than a day of credit left at your recent use")
        return self.env._("About %(days)s day(s) of credit left at your recent use", days=days)


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_forecast_notice_days = fields.Integer(
        string="Credit Forecast Notice (Days)",
        default=3,
        help="Tell tenants when their credit lasts about this many days at their recent use, "
        "before the alarm thresholds are reached (once per recharge). 0: no such notice.",
    )


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_forecast_notice_days = fields.Integer(
        related="company_id.prepaid_forecast_notice_days", readonly=False
    )
