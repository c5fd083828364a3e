"""B15: a common meter's cost of a cycle split among the units by area, share or
consumption: the parts add up to the cost to 4 decimals, each let unit's account gets a
line naming the common meter, once per cycle; vacant units' parts stay with the landlord."""

from datetime import date, datetime, timedelta
from decimal import Decimal

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestCommonArea(PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Unit = cls.env["prepaid.unit"]
        cls.unit.area = 50
        cls.unit2.area = 30
        cls.unit3 = Unit.create({"name": "T-103", "building_id": cls.building.id, "area": 20})
        cls.vacant = Unit.create({"name": "T-104", "building_id": cls.building.id, "area": 20})
        cls.common_unit = Unit.create({"name": "Stairs", "building_id": cls.building.id})
        cls.accounts = cls.account
        for unit, address in ((cls.unit2, "000000000201"), (cls.unit3, "000000000301")):
            cls._create_meter(f"Power {unit.name}", address, unit)
            tenancy = cls.env["prepaid.tenancy"].create(
                {"partner_id": cls.tenant.id, "unit_id": unit.id, "date_start": "2026-01-01"}
            )
            tenancy.action_open()
            cls.accounts |= tenancy.account_id
        cls.common_meter = cls._create_meter("Common stairs", "000000000901", cls.common_unit)
        cls.area = cls.env["prepaid.common.area"].create(
            {
                "name": "Block T stairs",
                "building_id": cls.building.id,
                "meter_id": cls.common_meter.id,
                "tariff_id": cls.flat.id,
                "method": "area",
                "date_start": "2026-03-01",
                "share_ids": [
                    Command.create({"unit_id": unit.id})
                    for unit in (cls.unit, cls.unit2, cls.unit3, cls.vacant)
                ],
            }
        )

    def _read_common(self, *points):
        rows = [
            {"meter_id": self.common_meter.id, "read_at": at, "forward_total": total}
            for at, total in points
        ]
        self.assertFalse(self.env["prepaid.meter.reading"]._ingest(rows)["rejected"])

    def _parts(self):
        return {
            account: Decimal(f"{sum(account.line_ids.mapped('amount')):.4f}")
            for account in self.accounts
        }

    def test_split_by_area_adds_up_to_the_cost(self):
        # March: 33.3334 kWh at 0.5 = 16.6667 (the first reading is the baseline)
        self._read_common(
            (datetime(2026, 3, 1, 0, 30), "100"),
            (datetime(2026, 3, 20), "120"),
            (datetime(2026, 4, 1), "133.3334"),
        )
        periods = self.env["prepaid.common.area"]._cron_split(today=date(2026, 4, 2))
        self.assertEqual(len(periods), 1)
        self.assertEqual(periods.period_start, date(2026, 3, 1))
        self.assertEqual(Decimal(f"{periods.cost:.4f}"), Decimal("16.6667"))
        # areas 50 / 30 / 20 / 20 (vacant): 6.944458.., 4.166675, 2.777783.., 2.777783..:
        # rounded down 16.6664, the 3 missing 1/10000s to the largest remainders
        parts = self._parts()
        self.assertEqual(
            [parts[account] for account in self.accounts],
            [Decimal("-6.9444"), Decimal("-4.1667"), Decimal("-2.7778")],
        )
        left = Decimal(f"{periods.unallocated:.4f}")
        self.assertEqual(left, Decimal("2.7778"))
        self.assertEqual(-sum(parts.values()) + left, Decimal("16.6667"), "exactly the cost")
        for line in periods.line_ids:
            self.assertEqual(line.kind, "common_area")
            self.assertEqual(line.source_meter_id, self.common_meter)
            self.assertIn("Common stairs", line.memo)
        self.assertFalse(self.accounts._audit_balance())
        # once per cycle
        self.assertFalse(self.env["prepaid.common.area"]._cron_split(today=date(2026, 4, 3)))
        self.assertEqual(self._parts(), parts)

    def test_cycle_waits_for_its_end_and_a_reading_past_it(self):
        self._read_common((datetime(2026, 3, 1, 1), "100"), (datetime(2026, 3, 31), "110"))
        Area = self.env["prepaid.common.area"]
        self.assertFalse(Area._cron_split(today=date(2026, 3, 31)), "cycle not over")
        self.assertFalse(Area._cron_split(today=date(2026, 4, 5)), "no reading past its end")
        self._read_common((datetime(2026, 4, 1, 0, 10), "111"))
        self.assertEqual(len(Area._cron_split(today=date(2026, 4, 5))), 1)

    def test_split_by_share_and_by_consumption(self):
        self._read_common(
            (datetime(2026, 3, 1, 1), "100"),
            (datetime(2026, 3, 31, 23), "130"),
            (datetime(2026, 4, 1, 1), "131"),
        )
        self.area.method = "share"
        shares = {self.unit: 1, self.unit2: 1, self.unit3: 1, self.vacant: 0}
        for share in self.area.share_ids:
            share.share = shares[share.unit_id]
        period = self.area._split_due(today=date(2026, 4, 2))
        # 30 kWh at 0.5 = 15 in three equal parts
        self.assertEqual(set(self._parts().values()), {Decimal("-5")})
        self.assertEqual(period.unallocated, 0)
        # April (40 kWh, 20.00) by the consumption of the units' own meters: 10, 0, 30
        self.area.method = "consumption"
        t0 = datetime(2026, 4, 1)
        for account, used in zip(self.accounts, (10, 0, 30), strict=True):
            meter = account.meter_ids
            rows = [
                {"meter_id": meter.id, "read_at": t0 + timedelta(hours=1), "forward_total": 500},
                {
                    "meter_id": meter.id,
                    "read_at": t0 + timedelta(days=3),
                    "forward_total": 500 + used,
                },
            ]
            self.env["prepaid.meter.reading"]._ingest(rows)
        self._read_common((datetime(2026, 4, 30, 23), "170"), (datetime(2026, 5, 1, 2), "171"))
        period = self.area._split_due(today=date(2026, 5, 2))
        self.assertEqual(Decimal(f"{period.cost:.4f}"), Decimal("20"))
        parts = self._parts()
        self.assertEqual(
            [parts[account] for account in self.accounts],
            [Decimal("-10"), Decimal("-5"), Decimal("-20")],
        )

    def test_a_tenants_meter_is_no_common_meter(self):
        with self.assertRaises(ValidationError):
            self.area.meter_id = self.meter
