from datetime import timedelta
from decimal import Decimal

from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestRecharge(PrepaidBillingCommon):
    def _kinds(self, lines):
        return {line.kind: Decimal(f"{line.amount:.4f}") for line in lines}

    def test_desk_recharge_wizard_records_operator_and_method(self):
        operator = self._user("desk", "prepaid_meter.group_prepaid_user")
        wizard = (
            self.env["prepaid.account.recharge"]
            .with_user(operator)
            .create({"account_id": self.account.id, "amount": 25.5, "payment_method": "card"})
        )
        wizard.action_confirm()
        line = self.account.line_ids
        self.assertEqual(line.kind, "recharge")
        self.assertEqual(line.user_id, operator)
        self.assertEqual(line.payment_method, "card")
        self.assertEqual(self._balance(), Decimal("25.5000"))

    def test_overdraft_repaid_on_next_recharge(self):
        """B6: with an overdraft of 10 the tenant uses 3 below zero; the next recharge
        repays those 3 first."""
        self.account.overdraft_limit = 10.0
        self.account._recharge("2")
        self._ingest(self.meter, (0, 1000), (60, 1010))  # 10 kWh at 0.5
        self._deduct()
        self.assertEqual(self._balance(), Decimal("-3.0000"))
        self.assertEqual(self.meter.desired_relay_state, "off", "below alarm 2: reminder cut")
        lines = self.account._recharge("10")
        self.assertEqual(
            self._kinds(lines),
            {"overdraft_repayment": Decimal("3.0000"), "recharge": Decimal("7.0000")},
        )
        self.assertEqual(self._balance(), Decimal("7.0000"))
        self.assertFalse(self.account._audit_balance())

    def test_preset_credit_recovered_at_first_recharge(self):
        """B7: a preset credit of 50, 30 of it used: the first recharge pays it back in full."""
        self.account.preset_credit = 50.0
        self._ingest(self.meter, (0, 1000), (60, 1010), (120, 1020), (180, 1030), (240, 1040))
        self._ingest(self.meter, (300, 1050), (360, 1060))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("-30.0000"))
        self.assertEqual(self.account.available_credit, 20.0)
        self.assertEqual(self.meter.desired_relay_state, "on")
        lines = self.account._recharge("100")
        self.assertEqual(
            self._kinds(lines),
            {"preset_credit": Decimal("50.0000"), "recharge": Decimal("50.0000")},
        )
        self.assertEqual(self._balance(), Decimal("70.0000"))
        self.assertEqual(self.account.preset_outstanding, 0.0)
        self.assertEqual(self.account.available_credit, 70.0)

    def test_preset_credit_recovered_at_opening(self):
        self.account.preset_credit = 50.0
        lines = self.account._recharge("80")
        self.assertEqual(
            self._kinds(lines),
            {"preset_credit": Decimal("50.0000"), "recharge": Decimal("30.0000")},
        )
        self.assertEqual(self.account.available_credit, 80.0)

    def test_refund_above_balance_refused(self):
        self.account._recharge("30")
        with self.assertRaises(UserError):
            self.env["prepaid.account.refund"].create(
                {"account_id": self.account.id, "amount": 30.0001}
            ).action_confirm()
        self.assertEqual(self._balance(), Decimal("30.0000"))
        self.env["prepaid.account.refund"].create(
            {"account_id": self.account.id, "amount": 12.5, "payment_method": "bank"}
        ).action_confirm()
        self.assertEqual(self._balance(), Decimal("17.5000"))

    def test_cancellation_final_settlement(self):
        self.account._recharge("40")
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self.account.action_close()
        self.assertEqual(self.account.state, "closed")
        self.assertEqual(self._balance(), Decimal("0.0000"))
        kinds = self.account.line_ids.mapped("kind")
        self.assertEqual(sorted(kinds), ["deduction", "recharge", "refund"])
        refund = self.account.line_ids.filtered(lambda line: line.kind == "refund")
        self.assertEqual(refund.amount, -35.0, "what is left after the last consumption")
        with self.assertRaises(UserError):
            self.account._recharge("10")

    def test_cancellation_with_debt(self):
        self.account.overdraft_limit = 10.0
        self._ingest(self.meter, (0, 1000), (60, 1008))
        self.account.action_close()
        self.assertEqual(self.account.closing_due, 4.0)

    def test_replacement_keeps_balance(self):
        """M4: the old meter is charged up to its final reading; the new one draws on the
        same account and tariff."""
        self.account._recharge("100")
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        new = self._create_meter("New T-101", "000000000111", state="draft")
        self.env["prepaid.meter.replace"].create(
            {
                "old_meter_id": self.meter.id,
                "new_meter_id": new.id,
                "final_reading": 1014,
                "initial_reading": 0,
                "replaced_at": self.t0 + timedelta(minutes=120),
            }
        )._replace()
        self.assertEqual(self.meter.state, "removed")
        self.assertEqual(self._balance(), Decimal("93.0000"))
        self.assertEqual(new.account_id, self.account)
        self._ingest(new, (180, 2))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("92.0000"))
        self.assertFalse(self.account._audit_balance())

    def test_operator_of_another_company_cannot_recharge(self):
        other = self.env["res.company"].create({"name": "Other Landlord"})
        operator = self._user("other_desk", "prepaid_meter.group_prepaid_user", company=other)
        with self.assertRaises(AccessError):
            self.account.with_user(operator)._recharge("10")
        with self.assertRaises(AccessError):
            self.env["prepaid.account.recharge"].with_user(operator).create(
                {"account_id": self.account.id, "amount": 10}
            ).action_confirm()
        self.assertEqual(self._balance(), Decimal("0.0000"))

    def test_accountant_cannot_recharge(self):
        accountant = self._user("acc", "prepaid_meter.group_prepaid_accountant")
        self.assertEqual(self.account.with_user(accountant).balance, 0.0)
        with self.assertRaises(AccessError):
            self.account.with_user(accountant)._recharge("10")

    def test_payment_reference_credited_once(self):
        first = self.account._recharge("20", payment_method="online", reference="TX-1")
        again = self.account._recharge("20", payment_method="online", reference="TX-1")
        self.assertEqual(first, again)
        self.assertEqual(self._balance(), Decimal("20.0000"))
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self.env["prepaid.account.line"].sudo().with_context(prepaid_ledger_post=True).create(
                {
                    "account_id": self.account.id,
                    "kind": "recharge",
                    "amount": 1,
                    "reference": "TX-1",
                }
            ).flush_recordset()

    def test_meter_preset_credit_taken_over_at_opening(self):
        """B7 (seed: "the meter installed can use electricity first; the preset charge is
        deducted when the account is opened for charging"): the preset credit of a new meter
        becomes the account's at opening and the opening recharge recovers it."""
        meter = self._create_meter("T-102", "000000000222", self.unit2)
        meter.preset_credit = 30.0
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit2.id, "date_start": "2026-03-01"}
        )
        tenancy.action_open()
        account = tenancy.account_id
        self.assertEqual(account.preset_credit, 30.0)
        self.assertEqual(account.available_credit, 30.0)
        self.assertEqual(meter.preset_account_id, account)
        self.assertTrue(any("Preset credit" in m.body for m in account.message_ids))
        lines = account._recharge("50", memo="Opening recharge")
        self.assertEqual(
            self._kinds(lines),
            {"preset_credit": Decimal("30.0000"), "recharge": Decimal("20.0000")},
        )
        self.assertEqual(account.available_credit, 50.0)
        # the preset credit is taken over once
        self.assertEqual(account._take_over_preset_credit(), meter.browse())
