import json
import re
from decimal import Decimal

from odoo import Command
from odoo.tests import new_test_user

from odoo.addons.prepaid_billing.tests.common import MockSmsGatewayMixin


class PrepaidPortalMixin(MockSmsGatewayMixin):
    """Two tenants of one test site: tenant A (two units, two meters, two accounts: R5) and
    tenant B (one meter), a portal user for each, and the demo payment provider (the only
    "external" part is simulated by payment_demo itself)."""

    @classmethod
    def _setup_portal(cls):
        env = cls.env
        cls.company = env.company
        cls.company.write(
            {
                "prepaid_qr_anonymous": False,
                "prepaid_recharge_min": 5.0,
                "prepaid_recharge_max": 500.0,
                "prepaid_recharge_presets": "10,20,50",
            }
        )
        cls.currency = cls.company.currency_id
        cls.site = env["prepaid.site"].create({"name": "Portal Park", "code": "PP"})
        cls.building = env["prepaid.building"].create({"name": "Block P", "site_id": cls.site.id})
        cls.unit_a1, cls.unit_a2, cls.unit_b = env["prepaid.unit"].create(
            [{"name": name, "building_id": cls.building.id} for name in ("P-1", "P-2", "P-3")]
        )
        cls.ddsy = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        cls.meter_a1, cls.meter_a2, cls.meter_b = env["prepaid.meter"].create(
            [
                {"name": f"Power {unit.name}", "model_id": cls.ddsy.id, "unit_id": unit.id}
                for unit in (cls.unit_a1, cls.unit_a2, cls.unit_b)
            ]
        )
        cls.tenant_a = env["res.partner"].create(
            {"name": "Tenant A", "email": "a@example.com", "phone": "+15550201"}
        )
        cls.tenant_b = env["res.partner"].create(
            {"name": "Tenant B", "email": "b@example.com", "phone": "+15550202"}
        )
        tenancies = env["prepaid.tenancy"].create(
            [
                {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2026-01-01"}
                for partner, unit in (
                    (cls.tenant_a, cls.unit_a1),
                    (cls.tenant_a, cls.unit_a2),
                    (cls.tenant_b, cls.unit_b),
                )
            ]
        )
        tenancies.action_open()
        cls.account_a1, cls.account_a2, cls.account_b = (t.account_id for t in tenancies)
        cls.user_a, cls.user_b = (
            new_test_user(
                env,
                login=login,
                groups="base.group_portal",
                partner_id=partner.id,
                name=partner.name,
                email=partner.email,
                password=f"{login}_pw",
            )
            for login, partner in (("tenant_a", cls.tenant_a), ("tenant_b", cls.tenant_b))
        )
        cls.provider = env.ref("payment.payment_provider_demo")
        assert cls.provider.code == "demo", (
            "These tests pay with Odoo's demo provider: install it beside the add-on "
            "(-i prepaid_portal,payment_demo)."
        )
        bank = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.company.id)], limit=1
        )
        cls.provider.write({"state": "test", "is_published": True})
        cls.provider.journal_id = bank
        cls.payment_method = env.ref("payment.payment_method_demo", raise_if_not_found=False)

    # === HELPERS === #
    def _checkout(self, meter, amount, partner=None):
        """What the recharge transaction route does: the recharge (meter and account fixed
        now) and its draft transaction."""
        partner = partner or meter.tenant_id
        recharge = (
            self.env["prepaid.online.recharge"]
            .sudo()
            .create(
                {
                    "name": "/",
                    "meter_id": meter.id,
                    "account_id": meter.account_id.id,
                    "partner_id": partner.id,
                    "amount": amount,
                    "currency_id": self.currency.id,
                }
            )
        )
        Tx = self.env["payment.transaction"].sudo()
        tx = Tx.create(
            {
                "provider_id": self.provider.id,
                "payment_method_id": self.provider.payment_method_ids[:1].id,
                "reference": Tx._compute_reference("demo", prepaid_recharge_id=recharge.id),
                "amount": amount,
                "currency_id": self.currency.id,
                "partner_id": partner.id,
                "operation": "online_direct",
                "prepaid_recharge_id": recharge.id,
            }
        )
        recharge.write({"transaction_id": tx.id, "name": tx.reference})
        return recharge, tx

    def _notify(self, tx, state="done"):
        """A notification of the demo provider, then post-processing (what the status poll,
        the webhook and the scheduled action each do)."""
        Tx = self.env["payment.transaction"].sudo()
        tx = Tx._process("demo", {"reference": tx.reference, "simulated_state": state})
        tx._post_process()
        return tx

    # === PORTAL CHECKOUT (HttpCase) === #
    def _recharge_page(self, meter, amount=20):
        """The recharge page the tenant opens for ``amount`` (payment's form inside)."""
        page = self.url_open(f"/my/meters/{meter.id}/recharge?amount={amount}")
        self.assertEqual(page.status_code, 200)
        return page

    @staticmethod
    def _page_access_token(page):
        return re.search(r'data-access-token="([^"]+)"', page.text).group(1)

    @staticmethod
    def _offered_methods(page):
        """``{(payment method code, provider id)}`` the recharge page offers."""
        pairs = re.findall(
            r'data-payment-method-code="([^"]+)"\s+data-provider-id="(\d+)"', page.text
        )
        return {(code, int(provider_id)) for code, provider_id in pairs}

    def _transaction_request(self, meter, amount, provider, method, flow="redirect"):
        """What payment's form sends when the tenant pays on the recharge page, to our
        transaction route; the JSON-RPC answer (``result`` or ``error``)."""
        page = self._recharge_page(meter, amount)
        params = {
            "amount": amount,
            "access_token": self._page_access_token(page),
            "provider_id": provider.id,
            "payment_method_id": method.id,
            "token_id": None,
            "flow": flow,
            "tokenization_requested": False,
            "landing_route": "/",
            "is_validation": False,
        }
        response = self.url_open(
            f"/my/meters/{meter.id}/recharge/transaction",
            data=json.dumps({"jsonrpc": "2.0", "method": "call", "id": 0, "params": params}),
            headers={"Content-Type": "application/json"},
        )
        return response.json()

    def _pay_from_page(self, meter, amount, provider, method, flow="redirect"):
        """The tenant pays on the recharge page: the transaction and its processing values."""
        answer = self._transaction_request(meter, amount, provider, method, flow)
        self.assertNotIn("error", answer)
        values = answer["result"]
        Tx = self.env["payment.transaction"].sudo()
        return Tx.search([("reference", "=", values["reference"])]), values

    def _poll_status(self):
        """What the tenant's payment status page does: payment's poll, which post-processes
        the transaction of this session."""
        return self.make_jsonrpc_request("/payment/status/poll", {})

    # === NOTICES === #
    @classmethod
    def _setup_notices(cls):
        """The portal site, account A1 with 50 of credit and billing's alarms at 5 and 2."""
        cls._setup_portal()
        cls.account_a1.write({"alarm1_threshold": 5.0, "alarm2_threshold": 2.0})
        cls.account_a1.sudo()._recharge("50", memo="desk")

    def _send_notices(self):
        """Send the queued notices, as their scheduled action does."""
        self.env["prepaid.account.notice"]._send_queued()

    def _notice_emails(self, account, partner):
        """The messages e-mailed to ``partner`` from the account's chatter (the queued
        notices sent first)."""
        self._send_notices()
        return self.env["mail.message"].search(
            [
                ("model", "=", "prepaid.account"),
                ("res_id", "=", account.id),
                ("message_type", "=", "comment"),
                ("partner_ids", "in", partner.ids),
            ]
        )

    def _subscribe(self, account, partner, threshold, channel, **values):
        return self.env["prepaid.alert.subscription"].create(
            {
                "account_id": account.id,
                "partner_id": partner.id,
                "threshold": threshold,
                "channel": channel,
                **values,
            }
        )

    def _balance(self, account):
        account.invalidate_recordset(["balance"])
        return Decimal(f"{account.balance:.4f}")

    def _recharge_lines(self, account):
        return (
            self.env["prepaid.account.line"]
            .sudo()
            .search([("account_id", "=", account.id), ("kind", "=", "recharge")])
        )


__all__ = ["Command", "PrepaidPortalMixin"]
