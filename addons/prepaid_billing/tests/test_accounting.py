from datetime import date
from decimal import Decimal

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from .common import PrepaidBillingCommon

# minutes after t0 (2026-03-02 00:00 UTC)
MAR_31_NOON = 29 * 1440 + 720
APR_01_NOON = 30 * 1440 + 720
APR_02_NOON = 31 * 1440 + 720


class PrepaidAccountingCommon(PrepaidBillingCommon, AccountTestInvoicingCommon):
    """A landlord company with a chart of accounts (AccountTestInvoicingCommon), the meter
    test site in it, consumption products taxed 15 % included, collecting journals."""

    @classmethod
    def get_default_groups(cls):
        return super().get_default_groups() | cls.env.ref("prepaid_meter.group_prepaid_manager")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tax_included = cls.env["account.tax"].create(
            {
                "name": "VAT 15% included",
                "amount": 15.0,
                "amount_type": "percent",
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
                "company_id": cls.company.id,
            }
        )
        cls.product_power = cls._create_product(
            name="Electricity", lst_price=0.0, taxes_id=cls.tax_included
        )
        cls.product_water = cls._create_product(
            name="Water", lst_price=0.0, taxes_id=cls.tax_included
        )
        cls.env["prepaid.consumption.product"].create(
            [
                {"utility": "electricity", "product_id": cls.product_power.id},
                {"utility": "water", "product_id": cls.product_water.id},
            ]
        )
        cls.cash_journal = cls.company_data["default_journal_cash"]
        cls.bank_journal = cls.company_data["default_journal_bank"]
        cls.company.write(
            {
                "prepaid_accounting": True,
                "prepaid_journal_cash_id": cls.cash_journal.id,
                "prepaid_journal_online_id": cls.bank_journal.id,
            }
        )
        cls.receivable = cls.company_data["default_account_receivable"]

    def _online_payment(self, amount, partner=None, memo="TX-1"):
        """What the payment module does when a transaction is done (``_create_payment``)."""
        journal = self.bank_journal
        payment = self.env["account.payment"].create(
            {
                "amount": amount,
                "payment_type": "inbound",
                "partner_type": "customer",
                "partner_id": (partner or self.tenant).id,
                "journal_id": journal.id,
                "payment_method_line_id": journal.inbound_payment_method_line_ids[:1].id,
                "memo": memo,
                "write_off_line_vals": [],
            }
        )
        payment.action_post()
        return payment

    def _agreement(self, account=None):
        report = self.env["prepaid.agreement.report"]
        report.invalidate_model()
        return report.search([("account_id", "=", (account or self.account).id)])

    def _money(self, value):
        return Decimal(f"{value:.4f}")


@tagged("post_install", "-at_install")
class TestAccountingCycle(PrepaidAccountingCommon):
    def test_full_cycle(self):
        """Open, recharge 100 at the desk and 40 online, consume across the billing day,
        invoice, reconcile, refund, cancel: payments, invoices, ledger and the agreement
        report agree to the cent at every step."""
        account = self.account
        # --- desk recharge: a posted inbound payment in the cash journal
        self.env["prepaid.account.recharge"].create(
            {"account_id": account.id, "amount": 100.0, "payment_method": "cash"}
        ).action_confirm()
        desk = account.payment_ids
        self.assertEqual(len(desk), 1)
        self.assertRecordValues(
            desk,
            [
                {
                    "amount": 100.0,
                    "payment_type": "inbound",
                    "partner_id": self.tenant.id,
                    "journal_id": self.cash_journal.id,
                    "state": "in_process",
                }
            ],
        )
        self.assertEqual(account.line_ids.payment_id, desk)
        # --- online recharge: the payment module's payment is linked, none is created
        online = self._online_payment(40.0)
        lines = account._recharge("40", payment_method="online", reference="TX-1", payment=online)
        self.assertEqual(lines.payment_id, online)
        self.assertEqual(online.prepaid_account_id, account)
        again = account._recharge("40", payment_method="online", reference="TX-1", payment=online)
        self.assertEqual(again, lines, "a payment is credited once")
        self.assertEqual(account.payment_ids, desk | online)
        self.assertEqual(self._balance(), Decimal("140.0000"))

        # --- consumption across the billing day (1st of the month), flat 0.50 per kWh
        self._ingest(
            self.meter,
            (0, 1000),
            (MAR_31_NOON, 1030.333),  # 30.333 kWh -> 15.1665
            (APR_01_NOON, 1040.433),  # 10.1 kWh -> 5.05
            (APR_02_NOON, 1042.633),  # 2.2 kWh -> 1.10
        )
        self._deduct()
        self.assertEqual(self._balance(), Decimal("118.6835"))

        # --- the billing day: consumption before April 1st is invoiced and reconciled
        self.assertFalse(
            account._cron_invoice_consumption(today=date(2026, 3, 31)).filtered(
                lambda m: m.prepaid_account_id == account
            ),
            "accounts invoiced on opening have nothing to bill before the billing day",
        )
        account.invoiced_until = date(2026, 3, 1)
        invoices = account._cron_invoice_consumption(today=date(2026, 4, 1))
        invoice = invoices.filtered(lambda m: m.prepaid_account_id == account)
        self.assertRecordValues(
            invoice,
            [
                {
                    "move_type": "out_invoice",
                    "state": "posted",
                    "partner_id": self.tenant.id,
                    "invoice_date": date(2026, 4, 1),
                    "amount_total": 15.17,
                    "amount_untaxed": 13.19,
                    "amount_tax": 1.98,
                    "payment_state": "paid",
                }
            ],
        )
        self.assertEqual(invoice.invoice_line_ids.product_id, self.product_power)
        self.assertAlmostEqual(invoice.invoice_line_ids.prepaid_quantity, 30.333)
        self.assertEqual(account.invoiced_until, date(2026, 4, 1))
        self.assertFalse(
            account._cron_invoice_consumption(today=date(2026, 4, 1)).filtered(
                lambda m: m.prepaid_account_id == account
            ),
            "a billing day is invoiced once",
        )
        row = self._agreement()
        self.assertRecordValues(
            row,
            [
                {
                    "payments": 140.0,
                    "refunds": 0.0,
                    "invoiced": 15.17,
                    "not_invoiced": 6.1465,
                    "expected_balance": 118.6835,
                    "balance": 118.6835,
                    "difference": 0.0,
                    "agrees": True,
                }
            ],
        )

        # --- refund 20 by bank transfer: an outbound payment
        self.env["prepaid.account.refund"].create(
            {"account_id": account.id, "amount": 20.0, "payment_method": "bank"}
        ).action_confirm()
        refund = account.payment_ids.filtered(lambda p: p.payment_type == "outbound")
        self.assertRecordValues(refund, [{"amount": 20.0, "partner_id": self.tenant.id}])
        self.assertEqual(self._balance(), Decimal("98.6835"))

        # --- cancellation: final invoice, rounding to the cent, refund of the rest
        account.action_close()
        final = account.invoice_ids - invoice
        self.assertRecordValues(
            final, [{"amount_total": 6.15, "state": "posted", "payment_state": "paid"}]
        )
        rounding = account.line_ids.filtered("invoice_rounding")
        self.assertEqual(self._money(rounding.amount), Decimal("-0.0035"))
        closing = account.payment_ids.filtered(
            lambda p: p.payment_type == "outbound" and p != refund
        )
        self.assertRecordValues(closing, [{"amount": 98.68, "journal_id": self.cash_journal.id}])
        self.assertEqual(self._balance(), Decimal("0.0000"))
        self.assertEqual(account.state, "closed")

        # --- every figure agrees
        payments_in = sum(
            account.payment_ids.filtered(lambda p: p.payment_type == "inbound").mapped("amount")
        )
        payments_out = sum(
            account.payment_ids.filtered(lambda p: p.payment_type == "outbound").mapped("amount")
        )
        invoiced = sum(account.invoice_ids.mapped("amount_total"))
        self.assertAlmostEqual(payments_in, 140.0)
        self.assertAlmostEqual(payments_out, 118.68)
        self.assertAlmostEqual(invoiced, 21.32)
        self.assertAlmostEqual(payments_in - payments_out - invoiced, 0.0)
        ledger = sum(self._money(line.amount) for line in account.line_ids)
        self.assertEqual(ledger, Decimal("0.0000"))
        row = self._agreement()
        row.invalidate_recordset()
        self.assertRecordValues(
            row,
            [
                {
                    "payments": 140.0,
                    "refunds": 118.68,
                    "invoiced": 21.32,
                    "not_invoiced": 0.0,
                    "adjustments": 0.0,
                    "expected_balance": 0.0,
                    "balance": 0.0,
                    "difference": 0.0,
                    "agrees": True,
                }
            ],
        )
        receivable_lines = self.env["account.move.line"].search(
            [("partner_id", "=", self.tenant.id), ("account_id", "=", self.receivable.id)]
        )
        self.assertAlmostEqual(sum(receivable_lines.mapped("balance")), 0.0)
        self.assertTrue(all(receivable_lines.mapped("reconciled")), "all matched")

    def test_late_consumption_goes_on_next_invoice(self):
        """A meter's backlog charged after its day was invoiced is billed once, next time."""
        self.account._recharge("50")
        self._ingest(self.meter, (0, 1000), (MAR_31_NOON - 1440, 1010))  # March 30: 5.00
        self._deduct()
        first = self.account._invoice_consumption(until=date(2026, 4, 1))
        self.assertEqual(first.amount_total, 5.0)
        self._ingest(self.meter, (MAR_31_NOON, 1016))  # March 31, arriving late: 3.00
        self._deduct()
        self.assertFalse(self.account._invoice_consumption(until=date(2026, 3, 31)))
        second = self.account._invoice_consumption(until=date(2026, 5, 1))
        self.assertEqual(second.amount_total, 3.0)
        self.assertFalse(self.account._invoice_consumption(until=date(2026, 5, 1)))
        self.assertRecordValues(
            self._agreement(), [{"invoiced": 8.0, "not_invoiced": 0.0, "difference": 0.0}]
        )

    def test_tampered_ledger_shows_difference(self):
        self.account._recharge("50")
        self._ingest(self.meter, (0, 1000), (60, 1010))  # 5.00
        self._deduct()
        self.assertTrue(self._agreement().agrees)
        deduction = self.account.line_ids.filtered(lambda line: line.kind == "deduction")
        self.env.cr.execute(
            "UPDATE prepaid_account_line SET amount = amount + 2 WHERE id = %s", [deduction.id]
        )
        row = self._agreement()
        self.assertRecordValues(
            row,
            [{"difference": -2.0, "ledger_difference": -2.0, "agrees": False}],
        )
        # the balance and the ledger both inflated by 30: the payments disagree
        recharge = self.account.line_ids.filtered(lambda line: line.kind == "recharge")
        self.env.cr.execute(
            "UPDATE prepaid_account_line SET amount = amount + 30 WHERE id = %s; "
            "UPDATE prepaid_account_line SET amount = amount - 2 WHERE id = %s; "
            "UPDATE prepaid_account SET balance = balance + 30 WHERE id = %s",
            [recharge.id, deduction.id, self.account.id],
        )
        self.env.invalidate_all()
        row = self._agreement()
        self.assertRecordValues(
            row, [{"payments": 50.0, "balance": 75.0, "difference": 30.0, "ledger_difference": 0.0}]
        )
        self.assertFalse(row.agrees)

    def test_online_payment_checked_and_credited_once(self):
        other_tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit2.id, "date_start": "2026-01-01"}
        )
        other_tenancy.action_open()
        payment = self._online_payment(25.0)
        with self.assertRaisesRegex(UserError, r"of \$\xa025\.00, not \$\xa030\.00"):
            self.account._recharge("30", payment_method="online", payment=payment)
        self.assertEqual(self._balance(), Decimal("0.0000"))
        self.account._recharge("25", payment_method="online", payment=payment)
        with self.assertRaisesRegex(UserError, "credited another account"):
            other_tenancy.account_id._recharge("25", payment_method="online", payment=payment)
        self.assertEqual(self._balance(), Decimal("25.0000"))
        self.assertEqual(self._balance(other_tenancy.account_id), Decimal("0.0000"))
        draft = self.env["account.payment"].create(
            {"amount": 5.0, "partner_id": self.tenant.id, "journal_id": self.bank_journal.id}
        )
        with self.assertRaisesRegex(UserError, "not posted"):
            self.account._recharge("5", payment_method="online", payment=draft)

    def test_desk_amount_in_cents(self):
        with self.assertRaisesRegex(UserError, "at most 2 decimals"):
            self.account._recharge("10.005")
        self.assertFalse(self.account.payment_ids)
        self.assertFalse(self.account.line_ids)

    def test_water_and_power_on_separate_lines(self):
        water_meter = self._create_meter("Water T-101", "000000000201", self.unit, model=self.water)
        water_tariff = self._create_tariff("Water", [{"price_flat": 3.2}], utility="water")
        water_meter.tariff_id = water_tariff
        self.account._recharge("100")
        self._ingest(self.meter, (0, 1000), (60, 1010))  # 5.00
        self._ingest(water_meter, (0, 10), (60, 11.5))  # 4.80
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 3, 3))
        self.assertEqual(invoice.amount_total, 9.80)
        by_product = {line.product_id: line.price_total for line in invoice.invoice_line_ids}
        self.assertEqual(by_product, {self.product_power: 5.0, self.product_water: 4.8})


@tagged("post_install", "-at_install")
class TestAccountingAccess(PrepaidAccountingCommon):
    def test_manager_invoices_now_without_accounting_rights(self):
        manager = self._user("prepaid_boss", "prepaid_meter.group_prepaid_manager")
        self.account._recharge("20")
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        result = self.account.with_user(manager).action_invoice_consumption()
        self.assertEqual(result["tag"], "display_notification")
        self.assertRecordValues(
            self.account.invoice_ids, [{"amount_total": 5.0, "payment_state": "paid"}]
        )

    def test_ledger_only_company(self):
        """Accounting off: the ledger alone (sub-cent amounts allowed), nothing invoiced."""
        self.company.prepaid_accounting = False
        self.account._recharge("10.1234")
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        self.assertFalse(self.account.payment_ids)
        self.assertFalse(self.account._invoice_consumption())
        self.assertEqual(self._balance(), Decimal("5.1234"))
        # no accounting to agree with: the agreement leaves the company out
        self.env.flush_all()
        self.assertFalse(self._agreement())
        self.company.prepaid_accounting = True
        self.env.flush_all()
        self.assertEqual(len(self._agreement()), 1)

    def test_accountant_reads_operator_of_other_company_does_not(self):
        self.account._recharge("30")
        accountant = self._user(
            "prepaid_accountant",
            "prepaid_meter.group_prepaid_accountant,account.group_account_readonly",
        )
        row = self._agreement().with_user(accountant)
        self.assertEqual(row.payments, 30.0)
        account = self.account.with_user(accountant)
        self.assertEqual(account.payment_ids.amount, 30.0)
        self.assertEqual(account.line_ids.payment_id.amount, 30.0)
        with self.assertRaises(AccessError):
            account._recharge("10")

        other = self.env["res.company"].create({"name": "Other Landlord"})
        operator = self._user("other_operator", "prepaid_meter.group_prepaid_user", company=other)
        self.assertFalse(
            self.env["prepaid.agreement.report"]
            .with_user(operator)
            .search([("account_id", "=", self.account.id)])
        )
        with self.assertRaises(AccessError):
            self.account.with_user(operator)._recharge("10")
        with self.assertRaises(AccessError):
            self.env["prepaid.account.recharge"].with_user(operator).create(
                {"account_id": self.account.id, "amount": 10}
            ).action_confirm()
        self.assertEqual(len(self.account.payment_ids), 1)
        self.assertEqual(self._balance(), Decimal("30.0000"))

    def test_operator_recharges_without_accounting_rights(self):
        operator = self._user("desk_operator", "prepaid_meter.group_prepaid_user")
        self.env["prepaid.account.recharge"].with_user(operator).create(
            {"account_id": self.account.id, "amount": 12.5, "payment_method": "cash"}
        ).action_confirm()
        self.assertEqual(self.account.payment_ids.amount, 12.5)
        self.assertEqual(self.account.line_ids.user_id, operator)
        self.assertEqual(
            self.account.payment_ids.move_id.line_ids.filtered(
                lambda line: line.account_id == self.receivable
            ).credit,
            12.5,
        )
