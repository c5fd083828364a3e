"""M10: the managers' dashboard: its figures for the active company, and the client action
in a browser."""

from decimal import Decimal

from odoo import fields
from odoo.tests import HttpCase, tagged

from prepaid_core import balance

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestDashboard(PrepaidBillingCommon, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        today = fields.Date.context_today(cls.env["prepaid.account"])
        cls.account._recharge("50", memo="desk")
        cls.account._recharge("30", payment_method="bank", memo="desk")
        other = cls.env["prepaid.tenancy"].create(
            {"partner_id": cls.tenant.id, "unit_id": cls.unit2.id, "date_start": "2026-01-01"}
        )
        other.action_open()
        other.account_id._lock_balance()
        other.account_id._post_lines(
            [balance.LedgerLine(balance.ADJUSTMENT, Decimal("-12.5"), "opening debt")]
        )
        cls.env["prepaid.meter.reading.daily"].create(
            {
                "meter_id": cls.meter.id,
                "day": today,
                "company_id": cls.meter.company_id.id,
                "utility": "electricity",
                "consumption": 42.5,
            }
        )
        cls.meter.alarm_level = "arrears"

    def test_figures_of_the_active_company(self):
        data = self.env["prepaid.dashboard"].get_dashboard_data()
        self.assertEqual(data["sales"]["today"]["amount"], 80.0)
        self.assertEqual(data["sales"]["today"]["count"], 2)
        self.assertEqual(data["energy"]["today"], {"electricity": 42.5})
        self.assertEqual(data["energy"]["by_day"][-1]["y"], 42.5)
        self.assertEqual((data["arrears"]["count"], data["arrears"]["amount"]), (1, -12.5))
        statuses = {s["status"]: s["count"] for s in data["statuses"]}
        self.assertEqual(statuses["arrears"], 1)
        self.assertEqual(data["top_consumers"][0]["meter"], self.meter.display_name)
        channels = {c["method"]: c["amount"] for c in data["channels"]}
        self.assertEqual(channels["bank"], 30.0)

    def test_dashboard_in_the_browser(self):
        manager = self._user("dash-manager", "base.group_user,prepaid_meter.group_prepaid_manager")
        manager.password = "dash-manager"
        self.start_tour(
            "/odoo/action-prepaid_billing.prepaid_dashboard_action",
            "prepaid_dashboard",
            login="dash-manager",
        )
