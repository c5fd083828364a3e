"""Browser tours in headless Chromium: QR landing -> recharge -> balance; login -> my meters
-> history; the phone login and meter page on a phone-sized screen."""

from datetime import datetime, timedelta

from odoo.tests import HttpCase, tagged

from .common import PrepaidPortalMixin


class PortalTourCommon(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("30", memo="desk")
        cls.account_a2.sudo()._recharge("10", memo="desk")
        # readings from December 2025 to March 2026, frozen per day for the charts
        start = datetime(2025, 12, 1)
        rows = [
            {
                "meter_id": cls.meter_a1.id,
                "read_at": start + timedelta(days=day),
                "forward_total": 100 + 7.5 * day,
                "source": "poll",
            }
            for day in range(0, 100, 3)
        ]
        cls.env["prepaid.meter.reading"]._ingest(rows)
        cls.env["prepaid.meter.reading.daily"]._freeze(start)


@tagged("post_install", "-at_install")
class TestPortalTours(PortalTourCommon):
    def test_qr_landing_recharge_tour(self):
        """T1 -> T4: anonymous QR landing (allowed), pay 20 with the demo provider (a new
        card: the tenant's saved one is not offered), the balance shows 50 after the
        payment's post-processing."""
        self.company.prepaid_qr_anonymous = True
        # the tenant's saved card, which the anonymous visitor must not be offered
        self.env["payment.token"].create(
            {
                "provider_id": self.provider.id,
                "payment_method_id": self.provider.payment_method_ids[:1].id,
                "partner_id": self.tenant_a.id,
                "provider_ref": "demo-card-a",
                "payment_details": "9876",
                "demo_simulated_state": "done",
            }
        )
        # the link printed on the meter's QR label
        qr_path = self.meter_a1.qr_url.replace(self.meter_a1.get_base_url(), "")
        self.start_tour(qr_path, "prepaid_portal_qr_recharge", login=None)
        self.assertEqual(self._balance(self.account_a1), 50)
        self.assertEqual(len(self._recharge_lines(self.account_a1)), 2)
        recharge = self.env["prepaid.online.recharge"].search([("meter_id", "=", self.meter_a1.id)])
        self.assertEqual(recharge.state, "credited")
        self.assertEqual(recharge.partner_id, self.tenant_a, "anonymous payer: the tenant")

    def test_my_meters_history_tour(self):
        self.user_a.password = "tenant_a"  # start_tour logs in with the login as password
        self.start_tour("/my", "prepaid_portal_my_meters_history", login="tenant_a")


@tagged("post_install", "-at_install")
class TestPortalTourPhone(PortalTourCommon):
    browser_size = "375x667"
    touch_enabled = True

    def test_phone_login_and_meter_tour(self):
        self.user_a.login = "+15550201"
        self.start_tour("/web/phone/login", "prepaid_portal_phone", login=None)
        self.assertEqual(len(self.meter_a2.read_request_ids), 1)
