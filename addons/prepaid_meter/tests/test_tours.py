"""Browser tours in headless Chromium: the Readings menu's review queue, a meter's
consumption chart."""

from odoo import fields
from odoo.tests import HttpCase, tagged

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestReviewQueueTour(PrepaidMeterCommon, HttpCase):
    def test_manager_empties_the_review_queue(self):
        """M5/M8: the Readings menu opens on To Review; a manager selects the flagged
        readings and marks them reviewed; the queue is empty and the readings keep their
        flags."""
        readings = self.env["prepaid.meter.reading"]
        # only this test's rollback waits for review (any other reading is set aside)
        readings.search([("flags", "not in", [False, "baseline"])]).write({"reviewed": True})
        self._ingest(self.meter, (0, 100), (30, 99.0), (60, 100.5))  # baseline, rollback, ok
        manager = self._user(
            "review-manager", "base.group_user,prepaid_meter.group_prepaid_manager"
        )
        manager.password = "review-manager"  # start_tour logs in with the login as password
        self.start_tour(
            "/odoo/action-prepaid_meter.prepaid_meter_reading_action",
            "prepaid_meter_review_queue",
            login="review-manager",
        )
        baseline, rollback, normal = self._readings(self.meter)
        self.assertEqual(rollback.flags, "rollback")
        self.assertTrue(rollback.reviewed)
        self.assertFalse(baseline.reviewed or normal.reviewed)  # (not in the queue)

    def test_meter_form_draws_its_consumption_chart(self):
        """M10: the meter form's Consumption tab draws the chart by day and by month."""
        self.env["prepaid.meter.reading.daily"].create(
            {
                "meter_id": self.meter.id,
                "day": fields.Date.context_today(self.meter),
                "company_id": self.meter.company_id.id,
                "consumption": 3.5,
            }
        )
        manager = self._user("chart-manager", "base.group_user,prepaid_meter.group_prepaid_manager")
        manager.password = "chart-manager"
        self.start_tour(
            f"/odoo/action-prepaid_meter.prepaid_meter_action/{self.meter.id}",
            "prepaid_meter_consumption_chart",
            login="chart-manager",
        )
