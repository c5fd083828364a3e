from datetime import date
from decimal import Decimal

from psycopg2 import IntegrityError

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .test_accounting import MAR_31_NOON, PrepaidAccountingCommon

APR_1 = date(2026, 4, 1)


class PostpaidCommon(PrepaidAccountingCommon):
    """The test tenant's account is postpaid, paid 30 days after each invoice; supply is
    cut 10 days after the due date (the company's policy)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant.property_payment_term_id = cls.env.ref("account.account_payment_term_30days")
        cls.company.prepaid_postpaid_cut_days = 10
        cls.account.write({"billing_type": "postpaid", "invoiced_until": date(2026, 3, 1)})

    def _march(self):
        """30.333 kWh in March at 0.50: 15.1665 charged, the balance below zero."""
        self._ingest(self.meter, (0, 1000), (MAR_31_NOON, 1030.333))
        self._deduct()

    def _invoice_month(self, today=APR_1):
        invoices = self.env["prepaid.account"]._cron_invoice_consumption(today=today)
        return invoices.filtered(lambda m: m.prepaid_account_id == self.account)

    def _pay(self, invoice, day):
        """The accountant's *Register Payment* on the invoice (not a recharge)."""
        wizard = (
            self.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"payment_date": day, "journal_id": self.bank_journal.id})
        )
        return wizard._create_payments()


@tagged("post_install", "-at_install")
class TestPostpaid(PostpaidCommon):
    def test_month_invoiced_with_due_date_and_reconciled_with_a_payment(self):
        self._march()
        self.assertEqual(self._balance(), Decimal("-15.1665"))
        self.assertEqual(self.meter.alarm_level, "normal", "a postpaid balance raises no alarm")
        self.assertEqual(self.meter.desired_relay_state, "on", "and never cuts")
        invoice = self._invoice_month()
        self.assertRecordValues(
            invoice,
            [
                {
                    "move_type": "out_invoice",
                    "state": "posted",
                    "payment_state": "not_paid",
                    "invoice_date": APR_1,
                    "invoice_date_due": date(2026, 5, 1),
                    "prepaid_period": APR_1,
                    "amount_total": 15.17,
                }
            ],
        )
        self.assertRecordValues(
            invoice.invoice_line_ids,
            [
                {
                    "quantity": 30.33,
                    "product_uom_id": self.env.ref("uom.product_uom_kwh").id,
                    "price_unit": 0.5,
                    "prepaid_quantity": 30.333,
                    "prepaid_band": "flat",
                    "price_total": 15.17,
                }
            ],
        )
        self._pay(invoice, date(2026, 4, 20))
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        paid = self.account.line_ids.filtered(lambda line: line.kind == "recharge")
        self.assertEqual(self._money(paid.amount), Decimal("15.1700"))
        self.assertEqual(self._balance(), Decimal("0.0035"), "the ledger shows the payment")
        self._pay_again_credits_nothing(invoice)
        self.env.flush_all()
        row = self._agreement()
        self.assertRecordValues(
            row,
            [
                {
                    "payments": 15.17,
                    "invoiced": 15.17,
                    "expected_balance": 0.0035,
                    "balance": 0.0035,
                    "agrees": True,
                }
            ],
        )

    def _pay_again_credits_nothing(self, invoice):
        invoice._invoice_paid_hook()
        self.assertEqual(len(self.account.line_ids.filtered(lambda ln: ln.kind == "recharge")), 1)

    def test_month_invoiced_once_when_the_job_runs_twice_or_is_rerun(self):
        self._march()
        invoice = self._invoice_month()
        self.assertTrue(invoice)
        self.assertFalse(self._invoice_month(), "a second run bills nothing")
        # a run killed after its invoice was committed but before the account said so,
        # rerun once more consumption of the month arrived: the period is not billed again
        self.env.cr.execute(
            "UPDATE prepaid_account SET invoiced_until = '2026-03-01' WHERE id = %s",
            [self.account.id],
        )
        self.account.invalidate_recordset(["invoiced_until"])
        self._ingest(self.meter, (MAR_31_NOON + 60, 1031.333))
        self._deduct()
        self.assertFalse(self._invoice_month())
        self.assertEqual(self.account.invoiced_until, APR_1)
        self.assertEqual(self.account.invoice_ids, invoice)
        # whatever the code path, the database refuses a second invoice of the period
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            invoice.copy({"prepaid_account_id": self.account.id, "prepaid_period": APR_1})
            self.env.flush_all()
        # the late consumption goes on the next month's invoice
        self.env.invalidate_all()
        may = self._invoice_month(today=date(2026, 5, 1))
        self.assertEqual(may.amount_total, 0.5)
        self.assertEqual(may.prepaid_period, date(2026, 5, 1))

    def test_overdue_policy_cuts_and_a_payment_restores(self):
        self._march()
        invoice = self._invoice_month()
        accounts = self.env["prepaid.account"]
        self.assertFalse(accounts._cron_postpaid_overdue(today=date(2026, 5, 11)))
        self.assertEqual(self.meter.desired_relay_state, "on", "10 days past due: not yet")
        self.flat.postpaid_cut_days = 20
        self.assertFalse(accounts._cron_postpaid_overdue(today=date(2026, 5, 12)))
        self.assertEqual(self.meter.desired_relay_state, "on", "the tariff's policy wins")
        self.flat.postpaid_cut_days = 0
        self.assertEqual(accounts._cron_postpaid_overdue(today=date(2026, 5, 12)), self.account)
        self.assertEqual(self.account.postpaid_overdue_invoice_id, invoice)
        self.assertRecordValues(
            self.meter,
            [
                {
                    "desired_relay_state": "off",
                    "alarm_level": "arrears",
                    "desired_relay_reason": "Supply cut: an invoice is overdue. It comes "
                    "back on when it is paid.",
                }
            ],
        )
        self.assertIn(f"postpaid_overdue#{invoice.id}", self.account.notice_ids.mapped("key"))
        # a deduction run evaluates the alarms again: the cut stays
        self._ingest(self.meter, (MAR_31_NOON + 60, 1031.333))
        self._deduct()
        self.assertEqual(self.meter.desired_relay_state, "off")
        self._pay(invoice, date(2026, 5, 13))
        self.assertFalse(self.account.postpaid_overdue_invoice_id)
        self.assertEqual(self.meter.desired_relay_state, "on", "paid: supply is restored")
        self.assertEqual(self.meter.alarm_level, "normal")

    def test_manager_forced_on_wins_over_the_overdue_cut(self):
        self._march()
        self._invoice_month()
        self.meter.forced_relay = "on"
        self.env["prepaid.account"]._cron_postpaid_overdue(today=date(2026, 6, 1))
        self.assertEqual(self.meter.desired_relay_state, "on")

    def test_taxes_added_on_postpaid_never_on_prepaid(self):
        excluded = self.env["account.tax"].create(
            {
                "name": "VAT 15% excluded",
                "amount": 15.0,
                "type_tax_use": "sale",
                "company_id": self.company.id,
            }
        )
        self.product_power.taxes_id = excluded
        self._march()
        invoice = self._invoice_month()
        self.assertRecordValues(
            invoice, [{"amount_untaxed": 15.17, "amount_tax": 2.27, "amount_total": 17.44}]
        )
        self._pay(invoice, date(2026, 4, 20))
        self.assertEqual(
            self._balance(), Decimal("0.0035"), "the ledger is credited what billed consumption"
        )
        self.assertEqual(invoice.invoice_line_ids.price_unit, 0.5)
        # a prepaid balance pays the price: taxes must be included in it
        self.account.billing_type = "prepaid"
        self._ingest(self.meter, (MAR_31_NOON + 1440, 1040.333))
        self._deduct()
        with self.assertRaisesRegex(UserError, "included in the price"):
            self.account._invoice_consumption(until=date(2026, 5, 1))

    def test_postpaid_needs_accounting(self):
        self.company.prepaid_accounting = False
        with self.assertRaisesRegex(Exception, "postpaid account needs"):
            self.account.billing_type = "prepaid"
            self.account.billing_type = "postpaid"
