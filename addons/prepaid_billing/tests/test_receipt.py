import re

from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.common import render_pdf

from .test_accounting import PrepaidAccountingCommon

RECEIPT = "prepaid_billing.action_report_prepaid_receipt"
OPENING = "prepaid_billing.action_report_prepaid_opening"


@tagged("post_install", "-at_install")
class TestReceipt(PrepaidAccountingCommon):
    def _html(self, report, records):
        html, _fmt = self.env["ir.actions.report"]._render_qweb_html(report, records.ids)
        return html.decode()

    def _pdf(self, report, records):
        pdf, fmt = render_pdf(self.env, report, records.ids)
        self.assertEqual(fmt, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))
        return pdf

    def _totals(self, html):
        return re.findall(r'prepaid_receipt_total".*?([\d,]+\.\d{2})', html, re.S)

    def _pages(self, pdf):
        return len(re.findall(rb"/Type\s*/Page[^s]", pdf))

    def _assert_three_copies(self, html):
        for copy in ("Tenant copy", "Landlord copy", "Archive copy"):
            self.assertEqual(html.count(copy), 1, copy)
        self.assertEqual(len(re.findall(r"prepaid_receipt_copy ", html)), 3)

    def test_recharge_wizard_prints_sale_receipt(self):
        self.account.preset_credit = 10.0
        action = (
            self.env["prepaid.account.recharge"]
            .create({"account_id": self.account.id, "amount": 100.0, "payment_method": "card"})
            .action_confirm()
        )
        self.assertEqual(action["report_name"], "prepaid_billing.report_prepaid_receipt")
        lines = self.account.line_ids
        self.assertEqual(sorted(lines.mapped("kind")), ["preset_credit", "recharge"])
        line = self.env["prepaid.account.line"].browse(action["context"]["active_ids"])
        self.assertEqual(line._receipt_lines(), lines, "one receipt for both parts")
        html = self._html(RECEIPT, line)
        self._assert_three_copies(html)
        self.assertIn("Recharge Receipt", html)
        self.assertIn(self.account.payment_ids.name, html)
        self.assertIn(self.tenant.name, html)
        self.assertEqual(self._totals(html), ["100.00"] * 3, "the total paid, on each copy")
        pdf = self._pdf(RECEIPT, line)
        self.assertEqual(self._pages(pdf), 1)

    def test_refund_receipt_from_wizard_and_ledger(self):
        self.account._recharge("50")
        action = (
            self.env["prepaid.account.refund"]
            .create({"account_id": self.account.id, "amount": 12.5})
            .action_confirm()
        )
        refund = self.account.line_ids.filtered(lambda line: line.kind == "refund")
        self.assertEqual(action["context"]["active_ids"], refund.ids)
        self.assertEqual(refund.action_print_receipt()["context"]["active_ids"], refund.ids)
        html = self._html(RECEIPT, refund)
        self._assert_three_copies(html)
        self.assertIn("Refund Receipt", html)
        self.assertEqual(self._totals(html), ["12.50"] * 3)
        self.assertEqual(self._pages(self._pdf(RECEIPT, refund)), 1)

    def test_account_opening_receipt(self):
        self.assertIn("not read yet", self._html(OPENING, self.account))
        self._ingest(self.meter, (0, 1000), (60, 1010))
        html = self._html(OPENING, self.account)
        self.assertIn("1,000.00", html, "the first reading of the tenancy")
        self._assert_three_copies(html)
        self.assertIn("Account Opening", html)
        self.assertIn(self.meter.name, html)
        self.assertIn(self.flat.name, html)
        self.assertEqual(self._pages(self._pdf(OPENING, self.account)), 1)

    def test_no_receipt_without_print(self):
        result = (
            self.env["prepaid.account.recharge"]
            .create({"account_id": self.account.id, "amount": 5.0, "print_receipt": False})
            .action_confirm()
        )
        self.assertEqual(result, {"type": "ir.actions.act_window_close"})
