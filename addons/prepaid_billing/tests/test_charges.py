"""B14: fixed charges (service fee, demand charge, monthly package) posted on the right
day, once per cycle, taxes from the product; the package's included quantity is free in
the deduction. B2: the meters sharing a balance are shown on the account and the meter."""

from datetime import date
from decimal import Decimal

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestFixedCharges(PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account._recharge("500")
        cls.fee = cls.env["prepaid.tariff.charge"].create(
            {
                "tariff_id": cls.flat.id,
                "name": "Service fee",
                "charge_type": "service_fee",
                "price": 10.0,
                "date_start": "2026-01-01",
            }
        )

    def _charge_lines(self, account=None):
        account = account or self.account
        return account.line_ids.filtered(lambda line: line.kind == "fixed_charge").sorted(
            "charge_period"
        )

    def test_service_fee_once_per_cycle_from_the_billing_day(self):
        Account = self.env["prepaid.account"]
        Account._cron_fixed_charges(today=date(2026, 2, 28))
        lines = self._charge_lines()
        self.assertEqual(lines.mapped("charge_period"), [date(2026, 1, 1), date(2026, 2, 1)])
        self.assertEqual(lines.mapped("amount"), [-10.0, -10.0])
        self.assertEqual(lines[0].memo, "Service fee 2026-01-01 - 2026-01-31")
        # the same day again, and the day before the next cycle: nothing more
        Account._cron_fixed_charges(today=date(2026, 2, 28))
        self.assertEqual(len(self._charge_lines()), 2)
        # the billing day: the new cycle's fee, in advance
        Account._cron_fixed_charges(today=date(2026, 3, 1))
        self.assertEqual(self._charge_lines()[-1:].charge_period, date(2026, 3, 1))
        self.assertEqual(len(self._charge_lines()), 3)
        self.assertEqual(self._balance(), Decimal("470.0000"))
        self.assertFalse(self.account._audit_balance())

    def test_billing_day_of_the_tariff(self):
        self.flat.billing_day = 15
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 2, 14))
        # from 1 January: the cycle of 15 December (14 of its 31 days) and of 15 January
        lines = self._charge_lines()
        self.assertEqual(lines.mapped("charge_period"), [date(2025, 12, 15), date(2026, 1, 15)])
        self.assertEqual(lines.mapped("amount"), [-4.5161, -10.0])

    def test_first_cycle_of_a_new_tenancy_is_prorated(self):
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit2.id, "date_start": "2026-03-11"}
        )
        tenancy.action_open()
        account = tenancy.account_id
        account.tariff_id = self.flat
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 3, 20))
        # 21 of March's 31 days: 6.774193... half up
        self.assertEqual(self._charge_lines(account).mapped("amount"), [-6.7742])
        self.assertEqual(self._balance(account), Decimal("-6.7742"))

    def test_a_charge_starting_mid_cycle_is_prorated_from_its_start(self):
        self.fee.active = False
        self.env["prepaid.tariff.charge"].create(
            {
                "tariff_id": self.flat.id,
                "name": "Bin collection",
                "charge_type": "service_fee",
                "price": 28.0,
                "date_start": "2026-02-15",
            }
        )
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 2, 20))
        # 14 of February's 28 days
        self.assertEqual(self._charge_lines().mapped("amount"), [-14.0])

    def test_inactive_charges_are_not_charged(self):
        self.fee.active = False
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 2, 1))
        self.assertFalse(self._charge_lines())

    def test_demand_charge_on_contracted_capacity_with_the_products_tax(self):
        tax = self.env["account.tax"].create(
            {
                "name": "Charges VAT 10%",
                "amount": 10.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_excluded",
                "company_id": self.env.company.id,
            }
        )
        product = self.env["product.product"].create(
            {"name": "Demand charge", "type": "service", "taxes_id": [Command.set(tax.ids)]}
        )
        self.fee.active = False
        self.env["prepaid.tariff.charge"].create(
            {
                "tariff_id": self.flat.id,
                "name": "Demand",
                "charge_type": "demand",
                "price": 12.0,
                "product_id": product.id,
                "date_start": "2026-02-01",
            }
        )
        self.account.contracted_capacity = 7.5
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 2, 3))
        # 7.5 kVA x 12 = 90, plus 10 % tax
        self.assertEqual(self._charge_lines().mapped("amount"), [-99.0])

    def test_monthly_package_fee_and_included_quantity(self):
        self.fee.active = False
        self.env["prepaid.tariff.charge"].create(
            {
                "tariff_id": self.flat.id,
                "name": "Package 100 kWh",
                "charge_type": "package",
                "price": 30.0,
                "included_qty": 100.0,
                "date_start": "2026-03-01",
            }
        )
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 3, 1))
        self.assertEqual(self._charge_lines().mapped("amount"), [-30.0])
        # 80 kWh free, then 20 free and 50 at the tariff's 0.5
        self._ingest(self.meter, (0, 1000), (1440, 1080))
        self.assertEqual(self._deduct(), 1)
        self.assertEqual(self._balance(), Decimal("470.0000"))
        self._ingest(self.meter, (2880, 1150))
        self.assertEqual(self._deduct(), 1)
        self.assertEqual(self._balance(), Decimal("445.0000"))
        self.assertFalse(self.account._audit_balance())

    def test_package_rules(self):
        values = {"tariff_id": self.flat.id, "name": "Package", "charge_type": "package"}
        with self.assertRaises(ValidationError):
            self.env["prepaid.tariff.charge"].create({**values, "price": 30.0})  # no quantity
        self.env["prepaid.tariff.charge"].create({**values, "price": 30.0, "included_qty": 50})
        with self.assertRaises(ValidationError):
            self.flat.cycle_period = "annual"
        with self.assertRaises(ValidationError):
            self.env["prepaid.tariff.charge"].create({**values, "price": 9.0, "included_qty": 9})

    def test_shared_balance_is_shown(self):
        second = self._create_meter("Water T-101", "000000000102", self.unit, model=self.water)
        self.assertEqual(self.account.meter_count, 2)
        self.assertEqual(self.meter.shared_meter_ids, second)
        self.assertEqual(second.shared_meter_ids, self.meter)
