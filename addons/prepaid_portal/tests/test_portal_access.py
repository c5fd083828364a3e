"""Security of the tenant pages: record rules, and every route refused with another
tenant's ids or another meter's token, the same way whether the record exists or not."""

import re

from odoo.exceptions import AccessError
from odoo.http import Request
from odoo.tests import HttpCase, JsonRpcException, TransactionCase, tagged

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestPortalRecordRules(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("30", memo="desk")
        cls.account_b.sudo()._recharge("40", memo="desk")

    def test_tenant_sees_only_own_records(self):
        env_a = self.env(user=self.user_a)
        self.assertEqual(env_a["prepaid.account"].search([]), self.account_a1 | self.account_a2)
        self.assertEqual(env_a["prepaid.account.line"].search([]), self.account_a1.line_ids)
        # reading another tenant's record by id is refused
        for record in (self.account_b, self.account_b.line_ids):
            with self.assertRaises(AccessError):
                record.with_user(self.user_a).read(["id"])
        # meters, units, tenancies stay backend records (prepaid_meter's policy): the
        # portal pages decide ownership themselves
        for model in ("prepaid.meter", "prepaid.unit", "prepaid.tenancy"):
            with self.assertRaises(AccessError):
                env_a[model].search([], limit=1)

    def test_tenant_cannot_write(self):
        with self.assertRaises(AccessError):
            self.account_a1.with_user(self.user_a).write({"alarm1_threshold": 0})

    def test_own_subscriptions_only(self):
        Subscription = self.env["prepaid.alert.subscription"]
        mine = Subscription.create(
            {"account_id": self.account_a1.id, "partner_id": self.tenant_a.id, "threshold": 10}
        )
        theirs = Subscription.create(
            {"account_id": self.account_b.id, "partner_id": self.tenant_b.id, "threshold": 10}
        )
        self.assertEqual(Subscription.with_user(self.user_a).search([]), mine)
        with self.assertRaises(AccessError):
            theirs.with_user(self.user_a).write({"threshold": 1})


@tagged("post_install", "-at_install")
class TestPortalRoutes(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("30", memo="desk")
        cls.account_b.sudo()._recharge("40", memo="desk")
        cls.recharge_b, cls.tx_b = cls._checkout_cls(cls.meter_b, 20.0)
        cls.recharge_a, cls.tx_a = cls._checkout_cls(cls.meter_a1, 10.0)

    @classmethod
    def _checkout_cls(cls, meter, amount):
        return PrepaidPortalMixin._checkout(cls, meter, amount)

    def _get(self, url, **kw):
        return self.url_open(url, allow_redirects=False, **kw)

    def _refused(self, response):
        """A refusal: the redirect to /my every tenant page uses, or not found."""
        if response.status_code == 404:
            return True
        return response.status_code in (302, 303) and response.headers["Location"].endswith("/my")

    def _same(self, foreign, missing):
        """No leak: a foreign record answers like a record that does not exist."""
        self.assertEqual(foreign.status_code, missing.status_code)
        self.assertEqual(foreign.headers.get("Location"), missing.headers.get("Location"))

    # === ISOLATION, ONE ROUTE AT A TIME === #
    def test_meter_page_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        own = self._get(f"/my/meters/{self.meter_a1.id}")
        self.assertEqual(own.status_code, 200)
        self.assertIn("Power P-1", own.text)
        foreign = self._get(f"/my/meters/{self.meter_b.id}")
        self.assertTrue(self._refused(foreign))
        self._same(foreign, self._get("/my/meters/999999"))

    def test_history_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        self.assertEqual(self._get(f"/my/meters/{self.meter_a1.id}/history").status_code, 200)
        foreign = self._get(f"/my/meters/{self.meter_b.id}/history?period=year")
        self.assertTrue(self._refused(foreign))
        self._same(foreign, self._get("/my/meters/999999/history?period=year"))

    def test_recharge_page_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        foreign = self._get(f"/my/meters/{self.meter_b.id}/recharge?amount=20")
        self.assertTrue(self._refused(foreign))
        self._same(foreign, self._get("/my/meters/999999/recharge?amount=20"))

    def test_alerts_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        foreign = self._get(f"/my/meters/{self.meter_b.id}/alerts")
        self.assertTrue(self._refused(foreign))
        self._same(foreign, self._get("/my/meters/999999/alerts"))
        posted = self.url_open(
            f"/my/meters/{self.meter_b.id}/alerts",
            data={"threshold": "5", "channel": "email", "csrf_token": Request.csrf_token(self)},
            allow_redirects=False,
        )
        self.assertTrue(self._refused(posted))
        self.assertFalse(
            self.env["prepaid.alert.subscription"].search([("account_id", "=", self.account_b.id)])
        )

    def test_read_now_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        csrf = Request.csrf_token(self)
        foreign = self.url_open(
            f"/my/meters/{self.meter_b.id}/read", data={"csrf_token": csrf}, allow_redirects=False
        )
        self.assertTrue(self._refused(foreign))
        self.assertFalse(self.meter_b.read_request_ids)
        own = self.url_open(
            f"/my/meters/{self.meter_a1.id}/read", data={"csrf_token": csrf}, allow_redirects=False
        )
        self.assertIn("read_requested", own.headers["Location"])
        self.assertEqual(len(self.meter_a1.read_request_ids), 1)
        self.assertEqual(self.meter_a1.read_request_ids.partner_id, self.tenant_a)

    def test_receipt_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        own = self._get(f"/my/meters/{self.meter_a1.id}/receipt/{self.recharge_a.id}")
        self.assertEqual(own.status_code, 200)
        self.assertIn(self.recharge_a.name, own.text)
        # another tenant's recharge, through their meter or through one's own meter
        for url in (
            f"/my/meters/{self.meter_b.id}/receipt/{self.recharge_b.id}",
            f"/my/meters/{self.meter_a1.id}/receipt/{self.recharge_b.id}",
        ):
            response = self._get(url)
            self.assertTrue(self._refused(response), url)
            self.assertNotIn(self.recharge_b.name, response.text)
        self._same(
            self._get(f"/my/meters/{self.meter_a1.id}/receipt/{self.recharge_b.id}"),
            self._get(f"/my/meters/{self.meter_a1.id}/receipt/999999"),
        )

    def test_transaction_route_of_another_tenant(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        count = self.env["payment.transaction"].search_count([])
        with self.assertRaises(JsonRpcException):
            self.make_jsonrpc_request(
                f"/my/meters/{self.meter_b.id}/recharge/transaction",
                {
                    "amount": 20.0,
                    "access_token": "x",
                    "provider_id": self.provider.id,
                    "payment_method_id": self.provider.payment_method_ids[:1].id,
                    "token_id": None,
                    "flow": "direct",
                    "tokenization_requested": False,
                    "landing_route": "/",
                    "is_validation": False,
                },
            )
        self.assertEqual(self.env["payment.transaction"].search_count([]), count)

    def test_other_meters_token(self):
        """A meter's token opens that meter only; a wrong token opens nothing."""
        self.authenticate(None, None)
        token_a = self.meter_a1.sudo().access_token
        foreign = self._get(f"/my/meters/{self.meter_b.id}?access_token={token_a}")
        self.assertTrue(self._refused(foreign))
        self.assertEqual(self._get("/my/meter/qr/not-a-token").status_code, 404)
        self.assertEqual(self._get(f"/my/meter/qr/{token_a[:-1]}x").status_code, 404)
        # having proven meter A's token gives nothing on meter B
        self.assertEqual(self._get(f"/my/meter/qr/{token_a}").status_code, 303)
        for url in (
            f"/my/meters/{self.meter_b.id}",
            f"/my/meters/{self.meter_b.id}/history",
            f"/my/meters/{self.meter_b.id}/recharge?amount=20",
            f"/my/meters/{self.meter_b.id}/receipt/{self.recharge_b.id}",
        ):
            self.assertTrue(self._refused(self._get(url)), url)

    def test_my_meters_list_and_counter(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self.url_open("/my/meters")
        self.assertIn("Power P-1", page.text)
        self.assertIn("Power P-2", page.text)
        self.assertNotIn("Power P-3", page.text)
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["prepaid_meter_count"]})
        self.assertEqual(counters["prepaid_meter_count"], 2)

    # === T1: QR LANDING === #
    def test_qr_landing_needs_login_when_not_allowed(self):
        self.authenticate(None, None)
        token = self.meter_a1.sudo().access_token
        landing = self._get(f"/my/meter/qr/{token}")
        self.assertTrue(landing.headers["Location"].endswith(f"/my/meters/{self.meter_a1.id}"))
        page = self._get(f"/my/meters/{self.meter_a1.id}")
        self.assertIn("/web/login", page.headers["Location"])
        self.assertNotIn(token, page.headers["Location"], "the token travels no further")

    def test_qr_landing_anonymous_when_allowed(self):
        self.company.prepaid_qr_anonymous = True
        self.authenticate(None, None)
        token = self.meter_a1.sudo().access_token
        page = self.url_open(f"/my/meter/qr/{token}")
        self.assertEqual(page.status_code, 200)
        self.assertTrue(page.url.endswith(f"/my/meters/{self.meter_a1.id}"))
        self.assertIn("o_prepaid_balance", page.text)
        self.assertIn("30.00", page.text)
        # the session now opens this meter's history and recharge, not its owner's alerts
        self.assertEqual(self._get(f"/my/meters/{self.meter_a1.id}/history").status_code, 200)
        recharge = self._get(f"/my/meters/{self.meter_a1.id}/recharge?amount=20")
        self.assertEqual(recharge.status_code, 200)
        self.assertIn("o_payment_form", recharge.text)
        self.assertIn(
            "/web/login", self._get(f"/my/meters/{self.meter_a1.id}/alerts").headers["Location"]
        )

    def test_printed_qr_code_opens_the_meter(self):
        """T1/T7: the link of the printed label (prepaid_meter's ``qr_url``) is proven once
        and continues on the meter's page without the token in the address."""
        self.company.prepaid_qr_anonymous = True
        meter = self.meter_a1
        report = self.env["ir.actions.report"]
        html, _type = report._render_qweb_html(
            "prepaid_meter.report_prepaid_meter_label", meter.ids
        )
        self.assertIn("prepaid_meter_qr", html.decode())
        self.assertIn(meter.name, html.decode())
        self.authenticate(None, None)
        page = self.url_open(meter.qr_url.replace(meter.get_base_url(), ""))
        self.assertEqual(page.status_code, 200)
        self.assertTrue(page.url.endswith(f"/my/meters/{meter.id}"), page.url)
        self.assertNotIn("access_token", page.url)
        # a wrong token on the same id opens nothing
        self.authenticate(None, None)
        wrong = self._get(f"/my/meters/{meter.id}?access_token={'0' * 36}")
        self.assertTrue(self._refused(wrong))

    def test_share_link_opens_the_meter(self):
        """T7: Odoo's share wizard on a meter gives a link that opens its page."""
        self.company.prepaid_qr_anonymous = True
        wizard = (
            self.env["portal.share"]
            .with_context(active_model="prepaid.meter", active_id=self.meter_b.id)
            .create({})
        )
        self.assertIn("access_token=", wizard.share_link)
        self.authenticate(None, None)
        page = self.url_open(wizard.share_link.replace(self.base_url(), ""))
        self.assertEqual(page.status_code, 200)
        self.assertTrue(page.url.endswith(f"/my/meters/{self.meter_b.id}"), page.url)
        self.assertIn("Power P-3", page.text)

    # === T4: THE WHOLE PAYMENT FLOW OVER HTTP === #
    def test_recharge_over_http(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        low = self.url_open(f"/my/meters/{self.meter_a2.id}/recharge?amount=1")
        self.assertIn("o_prepaid_error", low.text)
        page = self.url_open(f"/my/meters/{self.meter_a2.id}/recharge?amount=25")
        token = re.search(r'data-access-token="([^"]+)"', page.text).group(1)
        values = self.make_jsonrpc_request(
            f"/my/meters/{self.meter_a2.id}/recharge/transaction",
            {
                "amount": 25.0,
                "access_token": token,
                "provider_id": self.provider.id,
                "payment_method_id": self.provider.payment_method_ids[:1].id,
                "token_id": None,
                "flow": "direct",
                "tokenization_requested": False,
                "landing_route": "https://evil.example.com/",
                "is_validation": False,
            },
        )
        tx = self.env["payment.transaction"].search([("reference", "=", values["reference"])])
        self.assertEqual(tx.prepaid_meter_id, self.meter_a2)
        self.assertEqual(tx.landing_route, f"/my/meters/{self.meter_a2.id}")
        # a tampered amount is refused by the signed token
        with self.assertRaises(JsonRpcException):
            self.make_jsonrpc_request(
                f"/my/meters/{self.meter_a2.id}/recharge/transaction",
                {"amount": 2500.0, "access_token": token, "provider_id": self.provider.id},
            )
        self.make_jsonrpc_request(
            "/payment/demo/simulate_payment",
            {"reference": tx.reference, "payment_details": "4242", "simulated_state": "done"},
        )
        status = self.make_jsonrpc_request("/payment/status/poll", {})
        self.assertEqual(status["state"], "done")
        self.assertEqual(self._balance(self.account_a2), 25)
        self.assertEqual(tx.prepaid_recharge_id.state, "credited")
        self.assertIn(
            "o_prepaid_receipt_link", self.url_open(f"/my/meters/{self.meter_a2.id}").text
        )

    def test_no_text_injected_through_the_address(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self.url_open(f"/my/meters/{self.meter_a1.id}?error=Call+us+on+555&message=Pay+here")
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("Call us on 555", page.text)
        self.assertNotIn("Pay here", page.text)
        page = self.url_open(f"/my/meters/{self.meter_a1.id}?error_text=Call+us+on+555")
        self.assertEqual(page.status_code, 200)
        self.assertNotIn("Call us on 555", page.text)
        self.assertNotIn("o_prepaid_error", page.text)
