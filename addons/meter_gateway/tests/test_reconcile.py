from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestReconcile(MeterGatewayCommon):
    def setUp(self):
        super().setUp()
        (self.meter | self.meter2)._record_actual_relay("on")
        (self.meter | self.meter2).write({"connection_state": "online"})

    def test_mismatch_queues_one_command(self):
        self.meter._set_desired_relay("off", "credit exhausted")
        commands = self.Command._cron_reconcile(self.meter | self.meter2)
        self.assertEqual(len(commands), 1)
        self.assertEqual((commands.meter_id, commands.kind), (self.meter, "relay_off"))
        self.assertIn("actual relay On, desired Off", commands.reason)
        self.assertEqual(commands.origin, "reconcile")
        # already on its way: nothing more
        self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))

    def test_new_intent_acted_on_at_once(self):
        """G4/X3: a new desired state triggers reconciliation now; the command it queues for
        a collector's meter brings the collector's poll forward (no wait for schedules)."""
        reconcile = self.env.ref("meter_gateway.ir_cron_meter_gateway_reconcile")
        poll = self.env.ref("meter_gateway.ir_cron_meter_gateway_poll")
        Trigger = self.env["ir.cron.trigger"].sudo()
        Trigger.search([("cron_id", "in", (reconcile | poll).ids)]).unlink()
        self.gateway.write(
            {
                "gateway_type": "tcp_collector",
                "next_poll_at": fields.Datetime.now() + timedelta(hours=1),
            }
        )
        self.meter._set_desired_relay("off", "credit exhausted")
        self.assertEqual(Trigger.search_count([("cron_id", "=", reconcile.id)]), 1)
        self.meter._set_desired_relay("off", "credit exhausted")  # no change, no trigger
        self.assertEqual(Trigger.search_count([("cron_id", "=", reconcile.id)]), 1)
        commands = self.Command._cron_reconcile(self.meter | self.meter2)
        self.assertEqual(commands.kind, "relay_off")
        self.assertLessEqual(self.gateway.next_poll_at, fields.Datetime.now())
        self.assertEqual(Trigger.search_count([("cron_id", "=", poll.id)]), 1)

    def test_meter_balance_meter_cutting_itself_left_alone(self):
        """B13: a meter that keeps its own balance and cut itself for credit is not switched
        back on by the server; a manager's off is still enforced on it."""
        self.meter.billing_mode = "meter"
        self.meter._record_actual_relay("off")
        self.assertFalse(self.Command._cron_reconcile(self.meter))
        self.meter.billing_mode = "server"
        self.assertEqual(self.Command._cron_reconcile(self.meter).kind, "relay_on")
        self.meter.billing_mode = "meter"
        self.meter._record_actual_relay("on")
        self.meter._set_desired_relay("off", "forced off by a manager")
        self.assertEqual(self.Command._cron_reconcile(self.meter).kind, "relay_off")

    def test_matching_or_unknown_meters_left_alone(self):
        self.meter2.actual_relay_state = "unknown"
        self.meter2._set_desired_relay("off", "cut")
        self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))

    def test_r9_cooldown_after_outage(self):
        """R9: after a long outage, failed and expired commands do not turn into a storm:
        one corrective command per meter per cooldown."""
        self.meter._set_desired_relay("off", "credit exhausted")
        first = self.Command._cron_reconcile(self.meter | self.meter2)
        for _round in range(5):
            first.write({"state": "expired"})  # the outage swallows it
            self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))
        self.assertEqual(self.Command.search_count([("meter_id", "=", self.meter.id)]), 1)
        first.queued_at = fields.Datetime.now() - timedelta(minutes=16)
        second = self.Command._cron_reconcile(self.meter | self.meter2)
        self.assertEqual(len(second), 1)
        self.assertEqual(second.kind, "relay_off")

    def test_meter_reverting_after_a_confirmed_correction_corrected_at_once(self):
        """G4/R9: a correction the meter confirmed ends the episode: when the meter turns
        its relay back (a reset after a power cut, a hand on its switch) it is corrected at
        once, not a cooldown later; one that keeps reverting waits for the cooldown."""
        self.meter._set_desired_relay("off", "credit exhausted")
        for _round in range(3):
            command = self.Command._cron_reconcile(self.meter | self.meter2)
            self.assertEqual((len(command), command.kind), (1, "relay_off"))
            command._mark_sent()
            command._mark_result(True, "relay off")
            self.meter._record_actual_relay("off")
            self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))
            self.meter._record_actual_relay("on")  # the meter restarted with its relay on
        self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))
        corrections = self.Command.search([("meter_id", "=", self.meter.id)])
        self.assertEqual(len(corrections), 3)
        corrections.queued_at = fields.Datetime.now() - timedelta(minutes=16)
        self.assertEqual(len(self.Command._cron_reconcile(self.meter | self.meter2)), 1)

    def test_r7_late_answer_then_one_corrective_command(self):
        """R7: an off command in flight, then a newer on intent confirmed; the off answer
        arrives late: the actual state is recorded and reconciliation issues one on."""
        self.meter._set_desired_relay("off", "credit exhausted")
        off = self.Command._cron_reconcile(self.meter | self.meter2)
        off._mark_sent()
        self.meter._set_desired_relay("on", "recharge")
        on = self.Command._queue(self.meter, "relay_on", "recharge", origin="billing")
        self.assertEqual(off.state, "superseded")
        on._mark_sent()
        on._mark_result(True, "ack")
        # the late answer: the meter executed the off
        off._mark_result(True, "late ack")
        self.meter._record_actual_relay("off")
        self.assertEqual(off.state, "superseded")
        self.assertTrue(self.meter.relay_mismatch)
        off.queued_at = on.queued_at = fields.Datetime.now() - timedelta(minutes=16)
        corrective = self.Command._cron_reconcile(self.meter | self.meter2)
        self.assertEqual(len(corrective), 1)
        self.assertEqual(corrective.kind, "relay_on")
        self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))

    def test_new_intent_replaces_corrective_command(self):
        self.meter._set_desired_relay("off", "cut")
        off = self.Command._cron_reconcile(self.meter | self.meter2)
        self.meter._set_desired_relay("on", "recharge")
        # actual on == desired on: no mismatch, but the pending off must not run
        self.assertFalse(self.meter.relay_mismatch)
        self.assertFalse(self.Command._cron_reconcile(self.meter | self.meter2))
        self.assertEqual(off.state, "superseded")
        self.assertIn("desired relay is now On (recharge)", off.state_reason)
