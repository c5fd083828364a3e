from datetime import date

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestTenancy(PrepaidMeterCommon):
    def _tenancy(self, start, end=None, unit=None, partner=None):
        return self.env["prepaid.tenancy"].create(
            {
                "partner_id": (partner or self.tenant).id,
                "unit_id": (unit or self.unit).id,
                "date_start": start,
                "date_end": end,
            }
        )

    def test_open_assigns_number_meters_and_tenant(self):
        water = self._create_meter("Water T-101", "000000000102", self.unit, model=self.water)
        tenancy = self._tenancy(date(2026, 1, 1))
        self.assertTrue(tenancy.name.startswith("ACC/"))
        tenancy.action_open()
        self.assertEqual(tenancy.state, "open")
        self.assertEqual(tenancy.meter_ids, self.meter | water)  # one household, two meters
        self.assertEqual(self.meter.tenant_id, self.tenant)
        self.assertEqual(self.unit.occupancy, "let")
        self.assertIn(
            self.meter, self.env["prepaid.meter"].search([("tenant_id", "=", self.tenant.id)])
        )

    def test_overlap_refused(self):
        self._tenancy(date(2026, 1, 1), date(2026, 6, 30)).action_open()
        overlapping = self._tenancy(date(2026, 6, 1))
        with self.assertRaisesRegex(ValidationError, "overlap"):
            overlapping.action_open()

    def test_open_ended_tenancy_blocks_later_ones(self):
        self._tenancy(date(2026, 1, 1)).action_open()
        with self.assertRaisesRegex(ValidationError, "overlap"):
            self._tenancy(date(2027, 1, 1)).action_open()

    def test_consecutive_and_other_unit_allowed(self):
        self._tenancy(date(2026, 1, 1), date(2026, 6, 30)).action_open()
        later = self._tenancy(date(2026, 7, 1))
        later.action_open()
        other = self._tenancy(date(2026, 1, 1), unit=self.unit2)
        other.action_open()
        self.assertEqual((later | other).mapped("state"), ["open", "open"])

    def test_drafts_do_not_conflict(self):
        self._tenancy(date(2026, 1, 1))
        self._tenancy(date(2026, 1, 1))
        self.assertEqual(
            self.env["prepaid.tenancy"].search_count([("unit_id", "=", self.unit.id)]), 2
        )

    def test_close_is_cancellation(self):
        tenancy = self._tenancy(date(2026, 1, 1))
        tenancy.action_open()
        tenancy.action_close()
        self.assertEqual(tenancy.state, "closed")
        self.assertTrue(tenancy.date_end)
        self.assertFalse(self.meter.tenant_id)
        with self.assertRaises(UserError):
            tenancy.action_close()

    def test_end_before_start_refused(self):
        with self.assertRaises(ValidationError):
            self._tenancy(date(2026, 5, 1), date(2026, 4, 1))
