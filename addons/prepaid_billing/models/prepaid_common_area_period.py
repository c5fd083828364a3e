from datetime import timedelta
from decimal import Decimal

from odoo import fields, models

from prepaid_core import balance


class PrepaidCommonAreaPeriod(models.Model):
    """B15: one cycle of a common meter, split once (a unique constraint): the meter's
    consumption and cost in the cycle, the ledger lines of the let units' parts and what
    was left to the landlord (vacant units, nothing to weigh)."""

    _name = "prepaid.common.area.period"
    _description = "Common-Area Split"
    _order = "period_start desc, id desc"

    common_area_id = fields.Many2one(
        "prepaid.common.area", required=True, index=True, ondelete="restrict", readonly=True
    )
    company_id = fields.Many2one(related="common_area_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="common_area_id.currency_id")
    meter_id = fields.Many2one(related="common_area_id.meter_id")
    period_start = fields.Date(string="Cycle Start", required=True, readonly=True)
    period_end = fields.Date(string="Cycle End", required=True, readonly=True)
    quantity = fields.Float(digits=(16, 6), readonly=True, help="Consumption of the cycle.")
    cost = fields.Float(digits=(16, 4), readonly=True)
    unallocated = fields.Float(
        string="Left to the Landlord",
        digits=(16, 4),
        readonly=True,
        help="Parts of vacant units, or the whole cost when nothing weighs.",
    )
    line_ids = fields.One2many("prepaid.account.line", "common_period_id", string="Ledger Lines")

    _period_uniq = models.Constraint(
        "unique(common_area_id, period_start)", "A common meter's cycle is split once."
    )

    def _post_parts(self, parts):
        """Post ``{unit id: Decimal}`` to the let units' open accounts (locked in id order);
        return the total posted."""
        self.ensure_one()
        units = self.env["prepaid.unit"].browse(list(parts))
        accounts = {
            unit.id: unit.current_tenancy_id.account_id
            for unit in units
            if unit.current_tenancy_id.account_id.state == "open"
        }
        memo = self._memo()
        posted = balance.ZERO
        for unit_id, account in sorted(accounts.items(), key=lambda item: item[1].id):
            amount = parts[unit_id]
            if not amount:
                continue
            account._lock_balance()
            line = balance.LedgerLine(balance.COMMON_AREA, -amount, memo)
            # dated on the day after the cycle, when its cost is known and charged
            account._post_lines(
                [line],
                common_period_id=self.id,
                source_meter_id=self.meter_id.id,
                date=self.period_end,
            )
            account.meter_ids._evaluate_alarms()
            posted += amount
        return posted

    def _memo(self):
        last = self.period_end - timedelta(days=1)
        return f"{self.meter_id.display_name} {self.period_start} - {last}"

    def _summary(self):
        return self.env._(
            "Common meter %(meter)s, %(start)s to %(end)s: %(quantity)s used, cost %(cost)s, "
            "%(count)s accounts charged, %(left)s left to the landlord.",
            meter=self.meter_id.display_name,
            start=self.period_start,
            end=self.period_end - timedelta(days=1),
            quantity=f"{Decimal(f'{self.quantity:.6f}').normalize():f}",
            cost=balance._fmt(Decimal(f"{self.cost:.4f}")),
            count=len(self.line_ids),
            left=balance._fmt(Decimal(f"{self.unallocated:.4f}")),
        )
