"""B8, R11: the deduction queues its notices in its own transaction; their scheduled action
sends each one once, and keeps one it cannot send with its reason."""

import importlib.util
import os

from odoo.modules.module import get_module_path
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_core.alarm import Notice

from .common import MockSmsGatewayMixin, PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestNoticeQueue(MockSmsGatewayMixin, PrepaidBillingCommon):
    def setUp(self):
        super().setUp()
        self.sent = self._mock_sms_gateway()
        self.tenant.phone = "+32 470 12 34 56"
        self.notices = self.env["prepaid.account.notice"]
        self.cron = self.env.ref("prepaid_billing.ir_cron_prepaid_send_notices")
        self.account._recharge("25")
        self._ingest(self.meter, (0, 1000))
        self._deduct()

    def _comments(self):
        return self.account.message_ids.filtered(lambda m: m.message_type == "comment")

    def _cross_alarm1(self):
        """12 kWh at 0.50: 25 - 6 = 19, below alarm 1 (20)."""
        self._ingest(self.meter, (60, 1010), (120, 1012))
        self._deduct()

    def test_deduction_queues_and_the_action_sends_once(self):
        comments = self._comments()
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)])
        self._cross_alarm1()
        self.assertEqual(self.meter.alarm_level, "alarm1")
        notice = self.notices.search([("account_id", "=", self.account.id)])
        self.assertRecordValues(notice, [{"kind": "alarm1", "state": "queued"}])
        self.assertIn("Credit is low", notice.text)
        self.assertEqual(self._comments(), comments, "nothing posted inside the deduction")
        self.assertFalse(self.sent)
        self.assertTrue(
            self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)]) - triggers,
            "the sending action is asked to run once the deduction commits",
        )

        self.assertEqual(self.notices._send_queued(), 1)
        self.assertEqual(notice.state, "sent")
        self.assertTrue(notice.sent_at)
        (message,) = self._comments() - comments
        self.assertIn("Credit is low: ", message.body)
        self.assertIn("19.00 left (alarm 1 at ", message.body)
        self.assertEqual(len(self.sent), 1)
        self.assertIn("Credit is low", self.sent[0]["body"])

        # run again (a job killed after its commit and started again): nothing twice
        self.assertEqual(self.notices._send_queued(), 0)
        self.assertEqual(len(self._comments() - comments), 1)
        self.assertEqual(len(self.sent), 1)

    def test_the_account_lists_its_notices_to_its_readers(self):
        self._cross_alarm1()
        self.notices._send_queued()
        for group in ("group_prepaid_accountant", "group_prepaid_user"):
            reader = self._user(f"notices_{group}", f"prepaid_meter.{group}")
            account = self.account.with_user(reader)
            self.assertEqual(account.notice_ids.mapped("state"), ["sent"], group)
            self.assertIn("Credit is low", account.notice_ids.text)

    def test_every_sending_action_is_asked_to_run(self):
        """A copy of the sending action is one more cron worker sending (on another node,
        say): queuing asks each active one."""
        copy = self.cron.copy({"name": "Send the notices (second worker)"})
        Trigger = self.env["ir.cron.trigger"]
        before = Trigger.search([("cron_id", "in", (self.cron | copy).ids)])
        self.account._send_notice(Notice("alarm1", "alarm1#copies", "Credit is low.", None))
        asked = Trigger.search([("cron_id", "in", (self.cron | copy).ids)]) - before
        self.assertEqual(asked.cron_id, self.cron | copy)

    def test_a_key_is_queued_once(self):
        notice = Notice("alarm1", "alarm1#7", "Credit is low.", None)
        self.assertTrue(self.account._send_notice(notice))
        self.assertFalse(self.account._send_notice(notice))
        self.notices._send_queued()
        self.assertFalse(self.account._send_notice(notice), "sent: not queued again")
        self.assertEqual(len(self.notices.search([("key", "=", "alarm1#7")])), 1)

    def test_a_rolled_back_deduction_queues_nothing(self):
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            self._cross_alarm1()
            self.assertTrue(self.notices.search([("account_id", "=", self.account.id)]))
            raise ZeroDivisionError
        self.env.invalidate_all()
        self.assertFalse(self.notices.search([("account_id", "=", self.account.id)]))
        self._cross_alarm1()
        self.assertEqual(len(self.notices.search([("account_id", "=", self.account.id)])), 1)

    def test_a_notice_that_cannot_be_sent_is_kept_with_its_reason(self):
        self._cross_alarm1()
        # the template is gone (deleted by hand): the e-mail cannot be rendered
        self.env.ref("prepaid_billing.mail_template_prepaid_notice").unlink()
        with mute_logger("odoo.addons.prepaid_billing.models.prepaid_account_notice"):
            self.notices._send_queued()
        notice = self.notices.search([("account_id", "=", self.account.id)])
        self.assertEqual(notice.state, "failed")
        self.assertIn("mail_template_prepaid_notice", notice.error)
        note = self.account.message_ids.filtered(lambda m: "could not be sent" in (m.body or ""))
        self.assertEqual(len(note), 1)
        self.assertIn("Credit is low", note.body)
        self.assertEqual(self.notices._send_queued(), 0, "a failed notice is not retried")

    def test_keys_sent_before_the_queue_are_not_sent_again(self):
        """The upgrade turns the keys an account kept of the notices it had sent into sent
        notices: an alarm crossing notified before is not notified again."""
        cr = self.env.cr
        cr.execute("ALTER TABLE prepaid_account ADD COLUMN notice_keys jsonb")
        cr.execute(
            "UPDATE prepaid_account SET notice_keys = %s WHERE id = %s",
            ['["alarm1#1", "7:alarm2#3", "postpaid_paid@2026-05-13T00:00:00"]', self.account.id],
        )
        cr.execute(
            "UPDATE prepaid_account SET notice_keys = 'null' WHERE id != %s", [self.account.id]
        )
        path = os.path.join(
            get_module_path("prepaid_billing"), "migrations", "19.0.1.1.0", "post-migrate.py"
        )
        spec = importlib.util.spec_from_file_location("prepaid_billing_notice_migration", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(cr, "19.0.1.0.0")
        migration.migrate(cr, "19.0.1.0.0")  # run twice: nothing doubled
        self.env.invalidate_all()
        notices = self.notices.search([("state", "=", "sent")])
        self.assertEqual(
            sorted(notices.mapped(lambda n: (n.account_id.id, n.kind, n.key, n.state))),
            [
                (self.account.id, "alarm1", "alarm1#1", "sent"),
                (self.account.id, "alarm2", "7:alarm2#3", "sent"),
                (self.account.id, "postpaid_paid", "postpaid_paid@2026-05-13T00:00:00", "sent"),
            ],
        )
        # the crossing already notified queues nothing
        self.assertFalse(self.account._send_notice(Notice("alarm1", "alarm1#1", "Credit is low")))
