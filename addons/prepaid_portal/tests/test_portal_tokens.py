"""B13/T4/T5: the tenant's recharge result, receipt and history pages show the state of the
credits sent to their meters and the tokens to enter; another tenant's look missing."""

import html

from odoo.tests import HttpCase, tagged

from odoo.addons.prepaid_billing.tests.test_token_receipt import TokenCreditMixin

from .common import PrepaidPortalMixin

TOKEN_A = "11112222333344445555"
TOKEN_B = "99998888777766665555"


@tagged("post_install", "-at_install")
class TestPortalTokens(TokenCreditMixin, PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()

    def setUp(self):
        super().setUp()
        self._mock_sms_gateway()
        # each tenant paid online for a keypad meter
        self.recharge_a, self.credit_a = self._pay(self.meter_a1, 25.0, TOKEN_A, "TID-A")
        self.recharge_b, self.credit_b = self._pay(self.meter_b, 40.0, TOKEN_B, "TID-B")

    def _pay(self, meter, amount, token, reference):
        """An online recharge paid and credited, and the keypad credit its line sent."""
        recharge, tx = self._checkout(meter, amount)
        self._notify(tx)
        self.assertEqual(recharge.state, "credited")
        line = recharge.line_ids.filtered(lambda line: line.kind == "recharge")
        return recharge, self._sell_credit(line, meter, "keypad", token, reference)

    def _history_after_desk_sale(self, *credit_args):
        """Tenant A's history page after a desk recharge sold a credit (``_sell_credit``
        arguments after the meter)."""
        line = self.account_a1.sudo()._recharge("15", memo="desk")[:1]
        self._sell_credit(line, self.meter_a1, *credit_args)
        self.authenticate("tenant_a", "tenant_a_pw")
        return self._get(f"/my/meters/{self.meter_a1.id}/history").text

    def _get(self, url):
        return self.url_open(url, allow_redirects=False)

    def _assert_same_as_missing(self, foreign, missing):
        self.assertIn(foreign.status_code, (302, 303))
        self.assertEqual(foreign.status_code, missing.status_code)
        self.assertEqual(foreign.headers.get("Location"), missing.headers.get("Location"))
        self.assertNotIn("9999 8888", foreign.text)

    def test_result_receipt_and_history_show_own_token(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        grouped = "1111 2222 3333 4444 5555"
        for url in (
            f"/my/meters/{self.meter_a1.id}",  # where the payment lands: recent recharges
            f"/my/meters/{self.meter_a1.id}/receipt/{self.recharge_a.id}",
            f"/my/meters/{self.meter_a1.id}/history",
        ):
            page = self._get(url)
            self.assertEqual(page.status_code, 200, url)
            self.assertIn(grouped, page.text, url)
            self.assertIn("o_prepaid_token", page.text, url)
            self.assertIn("TID-A", page.text, url)
            self.assertIn("Issued", page.text, url)
            self.assertNotIn("9999 8888", page.text, url)

    def test_state_follows_the_credit(self):
        self.credit_a._mark_applied("the meter confirmed it")
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self._get(f"/my/meters/{self.meter_a1.id}/history").text
        self.assertIn("Applied", page)
        self.assertIn("1111 2222 3333 4444 5555", page)

    def test_credit_to_issue_shows_no_token(self):
        page = self._history_after_desk_sale()
        self.assertIn("To Issue", page)
        self.assertIn("Being prepared for the meter.", page)

    def test_card_credit_shows_no_token(self):
        page = self._history_after_desk_sale("card", "CARDPAYLOAD" * 4, "SEQ-7")
        self.assertIn(
            "Written to your meter's card at the desk (reference SEQ-7).", html.unescape(page)
        )
        self.assertNotIn("CARDPAYLOAD", page)

    def test_other_tenants_credits_look_missing(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        meter_b, missing = self.meter_b.id, 999999
        for foreign, absent in (
            (f"/my/meters/{meter_b}", f"/my/meters/{missing}"),
            (f"/my/meters/{meter_b}/history", f"/my/meters/{missing}/history"),
            (
                f"/my/meters/{self.meter_a1.id}/receipt/{self.recharge_b.id}",
                f"/my/meters/{self.meter_a1.id}/receipt/{missing}",
            ),
            (
                f"/my/meters/{meter_b}/receipt/{self.recharge_b.id}",
                f"/my/meters/{missing}/receipt/{self.recharge_b.id}",
            ),
        ):
            self._assert_same_as_missing(self._get(foreign), self._get(absent))
        # tenant B sees their own token, never tenant A's
        self.authenticate("tenant_b", "tenant_b_pw")
        page = self._get(f"/my/meters/{meter_b}/history").text
        self.assertIn("9999 8888 7777 6666 5555", page)
        self.assertNotIn("1111 2222", page)
