"""B1/B12 -> G4: the prices and thresholds that the billing add-on decides for a meter are
issued to meters that price locally, as price and thresholds commands that reach the
simulated meter over real TCP.  Needs prepaid_billing (installed beside this add-on in CI);
meter_gateway does not depend on it: the test drives it through the ORM only."""

from datetime import datetime, timedelta
from decimal import Decimal

from odoo import Command, fields
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

    def _reconcile(self, meters=None):
        """The reconciler's price and thresholds commands (relays are not the point here)."""
        commands = self.Command._cron_reconcile(meters)
        return commands.filtered(lambda c: c.kind in ("price", "thresholds"))

    def _issue_now(self, meters):
        """Issue the meters' settings; they changed an hour ago (issued since)."""
        issued = self.Command._issue_device_settings(meters)
        meters.device_settings_at = fields.Datetime.now() - timedelta(hours=1)
        return issued

    def test_reconciler_reissues_an_expired_price_once_never_a_confirmed_one(self):
        """G4/R9: a price command that expired before it reached the meter leaves it with
        stale prices: the reconciler issues it again, once, and it reaches the simulated
        meter; a confirmed command is never sent again."""
        sim = self._start_simulator()
        collector = sim.collector([["009400000011"]])
        gateway, meter = self._gateway_for(collector, "Settings reconcile", self.unit)
        simulated = sim.meter(meter.address)
        simulated.price = Decimal("0.25")
        meter.action_issue_settings()
        issued = self._issue_now(meter)
        price = issued.filtered(lambda c: c.kind == "price")
        thresholds = issued - price
        price.expires_at = fields.Datetime.now() - timedelta(minutes=1)  # the outage was long
        reissued = self._reconcile()
        self.assertEqual(price.state, "expired")
        self.assertEqual(reissued.mapped("kind"), ["price"])  # thresholds: still on its way
        self.assertEqual((reissued.origin, reissued.payload), ("reconcile", price.payload))
        self.assertIn(f"#{price.id} ended Expired", reissued.reason)
        self.assertIn(f"issued again by reconciliation as #{reissued.id}", price.reason_log)
        # once: it is on its way
        self.assertFalse(self._reconcile())
        gateway._poll()
        self.assertEqual(
            (reissued.state, thresholds.state), ("confirmed", "confirmed"), reissued.reason_log
        )
        self.assertEqual(simulated.price, Decimal("0.5"))
        # confirmed, current: never sent again
        self.assertFalse(self._reconcile())
        self.assertEqual(len(self._issued(meter, "price") | self._issued(meter, "thresholds")), 3)

    def test_reconciler_backs_off_a_meter_that_keeps_failing(self):
        """R9: a meter that never takes its settings gets one re-issue per backoff, the
        wait doubling each time; a lost meter gets none."""
        issued = self._issue_now(self.meter)
        issued.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        first = self._reconcile(self.meter)
        self.assertEqual(sorted(first.mapped("kind")), ["price", "thresholds"])
        first.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        # expired again within the cooldown: nothing; after it, one more each
        self.assertFalse(self._reconcile(self.meter))
        self.assertEqual(set(first.mapped("state")), {"expired"})
        first.queued_at = fields.Datetime.now() - timedelta(minutes=16)
        second = self._reconcile(self.meter)
        self.assertEqual(len(second), 2)
        # the wait doubles: 16 minutes after the second re-issue is not enough
        second.expires_at = fields.Datetime.now() - timedelta(minutes=1)
        self.assertFalse(self._reconcile(self.meter))
        second.queued_at = fields.Datetime.now() - timedelta(minutes=16)
        self.assertFalse(self._reconcile(self.meter))
        second.queued_at = fields.Datetime.now() - timedelta(minutes=31)
        third = self._reconcile(self.meter)
        self.assertEqual(len(third), 2)
        # a lost meter gets nothing (its commands would only expire again)
        third.write(
            {
                "expires_at": fields.Datetime.now() - timedelta(minutes=1),
                "queued_at": fields.Datetime.now() - timedelta(days=1),
            }
        )
        self.meter.connection_state = "lost"
        self.assertFalse(self._reconcile(self.meter))
        self.meter.connection_state = "online"
        self.assertEqual(len(self._reconcile(self.meter)), 2)
