import logging
from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, format_amount

from odoo.addons.prepaid_meter.error_texts import error_text
from odoo.addons.prepaid_meter.utils import schedule_manager_activity, selection_label

from prepaid_core import alarm, balance

from ..const import HOT_UPDATE_FILLFACTOR

_logger = logging.getLogger(__name__)

ZERO = balance.ZERO


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
    account (:meth:`_lock_balance`, :meth:`_post_lines`). :meth:`_audit_balance` checks it.
    Here: the ledger, money movements (B4-B7) and notices (B8); the deductions (B3) are in
    ``prepaid_account_deduction.py``."""

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
        help="Credit a new meter may use before the first recharge; the first recharges "
        "recover it first.",
    )
    preset_recovered = fields.Float(digits=(16, 4), readonly=True, copy=False)
    preset_outstanding = fields.Float(digits=(16, 4), compute="_compute_available_credit")
    overdraft_limit = fields.Float(
        digits=(16, 4),
        tracking=True,
        help="Credit line below zero before supply is cut; repaid on the next recharge.",
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
    notice_ids = fields.One2many("prepaid.account.notice", "account_id", string="Notices")
    sms_failure = fields.Char(
        string="SMS Not Sent",
        readonly=True,
        copy=False,
        help="Why the last notice SMS could not be sent (the notice goes by e-mail); cleared "
        "by the next SMS that goes out.",
    )
    line_ids = fields.One2many("prepaid.account.line", "account_id", string="Ledger")

    _tenancy_uniq = models.Constraint("unique(tenancy_id)", "A tenancy has one prepaid account.")

    def init(self):
        res = super().init()
        # each deduction batch moves its accounts' balances (and the forecast writes its
        # figures): half of each page kept free keeps these updates HOT, on their page
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s SET (fillfactor = %s)",
                SQL.identifier(self._table),
                HOT_UPDATE_FILLFACTOR,
            )
        )
        return res

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
                raise ValidationError(error_text(self.env, exc, account.currency_id)) from exc

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
        [row] = self.env.execute_query_dict(
            SQL(
                "SELECT balance::text, preset_credit::text AS granted, "
                "preset_recovered::text AS recovered FROM prepaid_account WHERE id = %s "
                "FOR UPDATE",
                self.id,
            )
        )
        bal, granted, recovered = (
            Decimal(row[name] or 0) for name in ("balance", "granted", "recovered")
        )
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
        query = SQL(
            """
            SELECT a.id FROM prepaid_account a
              LEFT JOIN prepaid_account_line l ON l.account_id = a.id
             WHERE %s
             GROUP BY a.id, a.balance
            HAVING COALESCE(a.balance, 0) != COALESCE(SUM(l.amount), 0)
            """,
            SQL("a.id = ANY(%s)", self.ids) if self else SQL("TRUE"),
        )
        return self.browse([row["id"] for row in self.env.execute_query_dict(query)])

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
            schedule_manager_activity(account, account._audit_wording)
        return wrong

    def _audit_wording(self, env):
        account = self.with_env(env)
        return (
            env._("Balance differs from its ledger: %(account)s", account=account.display_name),
            env._(
                "The nightly audit found that the balance is not the sum of the ledger lines. "
                "Open Reporting > Balances vs Accounting and check the account's last "
                "movements before any refund or closing."
            ),
        )

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
                amount=self._money_text(granted),
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
            raise UserError(error_text(self.env, exc, self[:1].currency_id)) from exc

    def _lines_of_reference(self, reference, domain, error):
        """Ledger lines already posted for a payment's ``reference`` (and ``domain``): a
        second call for it posts nothing (R1). Lines of another account raise ``error``."""
        done = (
            self.env["prepaid.account.line"].sudo().search([("reference", "=", reference), *domain])
        )
        if done and done.account_id != self:
            raise UserError(error)
        return done

    @api.model
    def _payment_values(self, payment_method, reference, payment):
        """Ledger line values of money paid in or out: method, reference, payment."""
        return {
            "payment_method": payment_method,
            "reference": reference or False,
            "payment_id": payment.id if payment else False,
        }

    def _recharge(
        self, amount, payment_method="cash", memo="", reference=None, payment=None, meter=None
    ):
        """B4: credit ``amount`` (a Decimal or text), settling the preset credit, then the
        overdraft, then the balance (:func:`prepaid_core.balance.settle_recharge`).

        ``payment`` is the ``account.payment`` that collected the money when one exists
        already (an online payment's); the ledger lines link to it. ``meter`` is the meter
        the recharge was bought for (R5), one of the account's; the lines name it. A
        meter that keeps its own balance (B13) gets the money as a meter credit in this
        transaction (:meth:`_vend_recharge`).

        With a ``reference`` (a payment's), a second call for the same reference credits
        nothing and returns the lines of the first (a unique index backs it, R1)."""
        self.ensure_one()
        self._check_open()
        meter = self._recharge_meter(meter)
        bal, preset = self._lock_balance()
        if reference:
            error = self.env._("Payment %(ref)s credited another account.", ref=reference)
            if done := self._lines_of_reference(reference, [], error):
                return done
        settlement = self._engine_call(
            balance.settle_recharge, amount, balance=bal, preset=preset, memo=memo
        )
        lines = self._post_lines(
            settlement.lines,
            meter_id=meter.id,
            **self._payment_values(payment_method, reference, payment),
        )
        credit = self._vend_recharge(meter, settlement, lines)
        self.sudo().last_recharge_at = fields.Datetime.now()
        self.message_post(body=self._recharge_message(amount, payment_method, settlement, credit))
        self.meter_ids._evaluate_alarms()
        return lines

    def _recharge_meter(self, meter):
        """The meter a recharge is for: ``meter`` if it is one of the account's (another
        account's reads as a missing one), else the account's only meter that keeps its own
        balance, else none."""
        self.ensure_one()
        meters = self.sudo().meter_ids
        if meter:
            if meter.id not in meters.ids:
                raise UserError(
                    self.env._(
                        "Account %(account)s has no such meter to recharge.",
                        account=self.display_name,
                    )
                )
            return meters.browse(meter.id)
        own_balance = self.sudo()._meter_balance_meters()
        if len(own_balance) > 1:
            raise UserError(
                self.env._(
                    "Account %(account)s has several meters that keep their own balance "
                    "(%(meters)s): choose the meter this recharge is for.",
                    account=self.display_name,
                    meters=", ".join(own_balance.mapped("display_name")),
                )
            )
        return own_balance

    def _meter_balance_meters(self):
        """The account's meters that keep their own balance (B13)."""
        return self.meter_ids.filtered(lambda m: m.billing_mode == "meter")

    def _vend_recharge(self, meter, settlement, lines):
        """B13: a meter that keeps its own balance gets what the recharge adds to the
        balance (overdraft repaid and credited; the preset credit recovered is already on
        board) as one meter credit, which the recharge's lines name."""
        amount = settlement.overdraft_repaid + settlement.credited
        if meter.billing_mode != "meter" or amount <= 0:
            return self.env["prepaid.meter.credit"]
        origin = f"prepaid.account.line,{min(lines.ids)}"
        credit = self.env["prepaid.meter.credit"]._vend(meter, amount, origin)
        lines.sudo().write({"meter_credit_id": credit.id})
        return credit

    def _money_text(self, amount):
        """``amount`` (Decimal, float or text) as the chatter shows it: formatted by Odoo in
        the account's currency, in the user's language (¥ 40.00 for CNY)."""
        self.ensure_one()
        return format_amount(self.env, float(amount), self.currency_id)

    def _recharge_message(self, amount, payment_method, settlement, credit):
        """The chatter text of a recharge; it names the meter credit, never its token."""
        text = self.env._(
            "Recharge of %(amount)s (%(method)s): preset credit %(preset)s, overdraft "
            "%(overdraft)s, credited %(credited)s.",
            amount=self._money_text(amount),
            method=selection_label(
                self.env["prepaid.account.line"], "payment_method", payment_method
            ),
            preset=self._money_text(settlement.preset_recovered),
            overdraft=self._money_text(settlement.overdraft_repaid),
            credited=self._money_text(settlement.credited),
        )
        if credit:
            text += " " + self.env._(
                "Meter credit %(credit)s of %(amount)s for %(meter)s.",
                credit=credit.name,
                amount=self._money_text(credit.amount),
                meter=credit.meter_id.display_name,
            )
        return text

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
            error = self.env._("Refund %(ref)s debited another account.", ref=reference)
            if done := self._lines_of_reference(reference, [("kind", "=", balance.REFUND)], error):
                return done
        line = self._engine_call(balance.refund, amount, balance=bal, memo=memo)
        lines = self._post_lines([line], **self._payment_values(payment_method, reference, payment))
        self.message_post(
            body=self.env._("Refund of %(amount)s.", amount=self._money_text(-line.amount))
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
                    refund=account._money_text(-line.amount if line else ZERO),
                    due=account._money_text(due),
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
        """B8: queue ``notice`` for this account's tenant (sent by its own scheduled action,
        :meth:`_deliver_notice`); a notice key is sent once per account. True if queued."""
        self.ensure_one()
        return bool(self.env["prepaid.account.notice"]._queue([(self.id, notice)]))

    def _deliver_notice(self, notice):
        """Tell the tenant (email from a template, SMS), logged in the chatter; True when an
        SMS went out (it cannot be taken back: the caller commits)."""
        self.ensure_one()
        partner = self.partner_id
        text = self._notice_text(notice, partner)
        self._post_notice_mail(partner, text)
        return bool(partner.phone) and self._send_notice_sms(partner, text)

    def _post_notice_mail(self, partner, text):
        """E-mail ``text`` to ``partner`` with the notice template, posted in the chatter."""
        self.ensure_one()
        template = self.env.ref("prepaid_billing.mail_template_prepaid_notice")
        self.sudo().with_context(notice_text=text).message_post_with_source(
            template,
            subtype_xmlid="mail.mt_comment",
            message_type="comment",
            partner_ids=partner.ids,
        )

    def _notice_text(self, notice, partner):
        """X4/B8: the notice worded in ``partner``'s language, amounts in the account's
        currency (the English wording of prepaid_core when the notice has no values)."""
        self.ensure_one()
        if not notice.values:
            return notice.text
        account = self.with_context(lang=partner.lang or self.env.lang)
        env, values = account.env, notice.values
        if notice.kind == alarm.NOTICE_OVERLOAD:
            if values["automatic"]:
                return env._(
                    "Supply cut: the power drawn was above the meter's limit (overload). It "
                    "comes back on automatically."
                )
            return env._(
                "Supply cut: the power drawn was above the meter's limit (overload). A "
                "manager must reset it."
            )
        money = {
            key: format_amount(env, float(values[key]), account.currency_id)
            for key in ("balance", "alarm1", "alarm2")
        }
        return account._alarm_notice_text(notice.kind, money, values["reminder_minutes"])

    def _alarm_notice_text(self, kind, money, reminder_minutes):
        if kind == alarm.ALARM1:
            return self.env._(
                "Credit is low: %(balance)s left (alarm 1 at %(threshold)s). Please recharge.",
                balance=money["balance"],
                threshold=money["alarm1"],
            )
        if kind == alarm.ALARM2 and reminder_minutes:
            return self.env._(
                "Credit is very low: %(balance)s left (alarm 2 at %(threshold)s). Supply is "
                "cut for %(minutes)s minute(s) as a reminder. Please recharge.",
                balance=money["balance"],
                threshold=money["alarm2"],
                minutes=f"{reminder_minutes:g}",
            )
        if kind == alarm.ALARM2:
            return self.env._(
                "Credit is very low: %(balance)s left (alarm 2 at %(threshold)s). Please recharge.",
                balance=money["balance"],
                threshold=money["alarm2"],
            )
        if kind == alarm.ARREARS:
            return self.env._(
                "Credit used up (%(balance)s): supply is cut until you recharge.",
                balance=money["balance"],
            )
        return self.env._(
            "Credit is back (%(balance)s): supply is restored.", balance=money["balance"]
        )

    def _send_notice_sms(self, partner, text):
        """Text ``partner`` a notice (logged in the chatter); True when the SMS went out.

        Odoo sends it at once through IAP (credits) or an SMS provider module; one it could
        not send (no credit, no account, service unreachable, bad number) is kept on the
        account with its reason, and the caller e-mails the notice instead."""
        self.ensure_one()
        account = self.sudo()
        message = account._message_sms(text, partner_ids=partner.ids)
        failed = (
            self.env["sms.sms"]
            .sudo()
            .search([("mail_message_id", "=", message.id), ("state", "=", "error")])
        )
        if not failed:
            if account.sms_failure:
                account.sms_failure = False
            return True
        reasons = dict(failed._fields["failure_type"]._description_selection(self.env))
        reason = reasons.get(failed[0].failure_type) or reasons["unknown"]
        account.sms_failure = reason
        account.message_post(
            body=self.env._(
                "The SMS to %(number)s could not be sent (%(reason)s): the notice goes by e-mail.",
                number=failed[0].number or partner.phone,
                reason=reason,
            ),
            subtype_xmlid="mail.mt_note",
        )
        return False
