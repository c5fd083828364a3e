import csv
import io
import json
import logging
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_UP, Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, groupby

from prepaid_core import alarm, balance, readings
from prepaid_core import tariff as engine
from prepaid_core.readings import REGISTER_BANDS

from ..const import DEDUCTION_BATCH_SIZE, DEDUCTION_LOCK_KEY

_logger = logging.getLogger(__name__)

ZERO = balance.ZERO
#: COPY options: tab-separated CSV (quoting by the csv module); empty is NULL
COPY_CSV = "WITH (FORMAT csv, DELIMITER E'\\t', NULL '')"


#: account fields the alarm state machine reads: a change evaluates its meters again
ACCOUNT_ALARM_FIELDS = frozenset(
    {
        "alarm1_threshold",
        "alarm2_threshold",
        "overdraft_limit",
        "reminder_minutes",
        "preset_credit",
    }
)


def to_money(value):
    """A float read from the ORM (4-decimal numeric column) as an exact Decimal."""
    return Decimal(f"{value or 0.0:.4f}")


class PrepaidAccount(models.Model):
    """B2: the prepaid account of a tenancy; every meter of the tenancy's unit draws on it.

    ``balance`` (4 decimals) is kept equal to the sum of the ledger lines: it is only ever
    changed in SQL, in the transaction that inserts the lines, under a row lock on the
    account (:meth:`_lock_balance`, :meth:`_post_lines`). :meth:`_audit_balance` checks it."""

    _name = "prepaid.account"
    _description = "Prepaid Account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(related="tenancy_id.name", store=True, string="Account Number")
    tenancy_id = fields.Many2one(
        "prepaid.tenancy", required=True, ondelete="restrict", index=True, check_company=True
    )
    partner_id = fields.Many2one(related="tenancy_id.partner_id", store=True, string="Tenant")
    unit_id = fields.Many2one(related="tenancy_id.unit_id", store=True)
    site_id = fields.Many2one(related="tenancy_id.site_id")
    company_id = fields.Many2one(related="tenancy_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    meter_ids = fields.Many2many(related="tenancy_id.meter_ids")
    state = fields.Selection(
        [("open", "Open"), ("closed", "Closed")], default="open", required=True, tracking=True
    )
    balance = fields.Float(
        digits=(16, 4), readonly=True, copy=False, help="Sum of the ledger lines, 4 decimals."
    )
    available_credit = fields.Float(
        digits=(16, 4),
        compute="_compute_available_credit",
        help="Balance plus the preset credit not yet recovered: what alarms compare.",
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        tracking=True,
        check_company=True,
        help="Tariff of the account's meters (a meter may have its own).",
    )
    preset_credit = fields.Float(
        string="Preset Credit Granted",
        digits=(16, 4),
        tracking=True,
        help="B7: credit a new meter may use before the first recharge; the first recharges "
        "recover it first.",
    )
    preset_recovered = fields.Float(digits=(16, 4), readonly=True, copy=False)
    preset_outstanding = fields.Float(digits=(16, 4), compute="_compute_available_credit")
    overdraft_limit = fields.Float(
        digits=(16, 4),
        tracking=True,
        help="B6: credit line below zero before supply is cut; repaid on the next recharge.",
    )
    alarm1_threshold = fields.Float(string="Alarm 1", digits=(16, 4), default=20.0, tracking=True)
    alarm2_threshold = fields.Float(string="Alarm 2", digits=(16, 4), default=5.0, tracking=True)
    reminder_minutes = fields.Integer(
        string="Reminder Cut (min)", default=2, help="Supply cut below alarm 2, 0 for none."
    )
    last_recharge_at = fields.Datetime(readonly=True, copy=False)
    closing_due = fields.Float(
        digits=(16, 4), readonly=True, copy=False, help="Owed by the tenant at cancellation."
    )
    notice_keys = fields.Json(copy=False, help="Keys of the latest alarm notices sent.")
    line_ids = fields.One2many("prepaid.account.line", "account_id", string="Ledger")

    _tenancy_uniq = models.Constraint("unique(tenancy_id)", "A tenancy has one prepaid account.")

    @api.depends("balance", "preset_credit", "preset_recovered")
    def _compute_available_credit(self):
        for account in self:
            preset = max(to_money(account.preset_credit) - to_money(account.preset_recovered), ZERO)
            account.preset_outstanding = float(preset)
            account.available_credit = float(
                balance.available_credit(to_money(account.balance), preset)
            )

    @api.constrains("alarm1_threshold", "alarm2_threshold", "overdraft_limit", "reminder_minutes")
    def _check_alarm_settings(self):
        for account in self:
            try:
                account._alarm_settings()
            except alarm.AlarmError as exc:
                raise ValidationError(str(exc)) from exc

    @api.constrains("preset_credit")
    def _check_preset_credit(self):
        if any(account.preset_credit < 0 for account in self):
            raise ValidationError(self.env._("The preset credit cannot be negative."))

    def write(self, vals):
        res = super().write(vals)
        if ACCOUNT_ALARM_FIELDS & set(vals):
            # meters the machine already decides for (a new account's wait for its first
            # balance movement)
            self.meter_ids.filtered("alarm_state")._evaluate_alarms()
        if {"tariff_id", "alarm1_threshold", "alarm2_threshold"} & set(vals):
            self.meter_ids._touch_device_settings()  # B1: prices/thresholds held by meters
        return res

    def _alarm_settings(self):
        self.ensure_one()
        return alarm.AlarmSettings(
            alarm1=to_money(self.alarm1_threshold),
            alarm2=to_money(self.alarm2_threshold),
            overdraft_limit=to_money(self.overdraft_limit),
            reminder_cut=timedelta(minutes=max(self.reminder_minutes, 0)),
        )

    # === LEDGER === #
    def _lock_balance(self):
        """Lock the account row; return (balance, preset outstanding) as read under the lock."""
        self.ensure_one()
        self.flush_recordset()
        self.env.cr.execute(
            "SELECT balance::text, preset_credit::text, preset_recovered::text "
            "FROM prepaid_account WHERE id = %s FOR UPDATE",
            [self.id],
        )
        bal, granted, recovered = (Decimal(v or 0) for v in self.env.cr.fetchone())
        bal = bal.quantize(balance.MONEY_QUANTUM)
        preset = max(granted - recovered, ZERO).quantize(balance.MONEY_QUANTUM)
        return bal, preset

    def _post_lines(self, lines, **values):
        """Insert engine :class:`~prepaid_core.balance.LedgerLine` s and move the balance by
        their sum, in SQL, in this transaction.  Call :meth:`_lock_balance` first."""
        self.ensure_one()
        if not lines:
            return self.env["prepaid.account.line"]
        records = (
            self.env["prepaid.account.line"]
            .sudo()
            .with_context(prepaid_ledger_post=True)
            .create(
                [
                    {
                        "account_id": self.id,
                        "kind": line.kind,
                        "amount": float(line.amount),
                        "memo": line.memo or False,
                        **values,
                    }
                    for line in lines
                ]
            )
        )
        records.flush_recordset()
        delta = sum((line.amount for line in lines), ZERO)
        preset = sum((line.amount for line in lines if line.kind == balance.PRESET_CREDIT), ZERO)
        self.env.cr.execute(
            "UPDATE prepaid_account SET balance = COALESCE(balance, 0) + %s, "
            "preset_recovered = COALESCE(preset_recovered, 0) + %s WHERE id = %s",
            [delta, preset, self.id],
        )
        self.invalidate_recordset(
            ["balance", "preset_recovered", "available_credit", "preset_outstanding"]
        )
        return records

    def _audit_balance(self):
        """Accounts of ``self`` (all if empty) whose balance is not the sum of their ledger."""
        self.flush_model()
        self.env["prepaid.account.line"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT a.id FROM prepaid_account a
                  LEFT JOIN prepaid_account_line l ON l.account_id = a.id
                 WHERE %s
                 GROUP BY a.id, a.balance
                HAVING COALESCE(a.balance, 0) != COALESCE(SUM(l.amount), 0)
                """,
                SQL("a.id = ANY(%s)", self.ids) if self else SQL("TRUE"),
            )
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _cron_audit_balances(self):
        """B2: every night, check that each balance is the sum of its ledger; a difference
        is logged and posted on the account for a manager."""
        wrong = self.browse()._audit_balance()
        for account in wrong:
            _logger.error("Prepaid account %s: balance differs from its ledger", account.id)
            account.message_post(
                body=self.env._("Audit: the balance differs from the sum of the ledger lines.")
            )
        return wrong

    def action_audit_balance(self):
        wrong = self._audit_balance()
        if wrong:
            raise ValidationError(
                self.env._(
                    "The balance of %(accounts)s differs from the sum of its ledger.",
                    accounts=", ".join(wrong.mapped("display_name")),
                )
            )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("Every balance equals the sum of its ledger."),
                "type": "success",
            },
        }

    def _take_over_preset_credit(self):
        """B7: at account opening, the preset credit of the unit's new meters becomes the
        account's, recovered first from the next recharges (the opening one included)."""
        self.ensure_one()
        meters = self.meter_ids.filtered(lambda m: m.preset_credit > 0 and not m.preset_account_id)
        if not meters:
            return meters
        granted = sum((to_money(m.preset_credit) for m in meters), ZERO)
        self.sudo().preset_credit = float(to_money(self.preset_credit) + granted)
        meters.sudo().preset_account_id = self
        self.message_post(
            body=self.env._(
                "Preset credit of %(amount)s taken over from %(meters)s: recovered from the "
                "first recharge.",
                amount=balance._fmt(granted),
                meters=", ".join(meters.mapped("display_name")),
            )
        )
        return meters

    # === MONEY MOVEMENTS === #
    def _check_open(self):
        self.check_access("write")
        for account in self:
            if account.state != "open":
                raise UserError(
                    self.env._("Account %(name)s is closed.", name=account.display_name)
                )

    def _engine_call(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except balance.BalanceError as exc:
            raise UserError(str(exc)) from exc

    def _recharge(self, amount, payment_method="cash", memo="", reference=None, payment=None):
        """B4: credit ``amount`` (a Decimal or text), settling the preset credit, then the
        overdraft, then the balance (:func:`prepaid_core.balance.settle_recharge`).

        ``payment`` is the ``account.payment`` that collected the money when one exists
        already (an online payment's); the ledger lines link to it.

        With a ``reference`` (a payment's), a second call for the same reference credits
        nothing and returns the lines of the first (a unique index backs it, R1)."""
        self.ensure_one()
        self._check_open()
        bal, preset = self._lock_balance()
        if reference:
            done = self.env["prepaid.account.line"].sudo().search([("reference", "=", reference)])
            if done:
                if done.account_id != self:
                    raise UserError(
                        self.env._("Payment %(ref)s credited another account.", ref=reference)
                    )
                return done
        settlement = self._engine_call(
            balance.settle_recharge, amount, balance=bal, preset=preset, memo=memo
        )
        lines = self._post_lines(
            settlement.lines,
            payment_method=payment_method,
            reference=reference or False,
            payment_id=payment.id if payment else False,
        )
        self.sudo().last_recharge_at = fields.Datetime.now()
        self.message_post(
            body=self.env._(
                "Recharge of %(amount)s (%(method)s): preset credit %(preset)s, overdraft "
                "%(overdraft)s, credited %(credited)s.",
                amount=balance._fmt(balance.money(amount)),
                method=payment_method,
                preset=balance._fmt(settlement.preset_recovered),
                overdraft=balance._fmt(settlement.overdraft_repaid),
                credited=balance._fmt(settlement.credited),
            )
        )
        self.meter_ids._evaluate_alarms()
        return lines

    def _refund(self, amount, payment_method="cash", memo="", reference=None, payment=None):
        """B5: pay back part of the balance; never more than the refundable balance.

        With a ``reference`` (a provider refund's), a second call for the same reference
        debits nothing and returns the line of the first (the ledger's unique index on
        reference and kind backs it, R1); ``payment`` is the outbound payment that paid the
        money back when one exists already."""
        self.ensure_one()
        self._check_open()
        bal, _preset = self._lock_balance()
        if reference:
            done = (
                self.env["prepaid.account.line"]
                .sudo()
                .search([("reference", "=", reference), ("kind", "=", balance.REFUND)])
            )
            if done:
                if done.account_id != self:
                    raise UserError(
                        self.env._("Refund %(ref)s debited another account.", ref=reference)
                    )
                return done
        line = self._engine_call(balance.refund, amount, balance=bal, memo=memo)
        lines = self._post_lines(
            [line],
            payment_method=payment_method,
            reference=reference or False,
            payment_id=payment.id if payment else False,
        )
        self.message_post(
            body=self.env._("Refund of %(amount)s.", amount=balance._fmt(-line.amount))
        )
        self.meter_ids._evaluate_alarms()
        return lines

    def _transfer_to(self, other, amount, memo=""):
        """Move ``amount`` of the balance to ``other`` (meter replacement across accounts)."""
        self.ensure_one()
        (self | other)._check_open()
        first, second = sorted(self | other, key=lambda a: a.id)
        first._lock_balance()
        second._lock_balance()
        bal, _preset = self._lock_balance()
        out_line, in_line = self._engine_call(balance.transfer, amount, balance=bal, memo=memo)
        self._post_lines([out_line])
        other._post_lines([in_line])
        (self | other).meter_ids._evaluate_alarms()

    def action_close(self):
        """B5: cancel the account: charge what is still due, refund the positive balance;
        its tenancy ends with it (M4)."""
        for account in self:
            account._check_open()
            meters = account.with_context(active_test=False).meter_ids
            account._run_deductions(meter_ids=meters.ids, manual=True)
            bal, _preset = account._lock_balance()
            line, due = balance.settle_closing(bal, memo=self.env._("Account cancellation"))
            account._post_lines([line] if line else [])
            account.write({"state": "closed", "closing_due": float(due)})
            if account.tenancy_id.state == "open" and not self.env.context.get(
                "prepaid_tenancy_closing"
            ):
                account.tenancy_id.action_close()  # the meters no longer supply this tenant
            account.message_post(
                body=self.env._(
                    "Account closed: refunded %(refund)s, due from the tenant %(due)s.",
                    refund=balance._fmt(-line.amount if line else ZERO),
                    due=balance._fmt(due),
                )
            )
        return True

    def action_recharge(self):
        self.ensure_one()
        return self._wizard_action("prepaid.account.recharge", self.env._("Recharge"))

    def action_refund(self):
        self.ensure_one()
        return self._wizard_action("prepaid.account.refund", self.env._("Refund"))

    def _wizard_action(self, model, name):
        return {
            "type": "ir.actions.act_window",
            "name": name,
            "res_model": model,
            "view_mode": "form",
            "target": "new",
            "context": {"default_account_id": self.id},
        }

    # === NOTICES === #
    def _send_notice(self, notice):
        """B8: tell the tenant (email from a template, SMS), logged in the chatter; a notice
        key is sent once per account."""
        self.ensure_one()
        keys = list(self.notice_keys or [])
        if notice.key in keys:
            return False
        self.sudo().notice_keys = [*keys, notice.key][-50:]
        partner = self.partner_id
        template = self.env.ref("prepaid_billing.mail_template_prepaid_notice")
        self.sudo().with_context(notice_text=notice.text).message_post_with_source(
            template,
            subtype_xmlid="mail.mt_comment",
            message_type="comment",
            partner_ids=partner.ids,
        )
        if partner.phone:
            self.sudo()._message_sms(notice.text, partner_ids=partner.ids)
        return True

    # === DEDUCTIONS (B3, R11) === #
    @api.model
    def _cron_deduct(self, batch_size=DEDUCTION_BATCH_SIZE):
        return self._run_deductions(batch_size=batch_size, commit=True)

    @api.model
    def action_run_deductions(self):
        count = self._run_deductions(manual=True)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("%(count)s readings charged.", count=count),
                "type": "success",
            },
        }

    @api.model
    def _run_deductions(
        self, meter_ids=None, batch_size=DEDUCTION_BATCH_SIZE, commit=False, manual=False
    ):
        """Charge every chargeable reading not yet charged; return how many were charged.

        One run at a time (a PostgreSQL advisory lock, taken again by each batch's
        transaction): a manual run while another one runs is refused, a scheduled one skips.
        Each batch of meters is one savepoint (and, from the scheduled action, one commit
        through ``ir.cron._commit_progress``): ledger lines,
        balances and the meters' charged-until cursors move together, so a run killed in a
        batch leaves that batch as it was and the next run charges it, once."""
        cr = self.env.cr
        if not self._deduction_lock():
            if manual:
                raise UserError(
                    self.env._("Deductions are being charged right now; try again in a moment.")
                )
            _logger.info("Deduction run skipped: another run holds the lock.")
            return 0
        charged = 0
        ids = self._deduction_candidates(meter_ids)
        remaining = len(ids)
        for start in range(0, len(ids), batch_size):
            # the lock is a transaction lock: each committed batch takes it again, and a run
            # that finds it taken by another one stops (that one charges what is left)
            if start and not self._deduction_lock():
                _logger.info("Deduction run stopped: another run took over.")
                break
            batch = ids[start : start + batch_size]
            with cr.savepoint():
                charged += self._deduct_batch(batch)
            remaining -= len(batch)
            if commit:
                self.env["ir.cron"]._commit_progress(len(batch), remaining=remaining)
        return charged

    @api.model
    def _deduction_lock(self):
        """Take the deduction lock for this transaction (R11); False if another run has it."""
        self.env.cr.execute("SELECT pg_try_advisory_xact_lock(%s)", [DEDUCTION_LOCK_KEY])
        return self.env.cr.fetchone()[0]

    @api.model
    def _deduction_candidates(self, meter_ids=None):
        self.env["prepaid.meter"].flush_model()
        self.env["prepaid.meter.latest"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT m.id FROM prepaid_meter m
                  JOIN prepaid_meter_latest l ON l.id = m.latest_id
                 WHERE m.state != 'draft' AND l.last_reading_at IS NOT NULL
                   AND (m.billing_charged_until IS NULL
                        OR l.last_reading_at > m.billing_charged_until)
                   AND %s
                 ORDER BY m.id
                """,
                SQL("m.id = ANY(%s)", list(meter_ids)) if meter_ids is not None else SQL("TRUE"),
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _deduct_batch(self, meter_ids):
        """Price the new readings of ``meter_ids``; write ledger, balances and cursors."""
        cr = self.env.cr
        cr.execute(
            """
            SELECT m.id, a.id, a.company_id, m.billing_charged_until, m.billing_base_at,
                   m.billing_state, m.billing_tariff_id, pt.id, t.date_start::timestamp,
                   COALESCE(m.multiplier, 1)::text
              FROM prepaid_meter m
              JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
              JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
              -- only a tariff of the meter's utility prices it (a water meter on an account
              -- with an electricity tariff waits for a water tariff of its own)
              LEFT JOIN prepaid_tariff pt
                ON pt.id = COALESCE(m.tariff_id, a.tariff_id) AND pt.utility = m.utility
             WHERE m.id = ANY(%s)
             ORDER BY a.id, m.id
               FOR UPDATE OF a
            """,
            [list(meter_ids)],
        )
        meters = {row[0]: row for row in cr.fetchall() if row[7]}
        if not meters:
            return 0
        tariffs = self.env["prepaid.tariff"].sudo().browse({row[7] for row in meters.values()})
        compiled = {t.id: (t, t._compiled()) for t in tariffs}
        cycles = {t.id: (t.cycle_period, t.billing_day, t.billing_month) for t in tariffs}
        # time-of-use tariffs price the meters' TOU registers when they have them (B3)
        tou = {t.id for t in tariffs if any(t.version_ids.mapped("use_tou"))}
        ids = list(meters)
        cr.execute(
            """
            SELECT r.meter_id, r.read_at, r.consumption::text, r.chargeable, r.flags,
                   r.tou_sharp::text, r.tou_peak::text, r.tou_flat::text, r.tou_valley::text
              FROM unnest(%s::int4[], %s::timestamp[]) AS c(meter_id, since)
              JOIN prepaid_meter_reading_store r
                ON r.meter_id = c.meter_id AND r.read_at > COALESCE(c.since, '-infinity')
             ORDER BY r.meter_id, r.read_at
            """,
            [ids, [meters[i][3] for i in ids]],
        )
        rows_all = cr.fetchall()
        # registers at the start of each interval: only for meters whose new readings have
        # registers at all (most fleets report none, or all of them)
        with_registers = (
            {row[0] for row in rows_all if row[5] or row[6] or row[7] or row[8]} if tou else ()
        )
        base_registers = self._deduct_base_registers(
            [i for i in ids if i in with_registers and meters[i][7] in tou and meters[i][4]],
            meters,
        )
        days = {}  # (account, day) -> [amount, quantity, first, last, count, meters, lines]
        meter_rows, charged = [], 0
        for meter_id, rows in groupby(rows_all, key=lambda row: row[0]):
            (
                _m,
                account_id,
                company_id,
                until,
                base,
                state_json,
                state_tariff,
                tariff_id,
                opened,
                multiplier,
            ) = meters[meter_id]
            tariff, pricer = compiled[tariff_id]
            registers = tariff_id in tou
            multiplier = Decimal(multiplier)
            previous = base_registers.get(meter_id)
            state = None
            if state_json and (
                state_tariff == tariff_id or cycles.get(state_tariff) == cycles[tariff_id]
            ):
                state = engine.CycleState.from_json(state_json)
            local = tariff._local
            # the meter's new intervals, priced in one run: per band from the TOU registers
            # when they are usable and priced, else the total split by time (B3)
            intervals, quantities = [], []
            priced = state.priced_until if state is not None else None
            for _meter, read_at, consumption, chargeable, flags, *tou_values in rows:
                current = dict(zip(REGISTER_BANDS, tou_values, strict=True)) if registers else None
                if read_at < opened:
                    # before the tenancy began: not the tenant's; the next interval starts here
                    base = until = read_at
                    previous = current
                    continue
                if chargeable:
                    end = local(read_at)
                    begin = local(base) if base else end
                    if priced and begin < priced:
                        begin = min(priced, end)
                    consumption = Decimal(consumption) if consumption else ZERO
                    bands = (
                        readings.register_consumption(previous, current, consumption, multiplier)
                        if registers
                        else None
                    )
                    intervals.append((begin, end, consumption if bands is None else bands))
                    quantities.append(consumption)
                    priced = end
                    base = read_at
                    previous = current
                elif flags and "baseline" in flags:
                    base = read_at
                    previous = current
                until = read_at
            try:
                run = pricer.price_run(state, intervals, split_unpriced=True)
            except engine.TariffError as exc:
                _logger.warning("Meter %s not charged: %s", meter_id, exc)
                continue
            state, count = run.state, len(intervals)
            for (begin, end, _consumption), quantity, lines, amount in zip(
                intervals, quantities, run.lines, run.amounts, strict=True
            ):
                key = (account_id, end.date())
                day = days.get(key)
                if day is None:
                    day = days[key] = [ZERO, ZERO, begin, end, 0, {}, {}, company_id]
                day[0] += amount
                day[1] += quantity
                day[2] = min(day[2], begin)
                day[3] = max(day[3], end)
                day[4] += 1
                trace = day[5].setdefault(str(meter_id), [begin.isoformat(), None, 0])
                trace[1] = end.isoformat()
                trace[2] += 1
                for line in lines:
                    # the utility keeps water and power apart for invoicing (B9)
                    lkey = f"{line.version}|{line.band}|{line.step}|{tariff.utility}"
                    acc = day[6].get(lkey)
                    if acc is None:
                        day[6][lkey] = [line.quantity, line.amount, line.unit_price]
                    else:
                        acc[0] += line.quantity
                        acc[1] += line.amount
            charged += count
            meter_rows.append(
                (
                    meter_id,
                    until,
                    base,
                    json.dumps(state.to_json()) if state is not None else None,
                    tariff_id,
                )
            )
        self._deduct_store_lines(days)
        self._deduct_store_meters(meter_rows)
        self.env["prepaid.meter"].browse([row[0] for row in meter_rows])._evaluate_alarms(
            siblings=True
        )
        return charged

    @api.model
    def _deduct_base_registers(self, meter_ids, meters):
        """TOU registers of the reading each meter's next interval starts at."""
        if not meter_ids:
            return {}
        self.env.cr.execute(
            """
            SELECT r.meter_id, r.tou_sharp::text, r.tou_peak::text, r.tou_flat::text,
                   r.tou_valley::text
              FROM unnest(%s::int4[], %s::timestamp[]) AS c(meter_id, base)
              JOIN prepaid_meter_reading_store r
                ON r.meter_id = c.meter_id AND r.read_at = c.base
            """,
            [meter_ids, [meters[i][4] for i in meter_ids]],
        )
        return {
            row[0]: dict(zip(REGISTER_BANDS, row[1:], strict=True))
            for row in self.env.cr.fetchall()
        }

    @api.model
    def _deduct_store_lines(self, days):
        """One consumption line per account and day, created or added to; balances moved."""
        if not days:
            return
        cr = self.env.cr
        now, uid = fields.Datetime.now(), self.env.uid
        accounts = list({key[0] for key in days})
        cr.execute(
            """
            SELECT id, account_id, date, amount::text, quantity::text, reading_from, reading_count,
                   detail
              FROM prepaid_account_line
             WHERE kind = 'deduction' AND account_id = ANY(%s) AND date = ANY(%s)
            """,
            [accounts, list({key[1] for key in days})],
        )
        existing = {(row[1], row[2]): row for row in cr.fetchall()}
        updates, inserts, memos = [], [], {}
        deltas = defaultdict(lambda: ZERO)
        for key, (amount, qty, first, last, count, trace, lines, company_id) in days.items():
            deltas[key[0]] -= amount
            old = existing.get(key)
            if old is None:
                if not amount:
                    continue
                detail = {
                    "meters": trace,
                    "lines": {k: [str(v[0]), str(v[1]), str(v[2])] for k, v in lines.items()},
                }
                inserts.append(
                    (
                        key[0],
                        company_id,
                        -amount,
                        key[1],
                        now,
                        memos.get(key[1])
                        or memos.setdefault(key[1], self.env._("Consumption of %s", key[1])),
                        qty,
                        first,
                        last,
                        count,
                        json.dumps(detail),
                        uid,
                        now,
                        uid,
                        now,
                    )
                )
                continue
            detail = old[7] or {"meters": {}, "lines": {}}
            for meter, (begin, end, n) in trace.items():
                prev = detail["meters"].get(meter)
                detail["meters"][meter] = [prev[0], end, prev[2] + n] if prev else [begin, end, n]
            for lkey, (q, a, price) in lines.items():
                prev = detail["lines"].get(lkey)
                if prev:
                    q, a = Decimal(prev[0]) + q, Decimal(prev[1]) + a
                detail["lines"][lkey] = [str(q), str(a), str(price)]
            updates.append(
                (
                    old[0],
                    Decimal(old[3]) - amount,
                    Decimal(old[4] or 0) + qty,
                    min(old[5], first) if old[5] else first,
                    last,
                    old[6] + count,
                    json.dumps(detail),
                )
            )
        if inserts:
            self._stage(
                "CREATE TEMP TABLE IF NOT EXISTS prepaid_line_staging (account_id int4, "
                "company_id int4, amount numeric, date date, posted_at timestamp, memo varchar, "
                "quantity numeric, reading_from timestamp, reading_to timestamp, "
                "reading_count int4, detail jsonb, create_uid int4, create_date timestamp, "
                "write_uid int4, write_date timestamp) ON COMMIT DROP",
                "TRUNCATE prepaid_line_staging",
                f"COPY prepaid_line_staging FROM STDIN {COPY_CSV}",
                inserts,
            )
            cr.execute(
                """
                INSERT INTO prepaid_account_line (account_id, company_id, amount, date, posted_at,
                    memo, quantity, reading_from, reading_to, reading_count, detail, create_uid,
                    create_date, write_uid, write_date, kind)
                SELECT account_id, company_id, amount, date, posted_at, memo, quantity,
                       reading_from, reading_to, reading_count, detail, create_uid, create_date,
                       write_uid, write_date, 'deduction'
                  FROM prepaid_line_staging
                """
            )
        if updates:
            self._stage(
                "CREATE TEMP TABLE IF NOT EXISTS prepaid_line_update_staging (id int4, "
                "amount numeric, quantity numeric, reading_from timestamp, "
                "reading_to timestamp, reading_count int4, detail jsonb) ON COMMIT DROP",
                "TRUNCATE prepaid_line_update_staging",
                f"COPY prepaid_line_update_staging FROM STDIN {COPY_CSV}",
                updates,
            )
            cr.execute(
                """
                UPDATE prepaid_account_line l
                   SET amount = v.amount, quantity = v.quantity, reading_from = v.reading_from,
                       reading_to = v.reading_to, reading_count = v.reading_count,
                       detail = v.detail, write_date = now() AT TIME ZONE 'UTC'
                  FROM prepaid_line_update_staging v
                 WHERE l.id = v.id
                """
            )
        moved = [(account, delta) for account, delta in deltas.items() if delta]
        if moved:
            self._stage(
                "CREATE TEMP TABLE IF NOT EXISTS prepaid_balance_staging (id int4, delta numeric) "
                "ON COMMIT DROP",
                "TRUNCATE prepaid_balance_staging",
                f"COPY prepaid_balance_staging FROM STDIN {COPY_CSV}",
                moved,
            )
            cr.execute(
                "UPDATE prepaid_account a SET balance = COALESCE(a.balance, 0) + v.delta "
                "FROM prepaid_balance_staging v WHERE a.id = v.id"
            )
        self.browse(accounts).invalidate_recordset(
            ["balance", "available_credit", "preset_outstanding"]
        )
        self.env["prepaid.account.line"].invalidate_model()

    @api.model
    def _stage(self, create, truncate, copy, rows):
        """Rows into a temporary table with COPY (bulk writes without building SQL text)."""
        cr = self.env.cr
        cr.execute(create)
        cr.execute(truncate)
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t").writerows(rows)
        buffer.seek(0)
        cr._obj.copy_expert(copy, buffer)
        cr.execute(truncate.replace("TRUNCATE", "ANALYZE"))

    @api.model
    def _deduct_store_meters(self, meter_rows):
        """Each meter's cursor: up to when it is charged, its last baseline, its cycle state."""
        if not meter_rows:
            return
        self._stage(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_cursor_staging (id int4, until timestamp, "
            "base timestamp, state jsonb, tariff int4) ON COMMIT DROP",
            "TRUNCATE prepaid_cursor_staging",
            f"COPY prepaid_cursor_staging FROM STDIN {COPY_CSV}",
            meter_rows,
        )
        self.env.cr.execute(
            """
            UPDATE prepaid_meter m
               SET billing_charged_until = v.until, billing_base_at = v.base,
                   billing_state = v.state, billing_tariff_id = v.tariff
              FROM prepaid_cursor_staging v
             WHERE m.id = v.id
            """
        )
        self.env["prepaid.meter"].browse([row[0] for row in meter_rows]).invalidate_recordset(
            ["billing_charged_until", "billing_base_at", "billing_state", "billing_tariff_id"]
        )

    # === DEMO === #
    @api.model
    def _demo_open_accounts(self, tariff_ids, water_tariff_id, company_tariffs=None, stories=()):
        """Demo data: an account with some credit for every open tenancy, tariffs of each
        kind in turn (water meters on the water tariff; ``company_tariffs``: ``{company id:
        (tariff ids, water tariff id)}`` for other landlords), then the demo readings
        charged.  ``stories``: ``[(meter address, credit, reminder minutes or None)]``: those
        accounts are left with that little credit once their history is charged (X3: the
        demo's first minutes show alarms and a cut on them)."""
        tenancies = self.env["prepaid.tenancy"].search([("state", "=", "open")], order="id")
        accounts = tenancies._ensure_account() | tenancies.account_ids
        Meter = self.env["prepaid.meter"]
        story_accounts = {}
        for address, credit, reminder in stories:
            account = Meter.search([("address", "=", address)], limit=1).account_id
            if account:
                story_accounts[account] = (Decimal(credit), reminder)
        for index, account in enumerate(accounts.sorted("id")):
            tariffs, water = (company_tariffs or {}).get(
                account.company_id.id, (tariff_ids, water_tariff_id)
            )
            account.tariff_id = tariffs[index % len(tariffs)]
            account.meter_ids.filtered(lambda m: m.utility == "water").tariff_id = water
            if account in story_accounts:
                if story_accounts[account][1] is not None:
                    account.reminder_minutes = story_accounts[account][1]
            elif not account.line_ids:
                account._recharge(str(50 + 25 * (index % 8)), memo="Opening recharge")
        self._run_deductions()
        for account, (credit, _reminder) in story_accounts.items():
            cents = ((credit - Decimal(str(account.balance))) * 100).to_integral_value(ROUND_UP)
            if cents > 0:
                account._recharge(str(cents / 100), memo="Opening recharge")
        return accounts
