"""R7 over real TCP, R12, and the delivery rules of the device API's command queue."""

from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestRequirements(MeterGatewayCommon):
    def test_r7_answer_after_a_newer_intent_over_tcp(self):
        """R7: a relay-off goes on the wire; before its answer is written a recharge asks
        for supply on.  The off ran on the (simulated) meter: the actual state is recorded,
        the late answer changes nothing else, and reconciliation issues one relay-on."""
        sim = self._start_simulator()
        collector = sim.collector([["009100000001", "009100000002"]])
        gateway, meters = self._gateway_for(collector, "R7 Collector", self.unit)
        meter = meters[0]
        gateway._poll()
        meter._set_desired_relay("off", "credit exhausted")
        off = self.Command._cron_reconcile(meters)
        Gateway = type(gateway)
        original = Gateway._apply_poll_results

        def newer_intent_first(self_gateway, results, polled, commands):
            # the device answered over TCP; the newer intent is committed first
            meter._set_desired_relay("on", "recharge")
            self.Command._cron_reconcile(meters)
            return original(self_gateway, results, polled, commands)

        with patch.object(Gateway, "_apply_poll_results", newer_intent_first):
            gateway._poll()
        sim_meter = sim.meter(meter.address)
        self.assertEqual(sim_meter.relay, "off")  # it did run
        self.assertEqual(off.state, "superseded")
        self.assertIn("desired relay is now On (recharge)", off.state_reason)
        self.assertIn("late answer ignored", off.reason_log)
        self.assertEqual(meter.actual_relay_state, "off")  # recorded
        self.assertTrue(meter.relay_mismatch)
        corrective = self.Command._cron_reconcile(meters)
        self.assertEqual((len(corrective), corrective.kind), (1, "relay_on"))
        self.assertFalse(self.Command._cron_reconcile(meters))  # one, not a storm
        gateway._poll()
        self.assertEqual((corrective.state, sim_meter.relay), ("confirmed", "on"))
        self.assertEqual(sim_meter.relay_toggles, 2)

    def test_r12_every_decision_writes_its_reason(self):
        """R12: supersede, retry, failure, expiry and reconciliation each log a reason."""
        self.meter._record_actual_relay("on")
        self.meter._set_desired_relay("off", "credit exhausted")
        reconciled = self.Command._cron_reconcile(self.meter | self.meter2)
        self.assertIn("reconciliation: actual relay On, desired Off", reconciled.reason)
        newer = self.Command._queue(self.meter, "relay_off", "manager cut")
        self.assertEqual(reconciled.state, "superseded")
        self.assertIn(f"superseded by newer command #{newer.id}", reconciled.state_reason)
        newer._mark_sent()
        newer._mark_result(False, "no answer")
        self.assertIn("no answer; retry 2", newer.state_reason)
        newer.max_attempts = 2
        newer._mark_sent()
        newer._mark_result(False, "no answer")
        self.assertEqual(newer.state, "failed")
        self.assertIn("giving up after 2 attempts", newer.state_reason)
        price = self.Command._queue(self.meter, "price", "tariff", payload={"price": "0.6"})
        price.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        self.Command._expire()
        self.assertEqual(price.state, "expired")
        self.assertIn("validity ended", price.state_reason)
        for command in reconciled | newer | price:
            lines = command.reason_log.splitlines()
            self.assertGreaterEqual(len(lines), 2)
            self.assertTrue(all(line.split(": ", 1)[1] for line in lines), lines)

    def test_unanswered_commands_resent_with_same_id_then_failed(self):
        gateway = self.meter.gateway_id
        gateway.command_ack_timeout = 5
        command = self.Command._queue(self.meter, "price", "tariff", payload={"price": "0.7"})
        first = gateway._api_fetch_commands()["commands"]
        self.assertEqual([(c["id"], c["attempt"]) for c in first], [(command.id, 1)])
        self.assertFalse(gateway._api_fetch_commands()["commands"])  # not answered yet
        for attempt in (2, 3):
            command.sent_at = fields.Datetime.now() - timedelta(minutes=6)
            again = gateway._api_fetch_commands()["commands"]
            self.assertEqual([(c["id"], c["attempt"]) for c in again], [(command.id, attempt)])
        command.sent_at = fields.Datetime.now() - timedelta(minutes=6)
        self.assertFalse(gateway._api_fetch_commands()["commands"])
        self.assertEqual(command.state, "failed")
        self.assertIn("no answer after 3 attempts", command.state_reason)

    def test_undelivered_command_requeued_without_using_an_attempt(self):
        gateway = self.meter.gateway_id
        credit = self.Command._queue(self.meter, "credit", "recharge", payload={"amount": "5"})
        gateway._api_fetch_commands()
        self.assertEqual((credit.state, credit.attempts), ("sent", 1))
        answer = gateway._api_ack(
            {
                "acks": [
                    {
                        "id": credit.id,
                        "address": self.meter.address,
                        "success": False,
                        "delivered": False,
                        "reason": "away",
                    }
                ]
            }
        )
        self.assertEqual(answer["acks"], [{"id": credit.id, "state": "queued"}])
        self.assertEqual(credit.attempts, 0)
        self.assertIn("not delivered (away)", credit.state_reason)
        sequence = credit.payload["sequence"]
        gateway._api_fetch_commands()
        self.assertEqual(credit.payload["sequence"], sequence)  # the same token again

    def test_permanently_refused_command_fails_without_retry(self):
        gateway = self.meter.gateway_id
        command = self.Command._queue(self.meter, "zeroing", "move-out")
        gateway._api_fetch_commands()
        gateway._api_ack(
            {
                "acks": [
                    {
                        "id": command.id,
                        "address": self.meter.address,
                        "success": False,
                        "permanent": True,
                        "reason": "zeroing is not supported over Bluetooth",
                    }
                ]
            }
        )
        self.assertEqual((command.state, command.attempts), ("failed", 1))
        self.assertIn("not supported over Bluetooth", command.state_reason)
