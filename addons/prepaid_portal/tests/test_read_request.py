from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestReadRequest(TransactionCase):
    """T3: "read now" asks the meter's gateway; the next reading serves the request."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        site = cls.env["prepaid.site"].create({"name": "Read Park"})
        building = cls.env["prepaid.building"].create({"name": "R", "site_id": site.id})
        unit = cls.env["prepaid.unit"].create({"name": "R-1", "building_id": building.id})
        cls.meter = cls.env["prepaid.meter"].create(
            {
                "name": "Power R-1",
                "model_id": cls.env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
                "unit_id": unit.id,
                "state": "in_service",
            }
        )

    def test_no_gateway_to_ask_fails_with_reason(self):
        request = self.meter._portal_request_read()
        self.assertEqual(request.state, "failed")
        self.assertIn("No gateway", request.note)

    def test_next_reading_serves_pending_requests(self):
        requests = self.env["prepaid.meter.read.request"]
        pending = requests.create({"meter_id": self.meter.id})
        now = fields.Datetime.now().replace(microsecond=0)
        self.env["prepaid.meter.reading"]._ingest(
            [{"meter_id": self.meter.id, "read_at": now - timedelta(minutes=1), "forward_total": 5}]
        )
        self.assertEqual(pending.state, "served")
        self.assertTrue(pending.served_at)
