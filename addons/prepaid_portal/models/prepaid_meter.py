import hashlib
from datetime import date, datetime, timedelta

from babel.dates import format_skeleton

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, consteq, format_amount
from odoo.tools.misc import babel_locale_parse
from odoo.tools.translate import LazyTranslate

from ..const import READ_REQUEST_COOLDOWN_MINUTES


def token_digest(token):
    """SHA-256 of an access token: meters are looked up by it, so the time a lookup takes
    says nothing about the token itself (T1)."""
    return hashlib.sha256((token or "").encode()).hexdigest()


_lt = LazyTranslate(__name__)

#: the portal's sentences that hold a figure: each one term to translate, the figure inside
PORTAL_SENTENCES = {
    "meter_balance": _lt("Balance on the meter: %(balance)s (reported at %(time)s)"),
    "other_amount": _lt("Other amount (%(low)s to %(high)s)"),
    "read_requested": _lt("Reading requested at %(time)s."),
    "card_credit": _lt("Written to your meter's card at the desk (reference %(reference)s)."),
    "device_credit": _lt("Sent to the meter over its connection (reference %(reference)s)."),
    "credit_amount": _lt("%(meter)s: %(amount)s"),
    "token_reference": _lt("Reference %(reference)s"),
    "recharge_title": _lt("Recharge %(meter)s"),
    "company_mismatch": _lt("You cannot pay for %(company)s with your account."),
    "receipt_title": _lt("Receipt %(name)s"),
    "consumption_title": _lt("Consumption (%(unit)s)"),
    "spent_total": _lt("Charged for this consumption: %(amount)s"),
    "bar_title": _lt("%(period)s: %(quantity)s %(unit)s, %(amount)s"),
    "alert_help": _lt(
        "We tell you once when the credit of account %(account)s falls below your threshold, "
        "and again after it went back above."
    ),
    "code_sent": _lt("Sent by SMS to %(phone)s."),
}


class PrepaidMeter(models.Model):
    """The tenant's side of a meter: the id-less QR landing (T1), "read now" requests (T3)
    and the figures the portal pages show (T5)."""

    _inherit = "prepaid.meter"

    qr_token_digest = fields.Char(
        compute="_compute_qr_token_digest",
        store=True,
        index="btree_not_null",
        copy=False,
        groups="base.group_system",
        help="SHA-256 of the access token of the QR link.",
    )
    read_request_ids = fields.One2many("prepaid.meter.read.request", "meter_id")

    @api.depends("access_token")
    def _compute_qr_token_digest(self):
        for meter in self:
            token = meter.access_token
            meter.qr_token_digest = token_digest(token) if token else False

    @api.model
    def _portal_find_by_token(self, token):
        """The meter whose QR/share token is ``token`` (sudo), or an empty recordset.

        Looked up by the token's digest, then compared in constant time."""
        if not token or len(token) > 128:
            return self.browse()
        meter = (
            self.sudo()
            .with_context(active_test=False)
            .search([("qr_token_digest", "=", token_digest(token))], limit=1)
        )
        if meter and meter.access_token and consteq(meter.access_token, token):
            return meter
        return self.browse()

    # === ALERTS (T6) === #
    def _evaluate_alarms(self, now=None, siblings=False):
        """After billing's alarm machine, the tenants' own thresholds (T6)."""
        res = super()._evaluate_alarms(now=now, siblings=siblings)
        accounts = self.env["prepaid.account"].sudo()
        units = self.filtered("id").unit_id
        if units:
            subscriptions = (
                self.env["prepaid.alert.subscription"]
                .sudo()
                .search(
                    [("account_id.unit_id", "in", units.ids), ("account_id.state", "=", "open")]
                )
            )
            if subscriptions:
                accounts.browse(subscriptions.account_id.ids).invalidate_recordset(
                    ["balance", "available_credit"]
                )
                subscriptions._check_and_notify()
        return res

    # === READ NOW (T3) === #
    def _portal_request_read(self, partner=None):
        """Record a "read now" request for the gateway (meter_gateway serves the pending
        ones); a request still pending or made in the last minutes is reused."""
        self.ensure_one()
        requests = self.env["prepaid.meter.read.request"].sudo()
        since = fields.Datetime.now() - timedelta(minutes=READ_REQUEST_COOLDOWN_MINUTES)
        recent = requests.search(
            [
                ("meter_id", "=", self.id),
                "|",
                ("state", "=", "pending"),
                ("requested_at", ">=", since),
            ],
            limit=1,
            order="requested_at desc",
        )
        if recent:
            return recent
        if self.state != "in_service":
            raise UserError(self.env._("This meter is not in service."))
        read_request = requests.create(
            {"meter_id": self.id, "partner_id": partner.id if partner else False}
        )
        if not self.sudo()._request_reading():
            read_request._mark_served(
                ok=False, note=self.env._("No gateway can read this meter on demand.")
            )
        return read_request

    # === FIGURES (T5) === #
    def _portal_consumption(self, period="month"):
        """The meter's chart figures (:meth:`_consumption_series`) per day (the last 30),
        month (the last 12) or year: ``[(label, quantity)]``, oldest first; a day's label
        is its ISO date, a month's ``YYYY-MM``, a year's ``YYYY``."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        size = {"day": 10, "month": 7, "year": 4}[period]
        series = self._consumption_series(period, today)
        return [(point["x"][:size], point["y"]) for point in series]

    def _portal_spent(self, period, labels):
        """The money the meter's account was charged for consumption in each period of
        ``labels`` (as :meth:`_portal_consumption` names them): ``{label: amount}``."""
        self.ensure_one()
        account = self.account_id
        if not account or not labels:
            return {}
        formats = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "year": "YYYY"}
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT to_char(date, %s) AS label, -SUM(amount) AS spent
                  FROM prepaid_account_line
                 WHERE account_id = %s AND kind = 'deduction' AND to_char(date, %s) = ANY(%s)
                 GROUP BY 1
                """,
                formats[period],
                account.id,
                formats[period],
                list(labels),
            )
        )
        return {row["label"]: float(row["spent"] or 0.0) for row in rows}

    @api.model
    def _portal_sentence(self, key, currency=None, **values):
        """The portal's sentence ``key`` in the user's language, with its figures inside:
        floats as amounts in ``currency`` (when given), datetimes as the portal shows them
        (the user's time zone and date format)."""

        def figure(value):
            if isinstance(value, float) and currency:
                return format_amount(self.env, value, currency)
            if isinstance(value, datetime):  # as the portal's datetime widget shows it
                return self.env["ir.qweb.field.datetime"].value_to_html(value, {})
            return value if isinstance(value, str) else str(value)

        # the sentence's English is the msgid: env._ finds it in this add-on's translations
        figures = {name: figure(value) for name, value in values.items()}
        return self.env._(PORTAL_SENTENCES[key]._source, **figures)

    @api.model
    def _portal_chart_bars(self, consumption, period="month"):
        """``[(label, full label, quantity)]`` of :meth:`_portal_consumption`'s figures: the
        day, month or year in the user's language (``6日`` / ``6`` under a day's bar, ``12月``
        / ``Dec`` under a month's; ``2026年12月`` / ``Dec 2026`` in its tooltip)."""
        locale = babel_locale_parse(self.env.lang or "en_US")
        skeletons = {"day": ("d", "yMMMd"), "month": ("MMM", "yMMM"), "year": ("y", "y")}
        short, full = skeletons.get(period, skeletons["month"])
        bars = []
        for label, quantity in consumption:
            parts = [int(part) for part in label.split("-")]
            day = date(parts[0], *[*parts[1:], 1, 1][:2])
            bars.append(
                (
                    format_skeleton(short, day, locale=locale),
                    format_skeleton(full, day, locale=locale),
                    quantity,
                )
            )
        return bars

    def _portal_recent_readings(self, limit=20):
        self.ensure_one()
        return (
            self.env["prepaid.meter.reading"]
            .sudo()
            .search_fetch(
                [("meter_id", "=", self.id)],
                ["read_at", "total", "consumption", "power", "flags"],
                order="read_at desc",
                limit=limit,
            )
        )

    # === ACTIONS === #
    def action_view_online_recharges(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_portal.prepaid_online_recharge_action"
        )
        action.update({"domain": [("meter_id", "=", self.id)], "context": {}})
        return action

    def action_view_read_requests(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_portal.prepaid_meter_read_request_action"
        )
        action.update({"domain": [("meter_id", "=", self.id)], "context": {}})
        return action
