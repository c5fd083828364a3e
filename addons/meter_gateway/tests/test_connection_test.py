from odoo import fields
from odoo.tests import tagged

from .common import UJ_PER_KWH, MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestConnectionTest(MeterGatewayCommon):
    """M9/G1: *Test Connection* reads every meter of a simulated collector once, names the
    silent one and stores nothing."""

    def test_collector_with_a_silent_meter(self):
        sim = self._start_simulator()
        collector = sim.collector([["000000007001", "000000007002"]])
        sim.meter("000000007001").import_uj = 42 * UJ_PER_KWH
        gateway, meters = self._gateway_for(collector, "Commissioning", self.unit)
        bus = gateway.bus_ids
        Meter = self.env["prepaid.meter"]
        # wired on the bus but not answering (no such meter behind the collector), still draft
        silent = Meter.create(
            {
                "name": "Silent",
                "address": "000000007099",
                "model_id": self.ddsy.id,
                "unit_id": self.unit2.id,
                "gateway_id": gateway.id,
                "bus_id": bus.id,
            }
        )
        unwired = Meter.create(
            {"name": "Unwired", "model_id": self.ddsy.id, "gateway_id": gateway.id}
        )
        command = self.Command.create({"meter_id": meters[0].id, "kind": "relay_off"})
        readings_before = self.env["prepaid.meter.reading"].search_count([])

        action = gateway.action_test_connection()
        test = self.env[action["res_model"]].browse(action["res_id"])
        by_meter = {line.meter_id: line for line in test.line_ids}
        self.assertEqual(set(by_meter), set(meters | silent | unwired))
        self.assertEqual(by_meter[meters[0]].state, "answered")
        self.assertIn("total 42", by_meter[meters[0]].detail)
        self.assertEqual(by_meter[meters[1]].state, "answered")
        self.assertEqual(by_meter[silent].state, "silent")
        self.assertIn("no answer", by_meter[silent].detail)
        self.assertEqual(by_meter[unwired].state, "not_polled")
        self.assertIn("no bus", by_meter[unwired].detail)
        self.assertEqual(test.summary, "2 of 4 meters answered.")
        # nothing stored, nothing sent: no reading, states as they were, command still queued
        self.assertEqual(self.env["prepaid.meter.reading"].search_count([]), readings_before)
        self.assertEqual(set((meters | silent).mapped("connection_state")), {"never"})
        self.assertEqual(command.state, "queued")
        self.assertEqual(sim.meter("000000007001").relay, "on")
        self.assertFalse(gateway.last_poll_at)

    def test_mqtt_gateway_shows_last_seen(self):
        gateway = self.env["prepaid.gateway"].create(
            {"name": "4G cloud", "gateway_type": "mqtt", "site_id": self.site.id}
        )
        seen = self._create_meter("Seen", "000000007101", self.unit)
        never = self._create_meter("Never", "000000007102", self.unit2)
        (seen | never).write({"gateway_id": gateway.id, "bus_id": False})
        seen.latest_id.write(
            {"last_contact_at": fields.Datetime.now(), "connection_state": "online"}
        )
        action = gateway.action_test_connection()
        lines = self.env[action["res_model"]].browse(action["res_id"]).line_ids
        self.assertEqual(lines.filtered(lambda line: line.meter_id == seen).state, "answered")
        self.assertTrue(lines.filtered(lambda line: line.meter_id == seen).last_seen_at)
        line = lines.filtered(lambda line: line.meter_id == never)
        self.assertEqual((line.state, line.detail), ("silent", "never seen"))
