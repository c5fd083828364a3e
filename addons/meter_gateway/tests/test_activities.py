"""M10: work that needs a person becomes a manager's to-do, once per cause: a gateway lost
(done when it answers again) and a command failed after its retries."""

from odoo import fields
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestManagerActivities(MeterGatewayCommon):
    def _todos(self, record):
        todos = record.activity_ids
        managers = self.env.ref("prepaid_meter.group_prepaid_manager").user_ids
        self.assertTrue(all(todo.user_id in managers for todo in todos))
        return todos

    def test_lost_gateway_is_a_todo_until_it_answers(self):
        self.gateway.write({"connection_state": "online", "last_contact_at": fields.Datetime.now()})
        self.assertFalse(self._todos(self.gateway))
        self.gateway.write({"connection_state": "lost"})
        (todo,) = self._todos(self.gateway)
        self.assertEqual(todo.summary, f"Gateway lost: {self.gateway.display_name}")
        self.assertIn("No contact since", str(todo.note))
        # lost again (a later poll): still one to-do
        self.gateway.write({"connection_state": "online"})
        self.assertFalse(self._todos(self.gateway), "marked done when it answers again")
        done = self.gateway.message_ids.filtered(
            lambda m: "The gateway answers again." in str(m.body)
        )
        self.assertTrue(done)
        self.gateway.write({"connection_state": "lost"})
        self.gateway.write({"connection_state": "lost", "poll_failures": 9})
        self.assertEqual(len(self._todos(self.gateway)), 1)

    def test_scheduled_check_marks_gateways_lost_with_a_todo(self):
        self.gateway.write(
            {
                "connection_state": "online",
                "last_contact_at": fields.Datetime.from_string("2020-01-01"),
            }
        )
        self.env["prepaid.meter"]._cron_update_connection_state()
        self.assertEqual(self.gateway.connection_state, "lost")
        self.assertEqual(len(self._todos(self.gateway)), 1)

    def test_failed_command_is_a_todo_on_its_meter_once(self):
        for _i in range(2):
            command = self.Command._queue(self.meter, "relay_off", "cut")
            for _attempt in range(command.max_attempts):
                command._mark_sent()
                command._mark_result(False, "timeout", error="no answer")
            self.assertEqual(command.state, "failed")
        (todo,) = self._todos(self.meter)
        self.assertEqual(todo.summary, "Command failed: Relay Off")
        self.assertIn("giving up after 3 attempts", str(todo.note))

    def test_retried_or_confirmed_commands_need_nobody(self):
        command = self.Command._queue(self.meter, "relay_off", "cut")
        command._mark_sent()
        command._mark_result(False, "timeout")
        command._mark_sent()
        command._mark_result(True, "ack")
        self.assertFalse(self._todos(self.meter))
