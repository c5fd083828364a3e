import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_core import balance, charges

from .prepaid_account import to_money

_logger = logging.getLogger(__name__)


class PrepaidAccount(models.Model):
    """B14: the fixed charges of an account's tariff, once per monthly cycle, and the
    contracted capacity a demand charge is priced on; B2: how many meters share the
    balance, shown on the account and its meters."""

    _inherit = "prepaid.account"

    contracted_capacity = fields.Float(
        string="Contracted Capacity (kVA/kW)",
        digits=(16, 3),
        tracking=True,
        help="Demand charges of the tariff are priced per kVA/kW of it.",
    )
    meter_count = fields.Integer(compute="_compute_meter_count", string="Meters Sharing")

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for account in self:
            account.meter_count = len(account.meter_ids)

    # === FIXED CHARGES (B14) === #
    @api.model
    def _cron_fixed_charges(self, today=None, commit=False):
        """Scheduled: post every fixed charge due by ``today`` (the tariff's local date when
        not given) on each open account whose tariff has one; each account is one
        savepoint (and, from the scheduler, one commit): a run killed and run again charges
        what is left, once (``prepaid.account.line._charge_cycle_uniq``)."""
        accounts = (
            self.sudo()
            .search([("state", "=", "open"), ("tariff_id.charge_ids.active", "=", True)])
            .sorted("id")
        )
        posted = self.env["prepaid.account.line"]
        for index, account in enumerate(accounts, 1):
            try:
                with self.env.cr.savepoint():
                    posted |= account._post_fixed_charges(today)
            except UserError as exc:
                _logger.warning("Prepaid account %s: fixed charges not posted: %s", account.id, exc)
                account.message_post(
                    body=self.env._("Fixed charges not posted: %(error)s", error=exc)
                )
            if commit:
                self.env["ir.cron"]._commit_progress(1, remaining=len(accounts) - index)
        return posted

    def _post_fixed_charges(self, today=None):
        """Post the fixed charges of the account's tariff due by ``today`` that are not
        posted yet (under the account's lock); returns the new ledger lines."""
        self.ensure_one()
        tariff = self.tariff_id
        active = tariff.charge_ids.filtered("active")
        if self.state != "open" or not active:
            return self.env["prepaid.account.line"]
        today = today or tariff._local(fields.Datetime.now()).date()
        self._lock_balance()
        done = self._posted_cycles(active)
        lines, values = [], []
        for charge in active:
            for period, amount in self._charge_cycles(charge, today):
                if (charge.id, period.start) in done or not amount:
                    continue
                memo = self._charge_memo(charge, period)
                lines.append(balance.LedgerLine(balance.FIXED_CHARGE, -amount, memo))
                # dated on the cycle's first day: charged in advance, invoiced with the
                # billing period it opens
                values.append(
                    {"charge_id": charge.id, "charge_period": period.start, "date": period.start}
                )
        records = self.env["prepaid.account.line"]
        for line, value in zip(lines, values, strict=True):
            records |= self._post_lines([line], **value)
        if records:
            self.meter_ids._evaluate_alarms()
        return records

    def _posted_cycles(self, charges_):
        """``{(charge id, cycle start)}`` already posted on the account."""
        lines = (
            self.env["prepaid.account.line"]
            .sudo()
            .search([("account_id", "=", self.id), ("charge_id", "in", charges_.ids)])
        )
        return {(line.charge_id.id, line.charge_period) for line in lines}

    def _charge_cycles(self, charge, today):
        """``[(Period, amount with taxes)]`` of ``charge`` due by ``today`` for this account:
        every cycle from the later of the charge's start and the tenancy's start, the
        first one prorated from that day."""
        opened = self.tenancy_id.date_start or today
        first = max(charge.date_start, opened)
        day = self.tariff_id.billing_day
        result = []
        for period in charges.due_periods(day, first, today):
            amount = charges.cycle_amount(
                charge.charge_type,
                to_money(charge.price),
                period,
                capacity=to_money(self.contracted_capacity),
                active_from=first,
            )
            result.append((period, charge._gross(amount, self.partner_id)))
        return result

    def _charge_memo(self, charge, period):
        return f"{charge.name} {period.start} - {period.end - timedelta(days=1)}"
