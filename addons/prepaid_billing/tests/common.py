from datetime import datetime
from decimal import Decimal
from unittest.mock import patch

from odoo import Command

from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon
from odoo.addons.sms.tools.sms_api import SmsApi


class PrepaidBillingCommon(PrepaidMeterCommon):
    """The meter test site, with tariffs of each kind and an open account for one tenant."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the ledger alone (the demo company records payments and invoices: B9 has its tests)
        cls.env.company.prepaid_accounting = False
        cls.flat = cls._create_tariff("Flat", [{"price_flat": 0.5}])
        cls.tenancy = cls.env["prepaid.tenancy"].create(
            {"partner_id": cls.tenant.id, "unit_id": cls.unit.id, "date_start": "2026-01-01"}
        )
        cls.tenancy.action_open()
        cls.account = cls.tenancy.account_id
        cls.account.write(
            {"tariff_id": cls.flat.id, "alarm1_threshold": 20.0, "alarm2_threshold": 5.0}
        )

    @classmethod
    def _create_tariff(cls, name, steps, segments=None, valid_from=None, env=None, **values):
        return (env or cls.env)["prepaid.tariff"].create(
            {
                "name": name,
                "timezone": "UTC",
                **values,
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": valid_from or datetime(2020, 1, 1),
                            "code": "v1",
                            "use_tou": bool(segments),
                            "step_ids": [
                                Command.create({"sequence": i, **step})
                                for i, step in enumerate(steps, 1)
                            ],
                            "segment_ids": [
                                Command.create({"hour_from": start, "hour_to": end, "band": band})
                                for start, end, band in (segments or [])
                            ],
                        }
                    )
                ],
            }
        )

    def _deduct(self, **kwargs):
        return self.env["prepaid.account"]._run_deductions(**kwargs)

    def _balance(self, account=None):
        account = account or self.account
        account.invalidate_recordset(["balance"])
        return Decimal(f"{account.balance:.4f}")


class MockSmsGatewayMixin:
    """Only the external SMS gateway (IAP) is replaced: what would go out is recorded."""

    def _mock_sms_gateway(self):
        sent = []

        def contact_iap(api, endpoint, params, timeout=15):
            results = []
            for message in params.get("messages", []):
                for number in message["numbers"]:
                    sent.append({"number": number["number"], "body": message["content"]})
                    results.append({"uuid": number["uuid"], "state": "success", "credit": 1})
            return results

        patcher = patch.object(SmsApi, "_contact_iap", contact_iap)
        patcher.start()
        self.addCleanup(patcher.stop)
        return sent
