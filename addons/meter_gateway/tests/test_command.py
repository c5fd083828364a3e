from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestCommand(MeterGatewayCommon):
    def test_r6_outage_off_on_off_only_last_runs(self):
        """R6/R12: off, on, off queued during an outage: only the last stays, the older end
        superseded with their reason and a link to the command that replaced them."""
        off1 = self.Command._queue(self.meter, "relay_off", "credit exhausted")
        on = self.Command._queue(self.meter, "relay_on", "recharge")
        off2 = self.Command._queue(self.meter, "relay_off", "manager force off")
        self.assertEqual((off1 | on).mapped("state"), ["superseded", "superseded"])
        self.assertEqual(off1.superseded_by_id, on)
        self.assertEqual(on.superseded_by_id, off2)
        self.assertIn(f"superseded by newer command #{on.id}", off1.reason_log)
        self.assertIn("manager force off", on.state_reason)
        self.assertEqual(self._active(self.meter), off2)
        self.assertEqual(self.Command._next_for_meters(self.meter), off2)
        # a superseded command never comes back, whatever answers arrive late
        off1._mark_result(True, "late ack")
        self.assertEqual(off1.state, "superseded")
        self.assertIn("late answer ignored", off1.reason_log)

    def test_r6_credit_never_superseded(self):
        first = self.Command._queue(self.meter, "credit", "recharge 1", payload={"amount": 50})
        second = self.Command._queue(self.meter, "credit", "recharge 2", payload={"amount": 20})
        self.assertEqual((first | second).mapped("state"), ["queued", "queued"])
        self.assertEqual(len(self.Command._next_for_meters(self.meter)), 2)

    def test_supersede_is_per_meter_and_purpose(self):
        off = self.Command._queue(self.meter, "relay_off", "cut")
        price = self.Command._queue(self.meter, "price", "new tariff", payload={"price": "0.61"})
        other = self.Command._queue(self.meter2, "relay_on", "restore")
        protect = self.Command._queue(self.meter, "protect_on", "hospital")
        self.assertEqual((off | price | other | protect).mapped("state"), ["queued"] * 4)

    def test_update_state_idempotent(self):
        command = self.Command._queue(self.meter, "relay_off", "cut")
        command._mark_sent()
        self.assertEqual((command.state, command.attempts), ("sent", 1))
        changed = command._update_state(("queued", "sent"), "confirmed", "ack")
        self.assertEqual(changed, command)
        log = command.reason_log
        # again: already there, nothing changes, nothing logged
        self.assertFalse(command._update_state(("queued", "sent"), "confirmed", "ack again"))
        self.assertEqual(command.reason_log, log)
        # not allowed from a final state
        self.assertFalse(command._update_state(("queued",), "failed", "nope"))
        self.assertEqual(command.state, "confirmed")

    def test_retry_then_fail_with_reasons(self):
        """R12: each retry and the final failure write their reason."""
        command = self.Command._queue(self.meter, "relay_off", "cut")
        for attempt in range(1, 4):
            command._mark_sent()
            self.assertEqual(command.attempts, attempt)
            command._mark_result(False, "timeout", error="no answer")
        self.assertEqual(command.state, "failed")
        self.assertIn("retry 2", command.reason_log)
        self.assertIn("retry 3", command.reason_log)
        self.assertIn("giving up after 3 attempts", command.state_reason)
        self.assertEqual(command.last_error, "no answer")

    def test_expiry(self):
        stale = self.Command._queue(self.meter, "relay_off", "cut")
        fresh = self.Command._queue(self.meter2, "relay_off", "cut")
        stale.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        self.assertEqual(self.Command._expire(), stale)
        self.assertEqual((stale.state, fresh.state), ("expired", "queued"))
        self.assertIn("validity ended", stale.reason_log)
        self.assertTrue(stale.done_at)

    def test_batch_command_from_the_meter_list(self):
        """G4/B12: one command per selected meter; a newer batch supersedes the older one."""
        meters = self.meter | self.meter2
        Wizard = self.env["meter.gateway.command.wizard"].with_context(
            active_model="prepaid.meter", active_ids=meters.ids
        )
        wizard = Wizard.create({"kind": "price", "price": 0.6512, "reason": "new tariff"})
        self.assertEqual(wizard.meter_count, 2)
        action = wizard.action_queue()
        batch = self.env["meter.gateway.command.batch"].browse(action["res_id"])
        first = batch.command_ids
        self.assertEqual(first.meter_id, meters)
        self.assertEqual(set(first.mapped(lambda c: c.payload["price"])), {"0.6512"})
        self.assertEqual(batch.name, "Price Issuance: new tariff")
        self.assertEqual(batch.summary, "0 of 2 confirmed, 0 failed")
        self.assertEqual((batch.state, batch.progress), ("in_progress", 0.0))
        second = Wizard.create({"kind": "price", "price": 0.7, "reason": "corrected tariff"})
        second.action_queue()
        self.assertEqual(set(first.mapped("state")), {"superseded"})
        cut = Wizard.create({"kind": "relay_off", "reason": "maintenance"})
        cut.action_queue()
        self.assertEqual(set(meters.mapped("desired_relay_state")), {"off"})
        bad = Wizard.create({"kind": "thresholds", "alarm1": 5, "alarm2": 10, "reason": "x"})
        with self.assertRaisesRegex(UserError, "Alarm 1 must be at least alarm 2"):
            bad.action_queue()

    def test_batch_progress_follows_its_commands(self):
        """M10: "1 of 2 confirmed, 1 failed", and done when none is in progress."""
        meters = self.meter | self.meter2
        wizard = (
            self.env["meter.gateway.command.wizard"]
            .with_context(active_model="prepaid.meter", active_ids=meters.ids)
            .create({"kind": "time_sync", "reason": "clock check"})
        )
        batch = self.env["meter.gateway.command.batch"].browse(wizard.action_queue()["res_id"])
        one, other = batch.command_ids
        one._mark_sent()
        one._mark_result(True, "ack")
        batch.invalidate_recordset()
        self.assertEqual(batch.summary, "1 of 2 confirmed, 0 failed")
        self.assertEqual((batch.state, batch.progress), ("in_progress", 50.0))
        other.max_attempts = 1
        other._mark_sent()
        other._mark_result(False, "timeout")
        batch.invalidate_recordset()
        self.assertEqual(batch.summary, "1 of 2 confirmed, 1 failed")
        self.assertEqual((batch.state, batch.progress), ("done", 100.0))

    def test_read_now_asked_for_a_tenant(self):
        """T3: a tenant's "read now" brings the collector's next poll forward to now."""
        later = fields.Datetime.now() + timedelta(days=1)
        self.gateway.next_poll_at = later
        asked = self.meter._request_reading()
        self.assertEqual(asked, self.meter)
        self.assertLess(self.gateway.next_poll_at, later)
        removed = self._create_meter("Old", "000000000199", state="draft")
        self.assertFalse(removed._request_reading())
