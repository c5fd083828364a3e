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
