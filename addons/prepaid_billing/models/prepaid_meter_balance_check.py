from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, format_amount, format_datetime

from odoo.addons.prepaid_meter.utils import schedule_manager_activity

from prepaid_core import meter_balance as mb

from .prepaid_account import to_money

METER_BALANCE_STATES = [
    (mb.OK, "Agrees"),
    (mb.PENDING, "Tokens Pending"),
    (mb.MISMATCH, "Differs"),
]
#: the fields of a comparison's figures, by verdict attribute
VERDICT_FIELDS = {
    "meter_balance_expected": "expected",
    "meter_balance_reported": "reported",
    "meter_balance_difference": "difference",
    "meter_balance_pending": "pending",
}


def money_field(**kwargs):
    """A 4-decimal money figure the server keeps (not edited by hand)."""
    return fields.Float(digits=(16, 4), readonly=True, copy=False, **kwargs)


def money(text):
    """A 4-decimal column read as text (NULL: zero) as an exact Decimal."""
    return Decimal(text or 0)


class PrepaidMeter(models.Model):
    """B13, M10: a meter that keeps its own balance is reconciled with the server: the
    balance it reported is compared with the credit sold to it minus the consumption charged
    for it (:mod:`prepaid_core.meter_balance`), once the deduction has charged up to the
    reading that reported it. A difference beyond the company's tolerance that pending tokens
    do not explain is flagged for a manager (R12: figures and reason in the chatter), who may
    accept the reported balance as the new base."""

    _inherit = "prepaid.meter"

    billing_charged_amount = money_field(
        string="Consumption Charged",
        help="Money charged for this meter's consumption so far (every account), moved with "
        "its deduction cursor.",
    )
    meter_balance_state = fields.Selection(
        METER_BALANCE_STATES,
        string="Meter Balance Check",
        readonly=True,
        copy=False,
        help="Latest comparison of the balance the meter reported with the credit sold to it "
        "minus the consumption charged for it.",
    )
    meter_balance_expected = money_field(string="Expected Meter Balance")
    meter_balance_reported = money_field(string="Reported Meter Balance")
    meter_balance_difference = money_field(help="Reported minus expected meter balance.")
    meter_balance_pending = money_field(
        string="Tokens Pending", help="Credit sold to the meter but not on it when it reported."
    )
    meter_balance_checked_at = fields.Datetime(readonly=True, copy=False)
    meter_balance_base = money_field(
        string="Accepted Meter Balance",
        help="Balance a manager accepted; before any, the preset credit on board.",
    )
    meter_balance_base_at = fields.Datetime(string="Accepted On", readonly=True, copy=False)
    # the running totals already in the base (prepaid_core.meter_balance.Base)
    meter_balance_base_credited = money_field()
    meter_balance_base_not_carried = money_field()
    meter_balance_base_charged = money_field()
    meter_balance_reported_at = fields.Datetime(
        compute="_compute_meter_balance_reported_at",
        help="Time of the newest reading that carried the meter's own balance.",
    )

    def _compute_meter_balance_reported_at(self):
        reported = self._last_reported_meter_balance()
        for meter in self:
            meter.meter_balance_reported_at = reported.get(meter.id, {}).get("read_at")

    def _last_reported_meter_balance(self):
        """``{meter id: {"balance", "read_at"}}``: the newest reading of each meter of ``self``
        that carried the meter's own balance (a reported 0 counts; meters never reporting one
        are left out). The latest state's ``last_meter_balance`` keeps the figure, not when."""
        ids = [meter_id for meter_id in self.ids if meter_id]
        if not ids:
            return {}
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT m.id AS meter_id, r.meter_balance::text AS balance, r.read_at
                  FROM unnest(%s::int4[]) AS m(id)
                  CROSS JOIN LATERAL (
                      SELECT s.meter_balance, s.read_at
                        FROM prepaid_meter_reading s
                       WHERE s.meter_id = m.id AND s.meter_balance IS NOT NULL
                       ORDER BY s.read_at DESC
                       LIMIT 1
                  ) r
                """,
                ids,
            )
        )
        return {
            row["meter_id"]: {"balance": money(row["balance"]), "read_at": row["read_at"]}
            for row in rows
        }

    # === CHECK === #
    def _reconcile_meter_balance(self):
        """Compare the meter-balance meters of ``self`` whose deduction cursor is at a reading
        that reported a balance; store and flag the verdicts. Returns ``{meter id: Verdict}``."""
        if not self:
            return {}
        verdicts, tolerances = {}, {}
        rows = self._meter_balance_rows()
        # iterate one recordset: the meters' fields are read for all of them at once
        meters = self.browse([row["meter_id"] for row in rows])
        for meter, row in zip(meters, rows, strict=True):
            company = row["company_id"]
            if company not in tolerances:
                tolerances[company] = to_money(
                    self.env["res.company"].browse(company).prepaid_meter_balance_tolerance
                )
            verdict = mb.reconcile(
                money(row["reported"]),
                self._meter_balance_base_of(row),
                meter._meter_balance_figures(row),
                tolerances[company],
            )
            meter._store_meter_balance_verdict(verdict)
            verdicts[meter.id] = verdict
        return verdicts

    def _meter_balance_rows(self):
        """One row per meter-balance meter of ``self`` whose cursor's reading reported a
        balance: that balance, the base, the running totals and the pending credits."""
        self.flush_model()
        self.env["prepaid.meter.credit"].flush_model()
        query = SQL(
            """
            SELECT m.id AS meter_id, m.company_id, r.read_at, r.meter_balance::text AS reported,
                   CASE WHEN m.meter_balance_base_at IS NOT NULL THEN m.meter_balance_base
                        WHEN m.preset_account_id IS NOT NULL THEN m.preset_credit
                        ELSE 0 END::text AS base,
                   m.meter_balance_base_credited::text AS base_credited,
                   m.meter_balance_base_not_carried::text AS base_not_carried,
                   m.meter_balance_base_charged::text AS base_charged,
                   m.billing_charged_amount::text AS charged,
                   c.credited::text AS credited, c.pending
              FROM prepaid_meter m
              JOIN prepaid_meter_reading_store r
                ON r.meter_id = m.id AND r.read_at = m.billing_charged_until
              LEFT JOIN LATERAL (
                  SELECT SUM(cr.amount) AS credited,
                         array_agg(cr.amount::text) FILTER (
                             WHERE cr.state IN ('to_issue', 'issued')
                                OR cr.applied_at > r.read_at) AS pending
                    FROM prepaid_meter_credit cr
                   WHERE cr.meter_id = m.id AND cr.state != 'cancelled'
              ) c ON TRUE
             WHERE m.id = ANY(%s) AND m.billing_mode = 'meter'
               AND r.meter_balance IS NOT NULL
             ORDER BY m.id
            """,
            self.ids,
        )
        return self.env.execute_query_dict(query)

    @api.model
    def _meter_balance_base_of(self, row):
        return mb.Base(
            money(row["base"]),
            money(row["base_credited"]),
            money(row["base_not_carried"]),
            money(row["base_charged"]),
        )

    def _meter_balance_figures(self, row):
        """The meter's running totals now, from a :meth:`_meter_balance_rows` row."""
        self.ensure_one()
        return mb.Figures(
            money(row["credited"]),
            self._meter_credit_not_carried(),
            money(row["charged"]),
            tuple(money(amount) for amount in row["pending"] or ()),
        )

    def _store_meter_balance_verdict(self, verdict):
        """Keep the verdict's figures; a new mismatch is flagged once per episode (until the
        meter agrees again or a manager accepts its balance)."""
        self.ensure_one()
        before = self.meter_balance_state
        values = {name: float(getattr(verdict, attr)) for name, attr in VERDICT_FIELDS.items()}
        values.update(meter_balance_state=verdict.state, meter_balance_checked_at=self.env.cr.now())
        self.sudo().write(values)
        if verdict.state == mb.MISMATCH and before != mb.MISMATCH:
            self._flag_meter_balance_mismatch(verdict)
        elif before == mb.MISMATCH and verdict.state != mb.MISMATCH:
            self.sudo().message_post(
                body=self.env._(
                    "The meter balance agrees again: reported %(reported)s, expected %(expected)s.",
                    reported=self._balance_money(verdict.reported),
                    expected=self._balance_money(verdict.expected),
                )
            )

    def _balance_money(self, amount):
        """``amount`` as the chatter shows it: in the currency of the meter's account (the
        company's without one), formatted by Odoo in the user's language."""
        self.ensure_one()
        currency = self.account_id.currency_id or self.company_id.currency_id
        return format_amount(self.env, float(amount), currency)

    def _flag_meter_balance_mismatch(self, verdict):
        """R12: the figures and the likely reason in the chatter, an activity for a manager."""
        if verdict.difference > 0:
            reason = self.env._(
                "the meter holds more than the credit sold minus the consumption charged: a "
                "tampered meter, or a price change it missed (it deducts at a lower price)"
            )
        else:
            reason = self.env._(
                "the meter holds less than the credit sold minus the consumption charged: a "
                "token never entered, or a price change it missed (it deducts at a higher "
                "price)"
            )
        note = self.env._(
            "Meter balance differs: reported %(reported)s, expected %(expected)s (difference "
            "%(difference)s, tokens pending %(pending)s): %(reason)s.",
            reported=self._balance_money(verdict.reported),
            expected=self._balance_money(verdict.expected),
            difference=self._balance_money(verdict.difference),
            pending=self._balance_money(verdict.pending),
            reason=reason,
        )
        meter = self.sudo()
        meter.message_post(body=note)
        schedule_manager_activity(meter, lambda env: (env._("Meter balance differs"), note))

    @api.model
    def _cron_reconcile_meter_balances(self):
        """Check every meter-balance meter again (tokens confirmed since the last reading)."""
        meters = self.search([("billing_mode", "=", "meter"), ("state", "!=", "draft")])
        return meters._reconcile_meter_balance()

    # === MANAGER DECISION === #
    def action_check_meter_balance(self):
        self._reconcile_meter_balance()
        return True

    def action_accept_meter_balance(self):
        """A manager accepts the balance the meter reported: counting starts again from it
        (R12: who, what and the figures it replaces are logged)."""
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise AccessError(self.env._("Only a prepaid manager may accept a meter balance."))
        rows = {row["meter_id"]: row for row in self._meter_balance_rows()}
        for meter in self:
            row = rows.get(meter.id)
            if row is None:
                raise UserError(
                    self.env._(
                        "%(meter)s: no reported balance to accept yet (it is checked once the "
                        "deduction has charged up to the reading that reported it).",
                        meter=meter.display_name,
                    )
                )
            meter._accept_meter_balance(row)
        self._reconcile_meter_balance()
        return True

    def _accept_meter_balance(self, row):
        self.ensure_one()
        reported = money(row["reported"])
        base = mb.accepted_base(reported, self._meter_balance_figures(row))
        self.sudo().write(
            {
                "meter_balance_base": float(base.amount),
                "meter_balance_base_at": self.env.cr.now(),
                "meter_balance_base_credited": float(base.credited),
                "meter_balance_base_not_carried": float(base.not_carried),
                "meter_balance_base_charged": float(base.charged),
                "meter_balance_state": False,
            }
        )
        self.sudo().message_post(
            body=self.env._(
                "Meter balance of %(reported)s (reported at %(at)s) accepted by %(user)s as the "
                "new base; it was expected to be %(expected)s (difference %(difference)s).",
                reported=self._balance_money(reported),
                at=format_datetime(self.env, row["read_at"]),
                user=self.env.user.name,
                expected=self._balance_money(to_money(self.meter_balance_expected)),
                difference=self._balance_money(to_money(self.meter_balance_difference)),
            )
        )
