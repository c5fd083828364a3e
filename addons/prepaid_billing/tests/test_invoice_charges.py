"""B14/B15 + B9: fixed charges and common-area shares are billed on the invoice of the
billing period in which the ledger charged them (taxes from the charge's product, the
common meter named), each once whatever reruns; B9: invoice lines priced so that each bills
exactly what was charged, with no rounding line, over a batch of awkward amounts."""

import random
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from dateutil.relativedelta import relativedelta

from odoo import Command
from odoo.tests import tagged

from prepaid_core import balance

from .test_accounting import MAR_31_NOON, PrepaidAccountingCommon

APR_1, MAY_1, JUN_1 = date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)
CENT = Decimal("0.01")


class InvoiceChargesCommon(PrepaidAccountingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.invoiced_until = date(2026, 3, 1)
        cls.account._recharge("500")
        cls.vat_added = cls.env["account.tax"].create(
            {
                "name": "Charges VAT 10%",
                "amount": 10.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_excluded",
                "company_id": cls.company.id,
            }
        )
        cls.demand_product = cls._create_product(
            name="Demand charge", lst_price=0.0, taxes_id=cls.vat_added
        )

    def _charge(self, name, kind, price, start, product=None):
        return self.env["prepaid.tariff.charge"].create(
            {
                "tariff_id": self.flat.id,
                "name": name,
                "charge_type": kind,
                "price": price,
                "product_id": product.id if product else False,
                "date_start": start,
            }
        )

    def _common_share(self, amount, start, end):
        """The account's share ``amount`` of a common meter's cycle, posted by the split."""
        common_unit = self.env["prepaid.unit"].create(
            {"name": "Stairs", "building_id": self.building.id}
        )
        meter = self._create_meter("Common stairs", "000000000901", common_unit)
        area = (
            self.env["prepaid.common.area"]
            .sudo()
            .create(
                {
                    "name": "Block T stairs",
                    "building_id": self.building.id,
                    "meter_id": meter.id,
                    "tariff_id": self.flat.id,
                    "date_start": start,
                    "share_ids": [Command.create({"unit_id": self.unit.id})],
                }
            )
        )
        period = (
            self.env["prepaid.common.area.period"]
            .sudo()
            .create(
                {"common_area_id": area.id, "period_start": start, "period_end": end, "cost": 9.0}
            )
        )
        period._post_parts({self.unit.id: Decimal(amount)})
        return period

    def _invoice(self, today):
        invoices = self.env["prepaid.account"]._cron_invoice_consumption(today=today)
        return invoices.filtered(lambda m: m.prepaid_account_id == self.account)

    def _charged_before(self, until):
        lines = self.account.line_ids.filtered(
            lambda ln: ln.kind in ("deduction", "fixed_charge", "common_area") and ln.date < until
        )
        total = -sum(Decimal(f"{ln.amount:.4f}") for ln in lines)
        return total.quantize(CENT, ROUND_HALF_UP)

    def _rounding_lines(self, invoices):
        return invoices.invoice_line_ids.filtered(lambda ln: "(rounding)" in ln.name)


@tagged("post_install", "-at_install")
class TestInvoiceCharges(InvoiceChargesCommon):
    def test_charges_and_common_share_on_the_invoice_of_their_period(self):
        self._charge("Service fee", "service_fee", 10.0, "2026-03-11")  # 21 of 31 days
        self._charge("Demand", "demand", 12.0, "2026-03-01", self.demand_product)
        self.account.contracted_capacity = 7.5
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 3, 11))
        fee, demand = self.account.line_ids.filtered("charge_id").sorted("amount")[::-1]
        self.assertEqual((fee.amount, fee.date), (-6.7742, date(2026, 3, 1)))
        self.assertEqual((demand.amount, demand.date), (-99.0, date(2026, 3, 1)))
        self._common_share("3.3333", date(2026, 2, 1), date(2026, 3, 1))
        self._common_share_late()
        self._ingest(self.meter, (0, 1000), (MAR_31_NOON, 1030.333))  # 15.1665
        self._deduct()
        invoice = self._invoice(APR_1)
        lines = invoice.invoice_line_ids
        self.assertFalse(self._rounding_lines(invoice))
        by_name = {line.name: line for line in lines}
        self.assertRecordValues(
            by_name["Service fee 2026-03-01 - 2026-03-31"],
            [
                {
                    "quantity": 1.0,
                    "price_total": 6.77,
                    "product_id": False,
                    "prepaid_line_id": fee.id,
                }
            ],
        )
        self.assertRecordValues(
            by_name["Demand 2026-03-01 - 2026-03-31"],
            [
                {
                    "product_id": self.demand_product.id,
                    "tax_ids": self.vat_added.ids,
                    "price_unit": 90.0,
                    "price_subtotal": 90.0,
                    "price_total": 99.0,
                }
            ],
        )
        share = lines.filtered(lambda ln: ln.prepaid_line_id.kind == "common_area")
        self.assertEqual(share.name, "Common-area share: Common stairs 2026-02-01 - 2026-02-28")
        self.assertEqual((share.price_total, share.product_id), (3.33, self.product_power))
        # 15.17 + 6.77 + 99.00 + 3.33; the March share is charged in April: not yet
        self.assertAlmostEqual(invoice.amount_total, 124.27)
        self.assertEqual(Decimal(f"{invoice.amount_total:.2f}"), self._charged_before(APR_1))
        self.assertEqual(len(lines), 4)
        self.assertFalse(self._invoice(APR_1), "a billing day is invoiced once")
        self.assertFalse(self.account._invoice_consumption(until=APR_1), "nothing left")
        # May: the March share (charged on April 1), April's fee and demand, each once
        self.env["prepaid.account"]._cron_fixed_charges(today=APR_1)
        may = self._invoice(MAY_1)
        self.assertEqual(
            sorted(may.invoice_line_ids.mapped("name")),
            [
                "Common-area share: Common stairs 2026-03-01 - 2026-03-31",
                "Demand 2026-04-01 - 2026-04-30",
                "Service fee 2026-04-01 - 2026-04-30",
            ],
        )
        # the fees' sub-cents never drift: 6.7742 billed 6.77, then 16.7742 in all 16.77
        self.assertAlmostEqual(
            sum(
                (invoice | may)
                .invoice_line_ids.filtered(lambda ln: not ln.product_id)
                .mapped("price_total")
            ),
            16.77,
        )
        self.env.flush_all()
        self.assertRecordValues(
            self._agreement(), [{"invoiced": 124.27 + may.amount_total, "difference": 0.0}]
        )

    def _common_share_late(self):
        """The March share: posted on the split's day, dated April 1."""
        period = self.env["prepaid.common.area.period"].sudo().search([])[:1]
        later = (
            self.env["prepaid.common.area.period"]
            .sudo()
            .create(
                {
                    "common_area_id": period.common_area_id.id,
                    "period_start": date(2026, 3, 1),
                    "period_end": APR_1,
                    "cost": 5.0,
                }
            )
        )
        later._post_parts({self.unit.id: Decimal("1.2345")})
        return later

    def test_charges_posted_by_a_run_killed_and_rerun_are_invoiced_once(self):
        self._charge("Service fee", "service_fee", 10.0, "2026-03-01")
        self._ingest(self.meter, (0, 1000), (MAR_31_NOON, 1010))  # 5.00
        self._deduct()
        # the fixed-charge run was killed before it charged March: April 1 bills consumption
        first = self._invoice(APR_1)
        self.assertEqual(first.amount_total, 5.0)
        # an invoicing run killed after its invoice (rolled back), then run again
        with self.assertRaises(InterruptedError), self.env.cr.savepoint():
            self.account._invoice_consumption(until=MAY_1)
            raise InterruptedError
        self.env.invalidate_all()
        # the charge run restarted charges March and April (March late, on the next invoice)
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 4, 2))
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 4, 2))
        self.assertEqual(len(self.account.line_ids.filtered("charge_id")), 2)
        may = self._invoice(MAY_1)
        self.assertEqual(
            sorted(may.invoice_line_ids.mapped("name")),
            ["Service fee 2026-03-01 - 2026-03-31", "Service fee 2026-04-01 - 2026-04-30"],
        )
        self.assertEqual(may.amount_total, 20.0)
        # run again, killed between its invoice and the account's mark, and on demand
        self.env.cr.execute(
            "UPDATE prepaid_account SET invoiced_until = %s WHERE id = %s", [APR_1, self.account.id]
        )
        self.account.invalidate_recordset(["invoiced_until"])
        self.assertFalse(self._invoice(MAY_1))
        self.assertFalse(self.account._invoice_consumption(until=MAY_1))
        # June: May's fee alone
        self.env["prepaid.account"]._cron_fixed_charges(today=MAY_1)
        june = self._invoice(JUN_1)
        self.assertEqual(june.invoice_line_ids.name, "Service fee 2026-05-01 - 2026-05-31")
        self.assertEqual(june.amount_total, 10.0)

    def test_postpaid_bill_adds_the_charges_with_their_taxes(self):
        self.account.billing_type = "postpaid"
        self.tenant.property_payment_term_id = self.env.ref("account.account_payment_term_30days")
        self._charge("Demand", "demand", 12.0, "2026-03-01", self.demand_product)
        self.account.contracted_capacity = 2.345
        self.env["prepaid.account"]._cron_fixed_charges(today=date(2026, 3, 1))
        # 2.345 x 12 = 28.14, and 10 %
        self.assertIn(self.account.line_ids.filtered("charge_id").amount, (-30.954, -30.95))
        bill = self._invoice(APR_1)
        self.assertRecordValues(
            bill, [{"amount_untaxed": 28.14, "amount_total": 30.95, "invoice_date_due": MAY_1}]
        )
        self.assertFalse(self._rounding_lines(bill))


@tagged("post_install", "-at_install")
class TestInvoiceLinePrices(InvoiceChargesCommon):
    """50 accounts charged awkward amounts (two time-of-use bands at prices of 4 decimals,
    quantities of 3): every invoice bills what was charged with no rounding line, whether
    the company rounds taxes per line or per tax."""

    N = 50

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Unit = cls.env["prepaid.unit"]
        cls.accounts = cls.env["prepaid.account"]
        for index in range(cls.N):
            unit = Unit.create({"name": f"B-{index}", "building_id": cls.building.id})
            tenancy = cls.env["prepaid.tenancy"].create(
                {"partner_id": cls.tenant.id, "unit_id": unit.id, "date_start": "2026-01-01"}
            )
            tenancy.action_open()
            cls.accounts |= tenancy.account_id
        cls.accounts.write({"tariff_id": cls.flat.id, "invoiced_until": date(2026, 3, 1)})

    def _consume(self, rnd, day):
        """A consumption ledger line per account: peak and valley at awkward prices."""
        for account in self.accounts:
            parts, total = {}, Decimal(0)
            for band in ("peak", "valley"):
                rate = Decimal(rnd.choice(["0.8123", "0.3017", "0.55", "0.5", "1.0833"]))
                quantity = Decimal(rnd.randint(1, 900000)).scaleb(-3)
                amount = (rate * quantity).quantize(Decimal("0.0001"), ROUND_HALF_UP)
                parts[f"v1|{band}|1|electricity"] = [str(quantity), str(amount), str(rate)]
                total += amount
            account._post_lines(
                [balance.LedgerLine(balance.DEDUCTION, -total, "March")],
                date=day,
                detail={"meters": {}, "lines": parts},
            )

    def test_a_batch_of_invoices_needs_no_rounding_line(self):
        for seed, method in enumerate(("round_globally", "round_per_line")):
            with self.subTest(method=method):
                self.company.tax_calculation_rounding_method = method
                until = (APR_1, MAY_1)[seed]
                self._consume(random.Random(seed), until.replace(day=15) - relativedelta(months=1))
                invoices = self.env["prepaid.account"]._cron_invoice_consumption(
                    today=until, account_ids=self.accounts.ids
                )
                self.assertEqual(len(invoices), self.N)
                self.assertFalse(self._rounding_lines(invoices))
                for account in self.accounts:
                    invoice = invoices.filtered(lambda m, a=account: m.prepaid_account_id == a)
                    charged = sum(
                        Decimal(f"{ln.amount:.4f}")
                        for ln in account.line_ids.filtered(lambda ln: ln.kind == "deduction")
                    )
                    billed = sum(Decimal(f"{inv.amount_total:.2f}") for inv in account.invoice_ids)
                    self.assertEqual(billed, (-charged).quantize(CENT, ROUND_HALF_UP))
                    for line in invoice.invoice_line_ids:
                        # the quantity, or (no price giving the amount for it) named
                        self.assertTrue(line.prepaid_quantity)
                        exact = Decimal(f"{line.prepaid_quantity:.6f}")
                        if Decimal(f"{line.quantity:.2f}") != exact.quantize(CENT, ROUND_HALF_UP):
                            self.assertEqual(line.quantity, 1.0)
                            self.assertIn("kWh", line.name)
