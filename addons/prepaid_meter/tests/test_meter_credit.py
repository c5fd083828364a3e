import psycopg2

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestMeterCredit(PrepaidMeterCommon):
    """B13: billing mode per model and meter; a credit per sale, once."""

    def test_billing_mode_follows_model_and_is_overridable(self):
        self.ddsy.billing_mode = "meter"
        meter = self._create_meter("Keypad T-102", "000000000102", self.unit2)
        self.assertEqual(meter.billing_mode, "meter")
        meter.billing_mode = "server"
        self.assertEqual(meter.billing_mode, "server")
        self.assertEqual(self.meter.billing_mode, "server", "existing meters keep theirs")

    def test_vend_once_per_origin(self):
        credit = self.env["prepaid.meter.credit"]._vend(self.meter, "12.5", "test,1")
        again = self.env["prepaid.meter.credit"]._vend(self.meter, "12.5", "test,1")
        self.assertEqual(credit, again)
        self.assertEqual(credit.amount, 12.5)
        self.assertTrue(credit.name.startswith("MC/"))
        self.assertEqual(self.meter.credit_count, 1)
        other = self._create_meter("Other", "000000000199", self.unit2)
        with self.assertRaises(UserError):
            self.env["prepaid.meter.credit"]._vend(other, "12.5", "test,1")

    def test_positive_amount(self):
        with self.assertRaises(UserError):
            self.env["prepaid.meter.credit"]._vend(self.meter, "0", "test,2")
        with self.assertRaises(psycopg2.errors.CheckViolation), self.cr.savepoint():
            self.env["prepaid.meter.credit"].create(
                {"meter_id": self.meter.id, "amount": -1, "origin": "test,2"}
            )

    def test_cancel_rules(self):
        credit = self.env["prepaid.meter.credit"]._vend(self.meter, "5", "test,3")
        user = self._user("credit_user", "prepaid_meter.group_prepaid_user")
        with self.assertRaises(UserError):
            credit.with_user(user).action_cancel()
        credit.action_cancel()
        self.assertEqual(credit.state, "cancelled")
        self.assertIn("Cancelled by", credit.reason)
        with self.assertRaises(UserError):
            credit.action_cancel()
        self.assertFalse(credit._mark_applied("late confirmation"), "never applied after")
        self.assertEqual(credit.state, "cancelled")
        with self.assertRaises(UserError):
            credit.unlink()

    def test_token_for_managers_only(self):
        credit = self.env["prepaid.meter.credit"]._vend(self.meter, "5", "test,4")
        credit.sudo().token = "12345678901234567890"
        self.assertEqual(credit._token_groups(), "1234 5678 9012 3456 7890")
        user = self._user("credit_user2", "prepaid_meter.group_prepaid_user")
        with self.assertRaises(AccessError):
            credit.with_user(user).read(["token"])
        self.assertEqual(credit.with_user(user).read(["amount"])[0]["amount"], 5.0)
