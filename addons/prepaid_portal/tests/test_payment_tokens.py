"""T4: a tenant's saved payment methods (tokens) are offered to and accepted from the
logged-in tenant only, never from an anonymous QR visitor or another user."""

from odoo.tests import HttpCase, JsonRpcException, tagged

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestRechargeTokens(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.company.prepaid_qr_anonymous = True
        cls.method = cls.provider.payment_method_ids.filtered("support_tokenization")[:1]
        cls.token_a = cls.env["payment.token"].create(
            {
                "provider_id": cls.provider.id,
                "payment_method_id": cls.method.id,
                "partner_id": cls.tenant_a.id,
                "provider_ref": "demo-card-a",
                "payment_details": "9876",
                "demo_simulated_state": "done",
            }
        )

    def _page(self, meter, amount=20):
        page = self._recharge_page(meter, amount)
        self.assertIn("o_payment_form", page.text)
        return page

    def _pay_with_token(self, meter, access_token, token, amount=20.0, route=None):
        return self.make_jsonrpc_request(
            route or f"/my/meters/{meter.id}/recharge/transaction",
            {
                "amount": amount,
                "access_token": access_token,
                "provider_id": self.provider.id,
                "payment_method_id": None,
                "token_id": token.id,
                "flow": "token",
                "tokenization_requested": False,
                "landing_route": "/",
                "is_validation": False,
            },
        )

    def _token_offered(self, page, token):
        return f'id="o_payment_token_{token.id}"' in page.text

    def _tx_count(self):
        return self.env["payment.transaction"].sudo().search_count([])

    def test_qr_visitor_is_not_offered_the_tenants_card(self):
        self.authenticate(None, None)
        self.url_open(self.meter_a1.qr_url.replace(self.meter_a1.get_base_url(), ""))
        page = self._page(self.meter_a1)
        self.assertFalse(self._token_offered(page, self.token_a))
        self.assertNotIn('name="o_payment_tokenize_checkbox"', page.text, "no card saving")

    def test_qr_visitor_cannot_pay_with_the_tenants_card(self):
        """A forged request naming the tenant's token is refused on our route and on
        payment's own route; nothing is created, nothing credited."""
        self.authenticate(None, None)
        self.url_open(self.meter_a1.qr_url.replace(self.meter_a1.get_base_url(), ""))
        access_token = self._page_access_token(self._page(self.meter_a1))
        count = self._tx_count()
        with self.assertRaises(JsonRpcException):
            self._pay_with_token(self.meter_a1, access_token, self.token_a)
        with self.assertRaises(JsonRpcException):
            self._pay_with_token(
                self.meter_a1, access_token, self.token_a, route="/payment/transaction"
            )
        # a token id given with the direct flow is refused too
        with self.assertRaises(JsonRpcException):
            self.make_jsonrpc_request(
                f"/my/meters/{self.meter_a1.id}/recharge/transaction",
                {
                    "amount": 20.0,
                    "access_token": access_token,
                    "provider_id": self.provider.id,
                    "payment_method_id": self.method.id,
                    "token_id": self.token_a.id,
                    "flow": "direct",
                    "tokenization_requested": False,
                    "landing_route": "/",
                    "is_validation": False,
                },
            )
        self.assertEqual(self._tx_count(), count)
        self.assertFalse(self._recharge_lines(self.account_a1))

    def test_qr_visitor_card_is_never_saved_on_the_tenant(self):
        self.authenticate(None, None)
        self.url_open(self.meter_a1.qr_url.replace(self.meter_a1.get_base_url(), ""))
        access_token = self._page_access_token(self._page(self.meter_a1))
        values = self.make_jsonrpc_request(
            f"/my/meters/{self.meter_a1.id}/recharge/transaction",
            {
                "amount": 20.0,
                "access_token": access_token,
                "provider_id": self.provider.id,
                "payment_method_id": self.method.id,
                "token_id": None,
                "flow": "direct",
                "tokenization_requested": True,
                "landing_route": "/",
                "is_validation": False,
            },
        )
        tx = self.env["payment.transaction"].search([("reference", "=", values["reference"])])
        self.assertFalse(tx.tokenize)
        self.assertEqual(tx.partner_id, self.tenant_a)

    def test_other_user_cannot_use_the_tenants_card(self):
        """Tenant B, logged in and holding meter A's QR link, sees only their own cards and
        cannot pay with A's."""
        token_b = self.token_a.copy({"partner_id": self.tenant_b.id, "payment_details": "1111"})
        self.authenticate("tenant_b", "tenant_b_pw")
        self.url_open(self.meter_a1.qr_url.replace(self.meter_a1.get_base_url(), ""))
        page = self._page(self.meter_a1)
        self.assertFalse(self._token_offered(page, self.token_a))
        self.assertTrue(self._token_offered(page, token_b))
        count = self._tx_count()
        with self.assertRaises(JsonRpcException):
            self._pay_with_token(self.meter_a1, self._page_access_token(page), self.token_a)
        self.assertEqual(self._tx_count(), count)

    def test_tenant_pays_with_own_card(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self._page(self.meter_a1)
        self.assertTrue(self._token_offered(page, self.token_a))
        self.assertIn('name="o_payment_tokenize_checkbox"', page.text, "may save a new card")
        values = self._pay_with_token(self.meter_a1, self._page_access_token(page), self.token_a)
        tx = self.env["payment.transaction"].search([("reference", "=", values["reference"])])
        self.assertEqual(tx.token_id, self.token_a)
        self.assertEqual(tx.state, "done", "demo tokens are charged at once")
        tx._post_process()
        self.assertEqual(tx.prepaid_recharge_id.state, "credited")
        self.assertEqual(self._balance(self.account_a1), 20)
