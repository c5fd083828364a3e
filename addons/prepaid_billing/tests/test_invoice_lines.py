from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from odoo import Command
from odoo.tests import tagged

from .test_accounting import PrepaidAccountingCommon


@tagged("post_install", "-at_install")
class TestInvoiceLines(PrepaidAccountingCommon):
    """B9: consumption invoice lines carry the quantity in kWh or m³, the unit of measure
    and the tariff's unit price, one line per time-of-use band and ladder step, and add up
    to the ledger to the cent."""

    def _charged(self):
        lines = self.account.line_ids.filtered(lambda line: line.kind == "deduction")
        total = -sum(Decimal(f"{line.amount:.4f}") for line in lines)
        return total.quantize(Decimal("0.01"), ROUND_HALF_UP)

    def test_one_line_per_band_with_quantity_unit_and_price(self):
        tou = self._create_tariff(
            "TOU",
            [{"price_peak": 0.8123, "price_valley": 0.3017}],
            [(8, 22, "peak"), (22, 8, "valley")],
        )
        self.account.tariff_id = tou
        self.account._recharge("100")
        # 00:00-08:00 valley 7.777 kWh, 08:00-10:00 peak 3.333 kWh (minutes after March 2nd)
        self._ingest(self.meter, (0, 1000), (480, 1007.777), (600, 1011.11))
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 3, 3))
        kwh = self.env.ref("uom.product_uom_kwh")
        lines = invoice.invoice_line_ids.sorted("prepaid_band")
        self.assertRecordValues(
            lines,
            [
                {
                    "prepaid_band": "peak",
                    "quantity": 3.33,
                    "prepaid_quantity": 3.333,
                    "product_uom_id": kwh.id,
                    # 2.7074 + 2.3463 = 5.0537 charged: 5.05, the cent the lines' own
                    # rounding adds (2.71 + 2.35) taken off the largest
                    "price_total": 2.70,
                },
                {
                    "prepaid_band": "valley",
                    "quantity": 7.78,
                    "prepaid_quantity": 7.777,
                    "product_uom_id": kwh.id,
                    "price_total": 2.35,
                },
            ],
        )
        self.assertIn("Peak", lines[0].name)
        for line in lines:
            self.assertAlmostEqual(
                invoice.currency_id.round(line.quantity * line.price_unit), line.price_total
            )
        self.assertAlmostEqual(invoice.amount_total, float(self._charged()))

    def test_one_line_per_ladder_step(self):
        ladder = self._create_tariff(
            "Ladder", [{"limit_qty": 10, "price_flat": 0.5}, {"price_flat": 0.8}]
        )
        self.account.tariff_id = ladder
        self.account._recharge("100")
        self._ingest(self.meter, (0, 1000), (600, 1014.567))  # 10 at 0.5, 4.567 at 0.8
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 3, 3))
        self.assertRecordValues(
            invoice.invoice_line_ids.sorted("prepaid_step"),
            [
                {"prepaid_step": 1, "quantity": 10.0, "prepaid_quantity": 10.0, "price_total": 5.0},
                {
                    "prepaid_step": 2,
                    "quantity": 4.57,
                    "prepaid_quantity": 4.567,
                    "price_total": 3.65,
                },
            ],
        )
        self.assertIn("step 2", invoice.invoice_line_ids.sorted("prepaid_step")[1].name)
        self.assertEqual(self._charged(), Decimal("8.65"))
        self.assertAlmostEqual(invoice.amount_total, 8.65)
        # more consumption: the next invoice bills only the new quantity, on step 2
        self._ingest(self.meter, (720, 1016.567))
        self._deduct()
        second = self.account._invoice_consumption(until=date(2026, 3, 3))
        self.assertRecordValues(
            second.invoice_line_ids,
            [{"prepaid_step": 2, "quantity": 2.0, "price_unit": 0.8, "price_total": 1.6}],
        )

    def test_water_in_cubic_metres(self):
        water_meter = self._create_meter("Water T-101", "000000000201", self.unit, model=self.water)
        water_meter.tariff_id = self._create_tariff("Water", [{"price_flat": 3.2}], utility="water")
        self.account._recharge("100")
        self._ingest(water_meter, (0, 10), (60, 11.5))  # 1.5 m³: 4.80
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 3, 3))
        self.assertRecordValues(
            invoice.invoice_line_ids,
            [
                {
                    "quantity": 1.5,
                    "price_unit": 3.2,
                    "product_uom_id": self.env.ref("uom.product_uom_cubic_meter").id,
                }
            ],
        )

    def test_tariff_product_per_band_and_whether_prices_include_taxes(self):
        tou = self._create_tariff(
            "TOU", [{"price_peak": 1.0, "price_valley": 0.5}], [(8, 22, "peak"), (22, 8, "valley")]
        )
        peak_product = self._create_product(
            name="Electricity, peak", lst_price=0.0, taxes_id=self.tax_included
        )
        tou.invoice_product_ids = [Command.create({"band": "peak", "product_id": peak_product.id})]
        self.assertEqual(tou.tax_mode, "included")
        self.account.tariff_id = tou
        self.account._recharge("100")
        self._ingest(self.meter, (0, 1000), (480, 1008), (600, 1010))  # 8 valley, 2 peak
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 3, 3))
        self.assertRecordValues(
            invoice.invoice_line_ids.sorted("prepaid_band"),
            [
                {"prepaid_band": "peak", "product_id": peak_product.id, "price_total": 2.0},
                {"prepaid_band": "valley", "product_id": self.product_power.id, "price_total": 4.0},
            ],
        )
        added = self.env["account.tax"].create(
            {"name": "VAT 9%", "amount": 9.0, "type_tax_use": "sale", "company_id": self.company.id}
        )
        peak_product.taxes_id = added
        tou.invalidate_recordset(["tax_mode"])
        self.assertEqual(tou.tax_mode, "mixed")
