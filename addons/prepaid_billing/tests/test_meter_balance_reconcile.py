from datetime import timedelta

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import MockSmsGatewayMixin, PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestMeterBalanceReconcile(MockSmsGatewayMixin, PrepaidBillingCommon):
    """B13, M10: the balance a meter-balance meter reports is compared with the credit sold
    to it minus the consumption charged for it, once the deduction has charged up to the
    reading that reported it; a tampered meter is flagged once, a manager may accept it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        unit = cls.env["prepaid.unit"].create(
            {"name": "M-201", "building_id": cls.building.id, "floor_id": cls.floor.id}
        )
        cls.meter = cls._create_meter("Keypad M-201", "000000000201", unit)
        cls.meter.billing_mode = "meter"
        tenancy = cls.env["prepaid.tenancy"].create(
            {"partner_id": cls.tenant.id, "unit_id": unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        tenancy.account_id.tariff_id = cls.flat  # 0.50 a kWh
        cls.manager = cls._user("recon_boss", "prepaid_meter.group_prepaid_manager")
        cls.operator = cls._user("recon_desk", "prepaid_meter.group_prepaid_user")

    def setUp(self):
        super().setUp()
        self._mock_sms_gateway()
        self._ingest(self.meter, (0, 1000), meter_balance=0.0)
        self.credit = self._vend("100", 1, applied_after=30)

    def _vend(self, amount, number, applied_after=None):
        """A credit sold for the meter; ``applied_after``: the meter applied it that many
        minutes after t0."""
        credit = self.env["prepaid.meter.credit"]._vend(self.meter, amount, f"test,{number}")
        if applied_after is not None:
            credit._mark_applied("Entered on the keypad.")
            credit.applied_at = self.t0 + timedelta(minutes=applied_after)
        return credit

    def _report(self, minutes, total, meter_balance):
        """A reading reporting ``meter_balance``, then the deduction run."""
        self._ingest(self.meter, (minutes, total), meter_balance=meter_balance)
        self._deduct(meter_ids=self.meter.ids)

    def _last_note(self):
        """The latest chatter message with a text (tracking messages have none)."""
        return self.meter.message_ids.filtered("body")[:1].body

    def _activities(self):
        return self.meter.activity_ids.filtered(lambda a: a.summary == "Meter balance differs")

    def test_a_meter_that_follows_its_credit_agrees(self):
        self._report(60, 1010, 95.0)  # 100 sold, 10 kWh used at 0.50
        self.assertEqual(self.meter.meter_balance_state, "ok")
        self.assertEqual(self.meter.meter_balance_expected, 95.0)
        self.assertEqual(self.meter.meter_balance_difference, 0.0)
        self.assertEqual(self.meter.billing_charged_amount, 5.0)
        self.assertTrue(self.meter.meter_balance_checked_at)
        # within the company's tolerance (1.00 by default), not beyond it
        self._report(120, 1020, 90.8)
        self.assertEqual(self.meter.meter_balance_state, "ok")
        self.env.company.prepaid_meter_balance_tolerance = 0.5
        self._report(180, 1030, 85.8)
        self.assertEqual(self.meter.meter_balance_state, "mismatch")

    def test_a_token_not_entered_yet_is_pending(self):
        self._vend("50", 2)  # to issue: not on the meter
        self._report(60, 1010, 95.0)
        self.assertEqual(self.meter.meter_balance_state, "pending")
        self.assertEqual(self.meter.meter_balance_pending, 50.0)
        self.assertEqual(self.meter.meter_balance_difference, -50.0)
        self.assertFalse(self._activities())
        self.assertEqual(self.meter.search_count([("meter_balance_state", "=", "mismatch")]), 0)

    def test_a_token_applied_after_the_reading_is_pending_for_that_reading(self):
        self._vend("50", 2, applied_after=90)
        self._report(60, 1010, 95.0)
        self.assertEqual(self.meter.meter_balance_state, "pending")
        self._report(120, 1020, 140.0)
        self.assertEqual(self.meter.meter_balance_state, "ok")

    def test_a_tampered_meter_is_flagged_once_and_a_manager_accepts_its_balance(self):
        self._vend("50", 2)
        self._report(60, 1010, 95.0)
        self.assertEqual(self.meter.meter_balance_state, "pending")
        self._report(120, 1020, 200.0)  # expected 150 - 10 = 140, 50 of it not entered
        self.assertEqual(self.meter.meter_balance_state, "mismatch")
        self.assertEqual(self.meter.meter_balance_expected, 140.0)
        self.assertEqual(self.meter.meter_balance_difference, 60.0)
        self.assertIn(self.meter, self.meter.search([("meter_balance_state", "=", "mismatch")]))
        message = self._last_note()
        self.assertIn("reported $&nbsp;200.00, expected $&nbsp;140.00", message)  # in the currency
        self.assertIn("tampered", message)
        self.assertEqual(len(self._activities()), 1)
        self.assertIn(self._activities().user_id, self.manager | self.env.ref("base.user_admin"))
        # the same episode: figures updated, no second activity
        self._report(180, 1030, 210.0)
        self.assertEqual(self.meter.meter_balance_difference, 75.0)
        self.assertEqual(len(self._activities()), 1)

        with self.assertRaises(AccessError):
            self.meter.with_user(self.operator).action_accept_meter_balance()
        self.meter.with_user(self.manager).action_accept_meter_balance()
        self.assertEqual(self.meter.meter_balance_base, 210.0)
        self.assertIn("210.00", self._last_note())
        self.assertIn("accepted by", self._last_note())
        # the 50 still to enter is not in the accepted balance: it still counts
        self.assertEqual(self.meter.meter_balance_state, "pending")
        self.assertEqual(self.meter.meter_balance_expected, 260.0)
        self.env["prepaid.meter.credit"].search([("origin", "=", "test,2")])._mark_applied("ok")
        self.env["prepaid.meter.credit"].search([("origin", "=", "test,2")]).applied_at = (
            self.t0 + timedelta(minutes=200)
        )
        self._report(240, 1040, 255.0)
        self.assertEqual(self.meter.meter_balance_state, "ok")

    def test_a_meter_short_of_a_token_it_confirmed_is_a_mismatch(self):
        self._report(60, 1010, -5.0)  # the 100 never reached it
        self.assertEqual(self.meter.meter_balance_state, "mismatch")
        self.assertIn("token never entered", self._last_note())

    def test_no_comparison_until_the_cursor_is_at_the_reporting_reading(self):
        self._report(60, 1010, 95.0)
        self.meter.meter_balance_state = False
        # a later reading without a balance: the reported one is older than the cursor
        self._ingest(self.meter, (120, 1020))
        self._deduct(meter_ids=self.meter.ids)
        self.assertFalse(self.meter.meter_balance_state)
        with self.assertRaises(UserError):
            self.meter.with_user(self.manager).action_accept_meter_balance()
        # a reading not charged yet is not compared either
        self._ingest(self.meter, (180, 1030), meter_balance=500.0)
        self.assertEqual(self.meter._reconcile_meter_balance(), {})

    def test_server_balance_meters_are_not_reconciled(self):
        self._ingest(self.meter, (60, 1010), meter_balance=95.0)
        self.meter.billing_mode = "server"
        self._deduct(meter_ids=self.meter.ids)
        self.assertFalse(self.meter.meter_balance_state)
        self.assertEqual(self.meter.billing_charged_amount, 5.0)

    def test_a_mismatch_that_ends_is_logged(self):
        self._report(60, 1010, 120.0)
        self.assertEqual(self.meter.meter_balance_state, "mismatch")
        self._report(120, 1020, 90.0)
        self.assertEqual(self.meter.meter_balance_state, "ok")
        self.assertIn("agrees again", self._last_note())

    def test_the_daily_check_sees_a_credit_cancelled_since(self):
        credit = self._vend("50", 2)
        self._report(60, 1010, 95.0)
        self.assertEqual(self.meter.meter_balance_state, "pending")
        credit._cancel("Refunded at the desk.")
        self.env["prepaid.meter"]._cron_reconcile_meter_balances()
        self.assertEqual(self.meter.meter_balance_state, "ok")
        self.assertEqual(self.meter.meter_balance_pending, 0.0)
