"""T4 with real provider modules besides payment_demo: AsiaPay (Alipay, WeChat Pay, in CNY)
through its own webhook and secure hash, and payment_custom (wire transfer) confirmed by the
accountant.  The providers' servers cannot be reached; a redirect payment makes no outbound
call, so nothing is replaced: the tests post what AsiaPay would post, signed as it signs.

The provider modules are not dependencies of the add-on: each class is skipped, saying why,
on a database without them."""

import hashlib
import re
import unittest

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import Command, PrepaidPortalMixin

ASIAPAY_SECRET = "landlord-secure-hash-secret"
ASIAPAY_WEBHOOK = "/payment/asiapay/webhook"
ASIAPAY_SIGNED_KEYS = ("src", "prc", "successcode", "Ref", "PayRef", "Cur", "Amt", "payerAuth")


def skip_unless_installed(env, module):
    if env["ir.module.module"]._get(module).state != "installed":
        raise unittest.SkipTest(
            f"{module} is not installed: install it beside prepaid_portal to run these tests "
            f"(scripts/test.sh does)."
        )


class ProviderRechargeCase(PrepaidPortalMixin, HttpCase):
    """The portal site of the other recharge tests, tenant A logged in; skipped without
    the provider module ``provider_module``."""

    provider_module = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        skip_unless_installed(cls.env, cls.provider_module)
        cls._setup_portal()

    @classmethod
    def _bank_journal(cls):
        return cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.company.id)], limit=1
        )

    @classmethod
    def _enable_asiapay(cls, company, currency):
        """The company's AsiaPay in test mode for ``currency`` (one per AsiaPay account)."""
        provider = cls.env["payment.provider"].search(
            [("code", "=", "asiapay"), ("company_id", "=", company.id)], limit=1
        ) or cls.env.ref("payment.payment_provider_asiapay").copy({"company_id": company.id})
        provider.write(
            {
                "state": "test",
                "is_published": True,
                "asiapay_merchant_id": "12345678",
                "asiapay_secure_hash_secret": ASIAPAY_SECRET,
                "asiapay_secure_hash_function": "sha1",
                "available_currency_ids": [Command.set(currency.ids)],
            }
        )
        if company == cls.company:
            provider.journal_id = cls._bank_journal()
        return provider

    def setUp(self):
        super().setUp()
        self.authenticate("tenant_a", "tenant_a_pw")

    def _credited_once(self, recharge, amount):
        self.assertEqual(recharge.state, "credited")
        lines = self._recharge_lines(recharge.account_id)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines.reference, recharge.name)
        self.assertEqual(self._balance(recharge.account_id), amount)


@tagged("post_install", "-at_install")
class TestAsiaPayRecharge(ProviderRechargeCase):
    """A landlord in CNY takes Alipay and WeChat Pay through AsiaPay."""

    provider_module = "payment_asiapay"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cny = cls.env.ref("base.CNY")
        cls.cny.active = True
        cls.company.currency_id = cls.cny  # the landlord keeps the accounts in CNY
        cls.currency = cls.cny
        cls.asiapay = cls._enable_asiapay(cls.company, cls.cny)
        cls.alipay = cls.env.ref("payment.payment_method_alipay")
        cls.wechat_pay = cls.env.ref("payment.payment_method_wechat_pay")
        cls.alipay_hk = cls.env.ref("payment.payment_method_alipay_hk")
        (cls.alipay | cls.wechat_pay | cls.alipay_hk).active = True

    def _other_landlord_asiapay(self):
        other = self.env["res.company"].create(
            {"name": "Other Landlord", "currency_id": self.cny.id}
        )
        return self._enable_asiapay(other, self.cny)

    # === WHAT ASIAPAY SENDS === #
    @staticmethod
    def _asiapay_data(tx, successcode="0", amount=None):
        """AsiaPay's server-to-server notification of ``tx``, signed with the merchant's
        secure hash secret the way AsiaPay signs it (SHA-1 of the values joined by '|')."""
        data = {
            "src": "0",
            "prc": "0",
            "successcode": successcode,
            "Ref": tx.reference,
            "PayRef": "5371990",
            "Cur": "156",  # AsiaPay's code of CNY
            "Amt": f"{amount if amount is not None else tx.amount:.2f}",
            "payerAuth": "U",
            "payMethod": "ALIPAY",
        }
        signed = "|".join([*(data[key] for key in ASIAPAY_SIGNED_KEYS), ASIAPAY_SECRET])
        data["secureHash"] = hashlib.sha1(signed.encode()).hexdigest()
        return data

    def _asiapay_notifies(self, data):
        return self.url_open(ASIAPAY_WEBHOOK, data=data, method="POST")

    def _pay_with_alipay(self, amount=50.0):
        tx, values = self._pay_from_page(self.meter_a1, amount, self.asiapay, self.alipay)
        return tx.prepaid_recharge_id, tx, values

    # === TESTS === #
    def test_form_offers_the_company_methods(self):
        """Alipay and WeChat Pay are offered through the landlord's AsiaPay; AliPayHK (HKD
        only) is not, nor the AsiaPay of another company; a method or a provider turned off
        disappears."""
        other_asiapay = self._other_landlord_asiapay()
        offered = self._offered_methods(self._recharge_page(self.meter_a1, 50))
        self.assertIn(("alipay", self.asiapay.id), offered)
        self.assertIn(("wechat_pay", self.asiapay.id), offered)
        self.assertNotIn(("alipay_hk", self.asiapay.id), offered)
        self.assertFalse({pair for pair in offered if pair[1] == other_asiapay.id})
        self.wechat_pay.active = False
        offered = self._offered_methods(self._recharge_page(self.meter_a1, 50))
        self.assertIn(("alipay", self.asiapay.id), offered)
        self.assertNotIn(("wechat_pay", self.asiapay.id), offered)
        self.asiapay.state = "disabled"
        offered = self._offered_methods(self._recharge_page(self.meter_a1, 50))
        self.assertFalse({pair for pair in offered if pair[1] == self.asiapay.id})

    def test_redirect_form_goes_to_asiapay_in_cny(self):
        recharge, tx, values = self._pay_with_alipay(88.0)
        self.assertEqual(tx.provider_id, self.asiapay)
        self.assertEqual(recharge.account_id, self.account_a1)
        self.assertEqual(tx.currency_id, self.cny)
        form = values["redirect_form_html"]
        self.assertIn(self.asiapay._asiapay_get_api_url(), form)
        self.assertRegex(form, r'name="currCode"\s+value="156"')
        self.assertRegex(form, r'name="payMethod"\s+value="ALIPAY"')
        self.assertIn(tx.reference, form)

    def test_credited_once_when_done(self):
        """Back from AsiaPay before its notification: nothing credited; the signed success
        notification on AsiaPay's webhook makes the payment done, the status poll credits
        it, once."""
        recharge, tx, _values = self._pay_with_alipay(50.0)
        self.url_open(f"/payment/asiapay/return?Ref={tx.reference}")
        self.assertEqual(self._poll_status()["state"], "draft")
        self.assertEqual(recharge.state, "pending")
        self.assertFalse(self._recharge_lines(self.account_a1))
        answer = self._asiapay_notifies(self._asiapay_data(tx))
        self.assertEqual((answer.status_code, answer.text), (200, "OK"))
        self.assertEqual(tx.state, "done")
        self.assertEqual(tx.provider_reference, "5371990")
        self.assertEqual(self._poll_status()["state"], "done")
        self._credited_once(recharge, 50)
        self.assertEqual(recharge.line_ids.payment_id, tx.payment_id)

    def test_r1_notification_repeated(self):
        recharge, tx, _values = self._pay_with_alipay(20.0)
        data = self._asiapay_data(tx)
        for _i in range(4):
            self.assertEqual(self._asiapay_notifies(data).status_code, 200)
            self._poll_status()
            tx._post_process()  # the scheduled post-processing, and ours
            self.env["prepaid.online.recharge"]._cron_retry_failed()
        self._credited_once(recharge, 20)

    def test_r2_late_failure_after_done(self):
        recharge, tx, _values = self._pay_with_alipay(30.0)
        self._asiapay_notifies(self._asiapay_data(tx))
        self._poll_status()
        self.assertEqual(self._asiapay_notifies(self._asiapay_data(tx, "1")).status_code, 200)
        self._poll_status()
        self.assertEqual(tx.state, "done")
        self._credited_once(recharge, 30)

    def test_failed_payment_credits_nothing(self):
        recharge, tx, _values = self._pay_with_alipay(30.0)
        self._asiapay_notifies(self._asiapay_data(tx, "1"))
        self.assertEqual(self._poll_status()["state"], "error")
        self.assertEqual(recharge.state, "canceled")
        self.assertFalse(self._recharge_lines(self.account_a1))

    def test_bad_signature_is_refused(self):
        """A notification whose secure hash does not match is refused by AsiaPay's
        controller (403, logged as the module logs it): the payment stays as it was and
        nothing is credited."""
        recharge, tx, _values = self._pay_with_alipay(40.0)
        forged = dict(self._asiapay_data(tx), secureHash="0" * 40)
        with self.assertLogs("odoo.addons.payment_asiapay.controllers.main", "WARNING") as logs:
            answer = self._asiapay_notifies(forged)
        self.assertEqual(answer.status_code, 403)
        self.assertIn("invalid signature", "\n".join(logs.output))
        self.assertEqual(tx.state, "draft")
        self._poll_status()
        self.assertEqual(recharge.state, "pending")
        self.assertFalse(self._recharge_lines(self.account_a1))

    def test_r3_other_amount_credits_nothing(self):
        """A correctly signed notification of another amount than the transaction's is
        refused by payment's amount check: nothing credited."""
        recharge, tx, _values = self._pay_with_alipay(60.0)
        self._asiapay_notifies(self._asiapay_data(tx, amount=6.0))
        self._poll_status()
        self.assertEqual(tx.state, "error")
        self.assertNotEqual(recharge.state, "credited")
        self.assertFalse(self._recharge_lines(self.account_a1))

    def test_provider_of_another_company_is_refused(self):
        """A request naming another company's AsiaPay gets a clear message; no payment is
        started."""
        other_asiapay = self._other_landlord_asiapay()
        count = self.env["payment.transaction"].sudo().search_count([])
        answer = self._transaction_request(self.meter_a1, 50.0, other_asiapay, self.alipay)
        self.assertIn("does not take recharges", answer["error"]["data"]["message"])
        self.assertEqual(self.env["payment.transaction"].sudo().search_count([]), count)
        self.assertFalse(self.env["prepaid.online.recharge"].search([]))


@tagged("post_install", "-at_install")
class TestAsiaPayCurrency(ProviderRechargeCase):
    """A landlord whose accounts are not in the currency of its AsiaPay account."""

    provider_module = "payment_asiapay"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cny = cls.env.ref("base.CNY")
        cny.active = True
        cls.asiapay = cls._enable_asiapay(cls.company, cny)
        cls.alipay = cls.env.ref("payment.payment_method_alipay")
        cls.alipay.active = True

    def test_currency_not_taken(self):
        """The account's currency is not AsiaPay's: AsiaPay is not offered, and a request
        naming it anyway gets a clear message; nothing is started or charged."""
        offered = self._offered_methods(self._recharge_page(self.meter_a1, 50))
        self.assertFalse({pair for pair in offered if pair[1] == self.asiapay.id})
        answer = self._transaction_request(self.meter_a1, 50.0, self.asiapay, self.alipay)
        self.assertIn("does not take recharges", answer["error"]["data"]["message"])
        self.assertFalse(self.env["prepaid.online.recharge"].search([]))

    def test_no_provider_for_the_currency(self):
        """With no provider that takes the account's currency, the tenant is told to
        recharge at the desk."""
        self.provider.state = "disabled"
        page = self._recharge_page(self.meter_a1, 50)
        self.assertFalse(self._offered_methods(page))
        self.assertIn("No online payment method is available; recharge at the desk.", page.text)


@tagged("post_install", "-at_install")
class TestWireTransferRecharge(ProviderRechargeCase):
    """The tenant pays by wire transfer (payment_custom): pending with the bank details
    until the accountant confirms the transfer arrived."""

    provider_module = "payment_custom"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.transfer = cls.env.ref("payment.payment_provider_transfer")
        cls.transfer.write(
            {"state": "enabled", "is_published": True, "journal_id": cls._bank_journal().id}
        )
        cls.transfer.action_recompute_pending_msg()
        cls.wire = cls.env.ref("payment_custom.payment_method_wire_transfer")
        cls.wire.active = True
        cls.accountant = new_test_user(
            cls.env,
            login="landlord_accountant",
            groups="account.group_account_invoice,prepaid_meter.group_prepaid_accountant",
        )

    def _pay_by_transfer(self, amount):
        tx, values = self._pay_from_page(self.meter_a1, amount, self.transfer, self.wire)
        form = values["redirect_form_html"]
        action = re.search(r'action="([^"]+)"', form).group(1)
        self.assertEqual(action, "/payment/custom/process")
        # the browser submits payment_custom's form
        status = self.url_open(action, data={"reference": tx.reference}, method="POST")
        return tx.prepaid_recharge_id, tx, status

    def test_pending_then_confirmed_once(self):
        offered = self._offered_methods(self._recharge_page(self.meter_a1, 75))
        self.assertIn(("wire_transfer", self.transfer.id), offered)
        recharge, tx, status = self._pay_by_transfer(75.0)
        self.assertEqual(tx.state, "pending")
        self.assertIn("Please use the following transfer details", status.text)
        self.assertEqual(self._poll_status()["state"], "pending")
        self.assertEqual(recharge.state, "pending")
        meter_page = self.url_open(f"/my/meters/{self.meter_a1.id}").text
        self.assertIn(f"/receipt/{recharge.id}", meter_page, "listed, awaiting payment")
        self.assertIn("Awaiting Payment", meter_page)
        self.assertFalse(self._recharge_lines(self.account_a1))
        recharge.with_user(self.accountant).action_confirm_transfer()
        self.assertEqual(tx.state, "done")
        self._credited_once(recharge, 75)
        self.assertTrue(tx.payment_id)
        # confirmed again, or post-processed again: still one credit
        recharge.with_user(self.accountant).action_confirm_transfer()
        self._poll_status()
        self._credited_once(recharge, 75)

    def test_only_an_accountant_confirms(self):
        recharge, tx, _status = self._pay_by_transfer(30.0)
        operator = new_test_user(
            self.env, login="site_operator", groups="prepaid_meter.group_prepaid_user"
        )
        with self.assertRaises(AccessError):
            recharge.with_user(operator).action_confirm_transfer()
        self.assertEqual(tx.state, "pending")
        self.assertFalse(self._recharge_lines(self.account_a1))
