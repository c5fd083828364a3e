"""B1/B12 -> G4: the prices and thresholds that the billing add-on decides for a meter are
issued to meters that price locally, as price and thresholds commands that reach the
simulated meter over real TCP.  Needs prepaid_billing (installed beside this add-on in CI);
meter_gateway does not depend on it: the test drives it through the ORM only."""

from datetime import datetime
from decimal import Decimal

from odoo import Command
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestDeviceSettings(MeterGatewayCommon):
    def setUp(self):
        super().setUp()
        if "prepaid.tariff" not in self.env:
            self.skipTest("prepaid_billing decides the settings and is not installed")
        self.env.company.prepaid_accounting = False
        self.ddsy.holds_settings = True
        self.flat = self._tariff("Flat 0.5", "0.5")
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        self.account = tenancy.account_id
        self.account.write(
            {"tariff_id": self.flat.id, "alarm1_threshold": 20.0, "alarm2_threshold": 5.0}
        )

    def _tariff(self, name, price):
        return self.env["prepaid.tariff"].create(
            {
                "name": name,
                "timezone": "UTC",
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2020, 1, 1),
                            "code": "v1",
                            "step_ids": [Command.create({"price_flat": float(price)})],
                        }
                    )
                ],
            }
        )

    def _issued(self, meters, kind):
        return self.Command.search(
            [("meter_id", "in", meters.ids), ("kind", "=", kind)], order="id"
        )

    def test_changed_prices_and_thresholds_become_commands(self):
        meters = self.meter | self.meter2
        self.meter2.model_id = self.ddsy.copy({"holds_settings": False, "code": "DDSY-C"})
        self.assertTrue(self.meter.device_settings_at, "billing asked for an issuance")
        self.Command._issue_device_settings()
        price, thresholds = self._issued(meters, "price"), self._issued(meters, "thresholds")
        self.assertEqual((price.meter_id, thresholds.meter_id), (self.meter, self.meter))
        self.assertEqual(price.payload["price"], "0.5")
        self.assertEqual(price.payload["tariff"]["prices"], {"flat": ["0.5"]})
        self.assertEqual(
            thresholds.payload, {"alarm1": "20.0000", "alarm2": "5.0000", "overload_kw": None}
        )
        self.assertEqual(price.origin, "billing")
        # issued: nothing new until the settings change again
        self.assertFalse(self.Command._issue_device_settings())
        # an account threshold change: a new thresholds command supersedes the old one; the
        # price, unchanged and still on its way, is not queued twice
        self.account.alarm1_threshold = 30.0
        new = self.Command._issue_device_settings()
        self.assertEqual(new.mapped("kind"), ["thresholds"])
        self.assertEqual(new.payload["alarm1"], "30.0000")
        self.assertEqual(thresholds.state, "superseded")
        self.assertEqual(thresholds.superseded_by_id, new)
        # a tariff change: a new price supersedes the old one
        self.account.tariff_id = self._tariff("Flat 0.7", "0.7")
        new_price = self.Command._issue_device_settings().filtered(lambda c: c.kind == "price")
        self.assertEqual(new_price.payload["price"], "0.7")
        self.assertEqual(price.state, "superseded")

    def test_issue_prices_and_thresholds_reach_the_simulated_meter(self):
        sim = self._start_simulator()
        collector = sim.collector([["009400000001", "009400000002"]])
        gateway, meters = self._gateway_for(collector, "Settings collector", self.unit)
        gateway._poll()
        # B12 Issue Prices and Thresholds: issued at the next poll, confirmed by the meters
        meters.action_issue_settings()
        before = self._issued(meters, "price") | self._issued(meters, "thresholds")
        gateway._poll()
        commands = (self._issued(meters, "price") | self._issued(meters, "thresholds")) - before
        self.assertEqual(len(commands), 4)
        self.assertEqual(
            set(commands.mapped("state")), {"confirmed"}, commands.mapped("reason_log")
        )
        for meter in meters:
            simulated = sim.meter(meter.address)
            self.assertEqual(simulated.price, Decimal("0.5"))
            self.assertEqual(
                (simulated.alarm1, simulated.alarm2), (Decimal("20.0000"), Decimal("5.0000"))
            )
