from odoo.tests import tagged

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestOverloadCt(PrepaidBillingCommon):
    """B8: the overload limit is compared with the primary-side power of a meter behind a
    CT; a meter applying the limit itself gets it on its own side."""

    def setUp(self):
        super().setUp()
        self.account._recharge("100")
        self.meter.write({"ct_primary": 50, "ct_secondary": 5, "overload_limit": 8.0})

    def test_ct_50_5_meter_reporting_1_kw_trips_an_8_kw_limit(self):
        self._ingest(self.meter, (0, 1000), power=0.7)  # 7 kW flow
        self.assertEqual(self.meter.last_power, 7)
        self.assertEqual(self.meter.desired_relay_state, "on")
        self._ingest(self.meter, (30, 1000.5), power=1.0)  # 10 kW flow
        self.assertEqual(self.meter.last_power, 10)
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertIn("overload", self.meter.desired_relay_reason)
        trip = self.meter.event_ids.filtered(lambda e: e.event_type == "overload")
        self.assertEqual(len(trip), 1)
        self.assertIn("Power 10", trip.reason)

    def test_meter_side_limit_sent_to_a_meter_that_applies_it(self):
        self.assertEqual(self.meter._device_settings()["overload_kw"], "0.8000")
        self.meter.write({"ct_primary": 1, "ct_secondary": 1})
        self.assertEqual(self.meter._device_settings()["overload_kw"], "8.0000")
