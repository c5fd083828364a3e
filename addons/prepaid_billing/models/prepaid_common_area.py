import logging
from datetime import datetime, time, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from prepaid_core import balance, charges, deduction

_logger = logging.getLogger(__name__)

SPLIT_METHODS = [(method, charges.SPLIT_METHOD_LABELS[method]) for method in charges.SPLIT_METHODS]


class PrepaidCommonArea(models.Model):
    """B15: a building's common meter (stairs, lifts, pumps) whose cost is shared among
    units, by area, by fixed share or by the consumption of the units' own meters.

    Once per monthly cycle (from the billing day), after the common meter has read past
    the cycle's end, the cost of its consumption in the cycle (priced by the tariff) is
    split to 4 decimals so that the parts add up to it exactly
    (:func:`prepaid_core.charges.split_cost`); each let unit's account gets a ledger line
    naming the common meter. A vacant unit's part is not charged (the landlord bears it).
    The common meter itself belongs to no tenancy (no deduction charges it)."""

    _name = "prepaid.common.area"
    _description = "Common-Area Meter"
    _inherit = ["mail.thread"]
    _order = "name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    building_id = fields.Many2one(
        "prepaid.building", required=True, index=True, ondelete="restrict", check_company=True
    )
    company_id = fields.Many2one(related="building_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    meter_id = fields.Many2one(
        "prepaid.meter",
        string="Common Meter",
        required=True,
        ondelete="restrict",
        tracking=True,
        check_company=True,
    )
    tariff_id = fields.Many2one(
        "prepaid.tariff",
        required=True,
        tracking=True,
        check_company=True,
        help="Prices the common meter's consumption; its time zone sets the cycles.",
    )
    method = fields.Selection(
        SPLIT_METHODS, string="Split", required=True, default="area", tracking=True
    )
    billing_day = fields.Integer(default=1, required=True, tracking=True, help="1-28.")
    date_start = fields.Date(
        string="Shared From",
        required=True,
        default=fields.Date.context_today,
        help="No cycle before this day is shared.",
    )
    share_ids = fields.One2many("prepaid.common.area.share", "common_area_id", string="Units")
    period_ids = fields.One2many("prepaid.common.area.period", "common_area_id", string="Periods")

    @api.constrains("billing_day")
    def _check_billing_day(self):
        if any(not 1 <= area.billing_day <= 28 for area in self):
            raise ValidationError(self.env._("The billing day must be between 1 and 28."))

    @api.constrains("meter_id")
    def _check_meter(self):
        for area in self:
            if area.meter_id.account_id:
                raise ValidationError(
                    self.env._(
                        "Meter %(meter)s is charged to account %(account)s already: a common "
                        "meter belongs to no tenancy.",
                        meter=area.meter_id.display_name,
                        account=area.meter_id.account_id.display_name,
                    )
                )

    @api.onchange("building_id")
    def _onchange_building_id(self):
        units = self.env["prepaid.unit"].search([("building_id", "=", self.building_id.id)])
        self.share_ids = [fields.Command.clear()] + [
            fields.Command.create({"unit_id": unit.id, "share": 1.0}) for unit in units
        ]

    # === THE SCHEDULED SPLIT === #
    @api.model
    def _cron_split(self, today=None, commit=False):
        """Scheduled: split every cycle that is over and read past its end, once per area
        and cycle (a unique index backs it); each area is one savepoint (and, from the
        scheduler, one commit)."""
        areas = self.sudo().search([]).sorted("id")
        periods = self.env["prepaid.common.area.period"]
        for index, area in enumerate(areas, 1):
            with self.env.cr.savepoint():
                periods |= area._split_due(today)
            if commit:
                self.env["ir.cron"]._commit_progress(1, remaining=len(areas) - index)
        return periods

    def _split_due(self, today=None):
        """Split this area's cycles due by ``today`` (the tariff's local date by default)."""
        self.ensure_one()
        today = today or self.tariff_id._local(fields.Datetime.now()).date()
        done = set(self.period_ids.mapped("period_start"))
        last_read = self._last_read_at()
        periods = self.env["prepaid.common.area.period"]
        for period in charges.due_periods(self.billing_day, self.date_start, today):
            end = self._utc(period.end)
            if period.start in done or period.end > today or not last_read or last_read < end:
                continue
            periods |= self._split_period(period)
        return periods

    def _last_read_at(self):
        """Time of the common meter's latest stored reading (None without any)."""
        query = SQL(
            "SELECT max(read_at) AS last FROM prepaid_meter_reading_store WHERE meter_id = %s",
            self.meter_id.id,
        )
        return self.env.execute_query_dict(query)[0]["last"]

    def _utc(self, day):
        """The naive UTC time of midnight starting local ``day`` in the tariff's zone."""
        zone = ZoneInfo(self.tariff_id.timezone or "UTC")
        local = datetime.combine(day, time(0), tzinfo=zone)
        return local.astimezone(timezone.utc).replace(tzinfo=None)

    def _split_period(self, period):
        """Price the common meter's cycle, split it and post each let unit's part."""
        self.ensure_one()
        start, end = self._utc(period.start), self._utc(period.end)
        quantity, cost = self._meter_cost(start, end)
        weights = self._weights(start, end)
        record = self.env["prepaid.common.area.period"].create(
            {
                "common_area_id": self.id,
                "period_start": period.start,
                "period_end": period.end,
                "quantity": float(quantity),
                "cost": float(cost),
            }
        )
        if cost and sum(weights.values()):
            parts = charges.split_cost(cost, weights)
        else:
            parts = {}
        unallocated = cost - record._post_parts(parts)
        record.unallocated = float(unallocated)
        self.message_post(body=record._summary())
        return record

    def _meter_cost(self, start, end):
        """``(quantity, cost)`` of the common meter's chargeable readings after ``start``
        up to ``end`` (UTC), priced by the tariff from an empty cycle."""
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT read_at, consumption::text AS consumption, chargeable
                  FROM prepaid_meter_reading_store
                 WHERE meter_id = %(meter)s AND read_at <= %(end)s
                   AND read_at > COALESCE((SELECT max(read_at) FROM prepaid_meter_reading_store
                                            WHERE meter_id = %(meter)s AND read_at <= %(start)s),
                                          '-infinity')
                 ORDER BY read_at
                """,
                meter=self.meter_id.id,
                start=start,
                end=end,
            )
        )
        base = rows[0]["read_at"] if rows and rows[0]["read_at"] <= start else None
        readings = [
            deduction.Reading(
                row["read_at"], Decimal(row["consumption"] or 0), row["chargeable"], False, None
            )
            for row in rows
            if row["read_at"] > start
        ]
        cursor = deduction.MeterCursor(charged_until=start, base_at=base)
        found = deduction.new_intervals(readings, cursor, None, self.tariff_id._local, Decimal(1))
        if not found.intervals:
            return Decimal(0), balance.ZERO
        priced = self.tariff_id._compiled().price_run(None, found.intervals, split_unpriced=True)
        return sum(found.quantities, Decimal(0)), priced.amount

    def _weights(self, start, end):
        """``{unit id: weight}`` of the sharing units by the area's method."""
        self.ensure_one()
        if self.method == "area":
            return {s.unit_id.id: Decimal(f"{s.unit_id.area:.2f}") for s in self.share_ids}
        if self.method == "share":
            return {s.unit_id.id: Decimal(f"{s.share:.4f}") for s in self.share_ids}
        used = self.env.execute_query_dict(
            SQL(
                """
                SELECT m.unit_id, COALESCE(SUM(r.consumption), 0)::text AS used
                  FROM prepaid_meter m
                  JOIN prepaid_meter_reading_store r
                    ON r.meter_id = m.id AND r.read_at > %(start)s AND r.read_at <= %(end)s
                   AND r.chargeable
                 WHERE m.unit_id = ANY(%(units)s) AND m.id != %(meter)s
                 GROUP BY m.unit_id
                """,
                start=start,
                end=end,
                units=self.share_ids.unit_id.ids,
                meter=self.meter_id.id,
            )
        )
        by_unit = {row["unit_id"]: Decimal(row["used"]) for row in used}
        return {unit.id: by_unit.get(unit.id, Decimal(0)) for unit in self.share_ids.unit_id}


class PrepaidCommonAreaShare(models.Model):
    """A unit sharing a common meter's cost, with its fixed share (split by share)."""

    _name = "prepaid.common.area.share"
    _description = "Common-Area Share"
    _order = "common_area_id, id"

    common_area_id = fields.Many2one(
        "prepaid.common.area", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="common_area_id.company_id", store=True, index=True)
    unit_id = fields.Many2one(
        "prepaid.unit",
        required=True,
        ondelete="cascade",
        domain="[('building_id', '=', parent.building_id)]",
    )
    area = fields.Float(related="unit_id.area")
    share = fields.Float(digits=(16, 4), default=1.0, help="Weight of the unit (split by share).")

    _unit_uniq = models.Constraint(
        "unique(common_area_id, unit_id)", "A unit shares a common meter once."
    )
    _share_positive = models.Constraint("CHECK(share >= 0)", "A share cannot be negative.")
