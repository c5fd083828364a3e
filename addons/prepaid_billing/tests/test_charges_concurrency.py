"""B14/B15 under real concurrency, on committed data: a fixed-charge run or a common-area
split whose connection dies mid-way (a killed worker: its transaction rolled back) and two
runs started again at the same moment charge each account once per cycle, and every
balance stays the sum of its ledger.

The run "killed" is a real run on its own connection: the first account is committed (a
batch the scheduler committed), the rest is left uncommitted and the connection closed,
which is what PostgreSQL sees of a process killed with SIGKILL."""

from contextlib import closing
from datetime import date, datetime
from decimal import Decimal

from odoo import Command
from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.concurrency import (
    ConcurrencyCase,
    forget,
    purge,
    purge_meters,
)

TODAY = date(2026, 3, 5)  # cycles of January, February, March
ACCOUNTS = 3
FEE = Decimal("10")


@tagged("post_install", "-at_install")
class TestChargesConcurrency(ConcurrencyCase):
    def _create_tariff(self, env):
        """A flat tariff with a service fee of ``FEE`` each month from January."""
        return env["prepaid.tariff"].create(
            {
                "name": "Charges concurrency flat",
                "timezone": "UTC",
                "billing_day": 1,
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2020, 1, 1),
                            "code": "v1",
                            "step_ids": [Command.create({"sequence": 1, "price_flat": 0.5})],
                        }
                    )
                ],
                "charge_ids": [
                    Command.create(
                        {
                            "name": "Service fee",
                            "charge_type": "service_fee",
                            "price": float(FEE),
                            "date_start": "2026-01-01",
                        }
                    )
                ],
            }
        )

    def _create_common_area(self, env, tariff, common_unit, units):
        """A common meter in ``common_unit`` read over February (20 kWh) and into March,
        shared by ``units`` by area."""
        common = env["prepaid.meter"].create(
            {
                "name": "CC common",
                "model_id": env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
                "unit_id": common_unit.id,
                "state": "in_service",
            }
        )
        rows = [
            {"meter_id": common.id, "read_at": at, "forward_total": total}
            for at, total in (
                (datetime(2026, 2, 1, 1), 100),
                (datetime(2026, 2, 20), 120),
                (datetime(2026, 3, 1, 1), 121),
            )
        ]
        self.assertFalse(env["prepaid.meter.reading"]._ingest(rows)["rejected"])
        return env["prepaid.common.area"].create(
            {
                "name": "CC stairs",
                "building_id": common_unit.building_id.id,
                "meter_id": common.id,
                "tariff_id": tariff.id,
                "method": "area",
                "date_start": "2026-02-01",
                "share_ids": [Command.create({"unit_id": unit.id}) for unit in units],
            }
        )

    def _create(self, env):
        tariff = self._create_tariff(env)
        site = env["prepaid.site"].create({"name": "Charges Concurrency Park", "code": "CCP"})
        building = env["prepaid.building"].create({"name": "CC", "site_id": site.id})
        partner = env["res.partner"].create({"name": "Charges Concurrency Tenant"})
        units = env["prepaid.unit"].create(
            [
                {"name": f"CC-{index}", "building_id": building.id, "area": 10 * (index + 1)}
                for index in range(ACCOUNTS + 1)
            ]
        )
        tenancies = env["prepaid.tenancy"]
        for unit in units[:ACCOUNTS]:
            tenancy = env["prepaid.tenancy"].create(
                {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2026-01-01"}
            )
            tenancy.action_open()
            tenancy.account_id.tariff_id = tariff
            tenancies |= tenancy
        area = self._create_common_area(env, tariff, units[-1], units[:ACCOUNTS])
        self.created.update(
            tariff=tariff.id,
            site=site.id,
            building=building.id,
            partner=partner.id,
            meters=area.meter_id.ids,
            area=area.id,
            tenancies=tenancies.ids,
            accounts=sorted(tenancies.account_id.ids),
        )

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        for model, res_ids in (
            ("prepaid.account", ids["accounts"]),
            ("prepaid.tenancy", ids["tenancies"]),
            ("prepaid.meter", ids["meters"]),
            ("prepaid.common.area", [ids["area"]]),
            ("prepaid.tariff", [ids["tariff"]]),
            ("res.partner", [ids["partner"]]),
        ):
            forget(cr, model, res_ids)
        purge(cr, "prepaid_account", ids["accounts"])
        purge(cr, "prepaid_common_area", [ids["area"]])
        purge(cr, "prepaid_tenancy", ids["tenancies"])
        purge_meters(cr, ids["meters"])
        cr.execute("SELECT id FROM prepaid_unit WHERE building_id = %s", [ids["building"]])
        purge(cr, "prepaid_unit", [row[0] for row in cr.fetchall()])
        purge(cr, "prepaid_building", [ids["building"]])
        purge(cr, "prepaid_site", [ids["site"]])
        purge(cr, "prepaid_tariff", [ids["tariff"]])
        purge(cr, "res_partner", [ids["partner"]])

    # === WHAT IS COMPARED === #
    def _ledgers(self):
        """Per account: balance, sum of its ledger, and (kind, count, sum) of its lines."""
        return self._query(
            """
            SELECT a.balance::text,
                   (SELECT COALESCE(SUM(l.amount), 0)::text FROM prepaid_account_line l
                     WHERE l.account_id = a.id),
                   (SELECT json_agg(json_build_array(k.kind, k.n, k.total) ORDER BY k.kind)
                      FROM (SELECT kind, count(*) AS n, SUM(amount)::text AS total
                              FROM prepaid_account_line WHERE account_id = a.id
                             GROUP BY kind) k)
              FROM prepaid_account a
             WHERE a.id = ANY(%s)
             ORDER BY a.id
            """,
            [self.created["accounts"]],
        )

    def _killed(self, run):
        """``run(env)`` on a connection that dies before committing (rolled back)."""
        with closing(self._connect()) as cr:
            run(self._env(cr))

    @staticmethod
    def _charge(env):
        env["prepaid.account"]._cron_fixed_charges(today=TODAY)

    @staticmethod
    def _split(env):
        env["prepaid.common.area"]._cron_split(today=TODAY)

    # === THE TESTS === #
    def test_fixed_charges_killed_then_two_runs_at_once(self):
        first = self.created["accounts"][0]
        self._committed(lambda env: env["prepaid.account"].browse(first)._post_fixed_charges(TODAY))
        self._killed(self._charge)
        after_kill = self._ledgers()
        self.assertEqual(after_kill[0][2], [["fixed_charge", 3, "-30.0000"]])
        self.assertEqual([row[2] for row in after_kill[1:]], [None] * (ACCOUNTS - 1))

        self._race(self._charge, self._charge)
        for balance, ledger, kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(kinds, [["fixed_charge", 3, "-30.0000"]], "once per cycle")

    def test_common_area_split_killed_then_two_runs_at_once(self):
        self._killed(self._split)
        self.assertEqual(self._query("SELECT count(*) FROM prepaid_common_area_period"), [(0,)])
        self._race(self._split, self._split)
        periods = self._query(
            "SELECT period_start, cost::text FROM prepaid_common_area_period "
            "WHERE common_area_id = %s",
            [self.created["area"]],
        )
        # February: 20 kWh at 0.5 (the reading of 1 March 01:00 is March's)
        self.assertEqual(periods, [(date(2026, 2, 1), "10.0000")])
        ledgers = self._ledgers()
        total = Decimal(0)
        for balance, ledger, kinds in ledgers:
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(kinds[0][:2], ["common_area", 1], "once per cycle")
            total += Decimal(kinds[0][2])
        # areas 10 / 20 / 30 of 10.00: 1.6667, 3.3333, 5.0000
        self.assertEqual(total, Decimal("-10"), "the parts add up to the cost")
        self.assertEqual(
            [Decimal(kinds[0][2]) for _b, _l, kinds in ledgers],
            [Decimal("-1.6667"), Decimal("-3.3333"), Decimal("-5")],
        )
