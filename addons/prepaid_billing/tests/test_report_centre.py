import base64
import io
from datetime import date

from openpyxl import load_workbook

from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from .test_accounting import APR_01_NOON, MAR_31_NOON, PrepaidAccountingCommon


@tagged("post_install", "-at_install")
class TestReportCentre(PrepaidAccountingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.operator = cls._user("report_desk", "prepaid_meter.group_prepaid_user")

    def _read_xlsx(self, action):
        attachment_id = int(action["url"].split("/web/content/")[1].split("?")[0])
        attachment = self.env["ir.attachment"].browse(attachment_id)
        workbook = load_workbook(io.BytesIO(base64.b64decode(attachment.datas)), data_only=True)
        rows = list(workbook.active.iter_rows(values_only=True))
        return rows[0], rows[1:-1], rows[-1]

    def _column(self, header, name):
        return header.index(self.env["prepaid.sales.report"]._fields[name].string)

    def _export(self, records, fields, title):
        return self._read_xlsx(
            self.env["prepaid.report.xlsx"]._export_action(records, fields, title)
        )

    def test_sales_income_and_exports(self):
        self.env["prepaid.account.recharge"].with_user(self.operator).create(
            {"account_id": self.account.id, "amount": 100.0, "payment_method": "cash"}
        ).action_confirm()
        self.account._recharge("40", payment_method="online", payment=self._online_payment(40))
        self.account._refund("20", payment_method="bank")
        self._ingest(self.meter, (0, 1000), (MAR_31_NOON, 1030), (APR_01_NOON, 1040))
        self._deduct()
        invoice = self.account._invoice_consumption(until=date(2026, 4, 2))
        self.assertEqual(invoice.amount_total, 20.0)

        sales = self.env["prepaid.sales.report"].search([("account_id", "=", self.account.id)])
        self.assertEqual(len(sales), 3, "two recharges and a refund")
        by_method = {row.payment_method: row.net for row in sales}
        self.assertEqual(by_method, {"cash": 100.0, "online": 40.0, "bank": -20.0})
        self.assertEqual(
            sales.filtered(lambda r: r.payment_method == "cash").user_id, self.operator
        )
        grouped = self.env["prepaid.sales.report"]._read_group(
            [("account_id", "=", self.account.id)], ["site_id"], ["sales:sum", "refunds:sum"]
        )
        self.assertEqual(grouped, [(self.site, 140.0, 20.0)])
        header, rows, totals = self._export(
            sales,
            ["date", "site_id", "user_id", "payment_method", "sales", "refunds", "net"],
            "Sales",
        )
        self.assertEqual(len(rows), 3)
        self.assertEqual(totals[0], "Total")
        self.assertEqual(totals[header.index("Sales")], 140.0)
        self.assertEqual(totals[header.index("Refunds")], 20.0)
        self.assertEqual(totals[header.index("Net Sales")], 120.0)
        self.assertEqual(sum(row[header.index("Net Sales")] for row in rows), 120.0)

        income = self.env["prepaid.income.report"].search([("account_id", "=", self.account.id)])
        self.assertAlmostEqual(sum(income.mapped("total")), 20.0)
        self.assertAlmostEqual(sum(income.mapped("untaxed")), invoice.amount_untaxed)
        self.assertAlmostEqual(sum(income.mapped("quantity")), 40.0)
        header, rows, totals = self._export(
            income,
            ["date", "company_id", "product_id", "quantity", "untaxed", "tax", "total"],
            "Income",
        )
        self.assertEqual(totals[header.index("Total")], 20.0)
        self.assertAlmostEqual(totals[header.index("Income (untaxed)")], invoice.amount_untaxed)
        self.assertAlmostEqual(totals[header.index("Taxes")], invoice.amount_tax)

        agreement = self._agreement()
        header, rows, totals = self._export(
            agreement,
            [
                "account_id",
                "payments",
                "refunds",
                "invoiced",
                "not_invoiced",
                "balance",
                "difference",
            ],
            "Agreement",
        )
        self.assertEqual(rows[0][header.index("Payments Received")], 140.0)
        self.assertEqual(totals[header.index("Difference")], 0.0)
        self.assertEqual(totals[header.index("Balance")], 100.0)

    def test_consumption_arrears_status_exports(self):
        self.account.overdraft_limit = 10.0
        other = self._create_meter("Power T-101 b", "000000000102", self.unit)
        self._ingest(self.meter, (0, 1000), (60, 1004), (24 * 60, 1010))  # 2.00 + 3.00
        self._ingest(other, (0, 500), (60, 502))  # 1.00
        self._deduct()
        self.env["prepaid.meter.reading.daily"]._freeze(self.t0)
        daily = self.env["prepaid.meter.reading.daily"].search([("unit_id", "=", self.unit.id)])
        header, rows, totals = self._export(
            daily, ["day", "building_id", "unit_id", "meter_id", "consumption"], "Consumption"
        )
        self.assertEqual(len(rows), 3, "two days of one meter, one of the other")
        self.assertAlmostEqual(totals[header.index("Consumption")], 12.0)
        per_meter = self.env["prepaid.meter.reading.daily"]._read_group(
            [("unit_id", "=", self.unit.id)], ["meter_id"], ["consumption:sum"]
        )
        self.assertEqual(dict(per_meter), {self.meter: 10.0, other: 2.0})

        arrears = self.env["prepaid.arrears.report"].search([("account_id", "=", self.account.id)])
        self.assertRecordValues(arrears, [{"balance": -6.0, "debt": 6.0}])
        header, rows, totals = self._export(arrears, ["account_id", "balance", "debt"], "Arrears")
        self.assertEqual(totals[header.index("Debt")], 6.0)

        meters = self.env["prepaid.meter"].search([("unit_id", "=", self.unit.id)])
        header, rows, _totals = self._export(
            meters,
            ["name", "address", "status", "alarm_level", "desired_relay_state"],
            "Meter Status",
        )
        address = header.index(meters._fields["address"].string)
        level = header.index(meters._fields["alarm_level"].string)
        self.assertEqual(sorted(row[address] for row in rows), ["000000000101", "000000000102"])
        self.assertEqual({row[level] for row in rows}, {"Alarm 2"})

    def test_alarm_history(self):
        """Each change of alarm level is a meter event, in the alarm history."""
        self.account._recharge("30")
        self._ingest(self.meter, (0, 1000), (180, 1024))  # 12.00: 18 left, below alarm 1
        self._deduct()
        self._ingest(self.meter, (360, 1051))  # 13.50: 4.50 left, alarm 2
        self._deduct()
        self.account._recharge("50")
        action = self.env.ref("prepaid_billing.prepaid_alarm_history_action")
        events = self.env["prepaid.meter.event"].search(
            [
                *safe_eval(action.domain),
                ("meter_id", "=", self.meter.id),
                ("event_type", "=", "alarm_level"),
            ],
            order="id",
        )
        self.assertEqual(events.mapped("code"), ["alarm1", "alarm2", "normal"])
        self.assertEqual(events[0].reason, "Alarm 1 (was Normal)")
        self.assertEqual(set(events.mapped("source")), {"system"})
        header, rows, _totals = self._export(
            events, ["event_at", "meter_id", "event_type", "reason"], "Alarms"
        )
        self.assertEqual([row[header.index("Reason")] for row in rows][-1], "Normal (was Alarm 2)")

    def test_report_access(self):
        self.account._recharge("30")
        accountant = self._user("report_accountant", "prepaid_meter.group_prepaid_accountant")
        self.assertEqual(
            self.env["prepaid.sales.report"]
            .with_user(accountant)
            .search([("account_id", "=", self.account.id)])
            .net,
            30.0,
        )
        other = self.env["res.company"].create({"name": "Other Landlord"})
        outsider = self._user("report_outsider", "prepaid_meter.group_prepaid_manager", other)
        for report in ("prepaid.sales.report", "prepaid.agreement.report"):
            self.assertFalse(
                self.env[report].with_user(outsider).search([("company_id", "=", self.company.id)])
            )
