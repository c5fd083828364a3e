"""R11 with a real process killed: the deduction runs in a process of its own, is killed
with SIGKILL in its second batch, runs again (twice at the same time), and leaves balances
and ledger equal to those of a clean single run.

The data must be visible to another process, so it is committed (through a cursor of its
own, never the test's) and removed again at the end: a gateway, twelve meters with their
units, tenancies and accounts, two sets of six twins with the same readings. The first set
is charged by a run that is killed, then by a second run; the second set by one clean run.

The kill lands mid-batch deterministically, without any mock: the test holds a row lock on
the account of the third meter, so the run commits its first batch (two meters) and then
waits in the second one, where it is killed.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

from odoo.addons.prepaid_meter.tests.concurrency import forget, purge, purge_meters

from ..const import DEDUCTION_SHARDS_PARAM

CHILD = os.path.join(os.path.dirname(__file__), "deduction_process.py")
METERS = 6  # per set
BATCH = 2
WAIT = 180  # seconds: the other process loads the whole registry first


@tagged("post_install", "-at_install")
class TestDeductionKilled(TransactionCase):
    # === DATA (committed, removed at the end) === #
    def _committed_env(self):
        cr = self.env.registry.cursor()
        self.addCleanup(cr.close)
        return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})

    def _create_data(self, env):
        today = fields.Date.context_today(self.env["res.partner"])
        t0 = datetime.combine(today - timedelta(days=3), datetime.min.time())
        tag = uuid.uuid4().hex[:8]
        site = env["prepaid.site"].create({"name": f"R11 {tag}", "code": f"R{tag[:5]}"})
        building = env["prepaid.building"].create({"name": "R11", "site_id": site.id})
        floor = env["prepaid.floor"].create({"name": "R11", "building_id": building.id})
        gateway = env["prepaid.gateway"].create(
            {"name": f"R11 {tag}", "site_id": site.id, "gateway_type": "tcp_collector"}
        )
        bus = env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": 1, "port": 9001}
        )
        partner = env["res.partner"].create({"name": f"R11 tenant {tag}"})
        tariff = env["prepaid.tariff"].create(
            {
                "name": f"R11 ladder x TOU {tag}",
                "timezone": "UTC",
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2020, 1, 1),
                            "code": "v1",
                            "use_tou": True,
                            "step_ids": [
                                Command.create(
                                    {
                                        "sequence": 1,
                                        "limit_qty": 15,
                                        "price_valley": 0.3,
                                        "price_peak": 0.9,
                                    }
                                ),
                                Command.create(
                                    {"sequence": 2, "price_valley": 0.45, "price_peak": 1.35}
                                ),
                            ],
                            "segment_ids": [
                                Command.create({"hour_from": 0, "hour_to": 8, "band": "valley"}),
                                Command.create({"hour_from": 8, "hour_to": 24, "band": "peak"}),
                            ],
                        }
                    )
                ],
            }
        )
        model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        sets = []
        for name in ("killed", "clean"):
            meters = env["prepaid.meter"]
            for index in range(METERS):
                unit = env["prepaid.unit"].create(
                    {
                        "name": f"R11 {name} {index}",
                        "building_id": building.id,
                        "floor_id": floor.id,
                    }
                )
                meters |= env["prepaid.meter"].create(
                    {
                        "name": f"R11 {name} {index}",
                        "address": f"{len(sets)}{index:011d}",
                        "model_id": model.id,
                        "unit_id": unit.id,
                        "gateway_id": gateway.id,
                        "bus_id": bus.id,
                        "state": "in_service",
                    }
                )
                tenancy = env["prepaid.tenancy"].create(
                    {
                        "partner_id": partner.id,
                        "unit_id": unit.id,
                        "date_start": today - timedelta(days=4),
                    }
                )
                tenancy.action_open()
                tenancy.account_id.write(
                    {"tariff_id": tariff.id, "alarm1_threshold": 2.0, "alarm2_threshold": 1.0}
                )
                tenancy.account_id._recharge("100")
            sets.append(meters)
        # the twins read the same: every 2 hours over two days, more for later meters
        rows = []
        for meters in sets:
            for index, meter in enumerate(meters):
                total = Decimal(1000)
                for hour in range(0, 48, 2):
                    rows.append(
                        {
                            "meter_id": meter.id,
                            "read_at": t0 + timedelta(hours=hour),
                            "forward_total": str(total),
                        }
                    )
                    total += Decimal("0.25") * (index + 1) + Decimal(hour % 5) / 10
        result = env["prepaid.meter.reading"]._ingest(rows)
        self.assertFalse(result["rejected"])
        env.cr.commit()
        return sets, (site, gateway, partner, tariff)

    def _remove_data(self, sets, others):
        """The append-only ledger and the partitioned readings have no ORM way out: SQL."""
        site, gateway, partner, tariff = others
        with self.env.registry.cursor() as cr:
            meter_ids = [meter_id for meters in sets for meter_id in meters.ids]
            cr.execute("SELECT unit_id FROM prepaid_meter WHERE id = ANY(%s)", [meter_ids])
            unit_ids = [row[0] for row in cr.fetchall()]
            cr.execute("SELECT id FROM prepaid_tenancy WHERE unit_id = ANY(%s)", [unit_ids])
            tenancy_ids = [row[0] for row in cr.fetchall()]
            cr.execute("SELECT id FROM prepaid_account WHERE tenancy_id = ANY(%s)", [tenancy_ids])
            account_ids = [row[0] for row in cr.fetchall()]
            for model, ids in (
                ("prepaid.account", account_ids),
                ("prepaid.tenancy", tenancy_ids),
                ("prepaid.meter", meter_ids),
                ("prepaid.tariff", [tariff.id]),
                ("prepaid.gateway", [gateway.id]),
                ("res.partner", [partner.id]),
            ):
                forget(cr, model, ids)
            purge(cr, "prepaid_account", account_ids)
            purge(cr, "prepaid_tenancy", tenancy_ids)
            purge_meters(cr, meter_ids)
            purge(cr, "prepaid_gateway", [gateway.id])
            cr.execute("SELECT id FROM prepaid_building WHERE site_id = %s", [site.id])
            purge(cr, "prepaid_building", [row[0] for row in cr.fetchall()])
            purge(cr, "prepaid_site", [site.id])
            purge(cr, "prepaid_tariff", [tariff.id])
            purge(cr, "res_partner", [partner.id])

    # === THE OTHER PROCESS === #
    def _start_run(self, meters, app_name):
        """Start the deduction of ``meters`` in a new process; its PostgreSQL sessions are
        named ``app_name``."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        for option, variable in (
            ("db_host", "PGHOST"),
            ("db_port", "PGPORT"),
            ("db_user", "PGUSER"),
            ("db_password", "PGPASSWORD"),
        ):
            if config[option]:
                env[variable] = str(config[option])
        addons_path = config["addons_path"]
        if not isinstance(addons_path, str):
            addons_path = ",".join(addons_path)
        log = tempfile.TemporaryFile()  # pylint: disable=consider-using-with
        self.addCleanup(log.close)
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [
                sys.executable,
                CHILD,
                "-d",
                self.env.cr.dbname,
                "--addons-path",
                addons_path,
                "--db_app_name",
                app_name,
                "--log-level",
                "warn",
                "--http-interface",
                "127.0.0.1",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
        process.stdin.write(json.dumps({"meter_ids": meters.ids, "batch_size": BATCH}).encode())
        process.stdin.close()
        process.stdin = None
        self.addCleanup(self._reap, process)
        return process, log

    def _reap(self, process):
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()

    def _finish(self, process, log):
        try:
            out, _err = process.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log.seek(0)
        self.assertEqual(process.returncode, 0, log.read().decode(errors="replace")[-3000:])
        return json.loads(out.decode().strip().splitlines()[-1])["charged"]

    def _sessions(self, cr, app_name):
        cr.execute(
            "SELECT pid, wait_event_type FROM pg_stat_activity WHERE application_name = %s",
            [app_name],
        )
        return cr.fetchall()

    # === WHAT IS COMPARED === #
    def _state(self, meters):
        """Per meter (in order): its account's balance, ledger and the meter's cursor."""
        with self.env.registry.cursor() as cr:
            cr.execute(
                """
                SELECT m.id, a.balance::text, m.billing_charged_until, m.billing_base_at,
                       m.billing_state,
                       (SELECT COALESCE(SUM(l.amount), 0)::text FROM prepaid_account_line l
                         WHERE l.account_id = a.id),
                       (SELECT json_agg(json_build_array(l.kind, l.amount::text, l.date,
                                        l.quantity::text, l.reading_count, l.reading_from,
                                        l.reading_to, l.detail->'lines')
                                        ORDER BY l.kind, l.date)
                          FROM prepaid_account_line l WHERE l.account_id = a.id)
                  FROM prepaid_meter m
                  JOIN prepaid_tenancy t ON t.unit_id = m.unit_id
                  JOIN prepaid_account a ON a.tenancy_id = t.id
                 WHERE m.id = ANY(%s)
                 ORDER BY m.id
                """,
                [meters.ids],
            )
            return [row[1:] for row in cr.fetchall()]

    def _set_shards(self, env, count):
        """The deduction's shard count, committed (False: the parameter removed)."""
        env["ir.config_parameter"].set_param(DEDUCTION_SHARDS_PARAM, count)
        env.cr.commit()  # pylint: disable=invalid-commit

    # === THE TEST === #
    def test_killed_run_then_rerun_equals_clean_run(self):
        env = self._committed_env()
        sets, others = self._create_data(env)
        self.addCleanup(self._remove_data, sets, others)
        env_shards = env["ir.config_parameter"].get_param(DEDUCTION_SHARDS_PARAM)
        killed, clean = sets
        # one shard: the batches follow the meters' order (the first two, then the others)
        self._set_shards(env, 1)
        self.addCleanup(lambda: self._set_shards(self._committed_env(), env_shards))
        before = self._state(killed)
        app_name = f"prepaid-r11-{uuid.uuid4().hex[:12]}"

        # the test holds the account of the third meter: the run waits in its second batch
        locker = self._committed_env().cr
        locker.execute(
            """
            SELECT a.id FROM prepaid_account a
              JOIN prepaid_tenancy t ON t.id = a.tenancy_id
              JOIN prepaid_meter m ON m.unit_id = t.unit_id
             WHERE m.id = %s FOR UPDATE OF a
            """,
            [killed[BATCH].id],
        )
        process, log = self._start_run(killed, app_name)
        watcher = self._committed_env().cr
        deadline = time.monotonic() + WAIT
        while True:
            watcher.rollback()
            if any(wait == "Lock" for _pid, wait in self._sessions(watcher, app_name)):
                break
            if process.poll() is not None:
                log.seek(0)
                self.fail(f"the run ended early: {log.read().decode(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                self.fail("the run never reached its second batch")
            time.sleep(0.2)

        # first batch committed, the others untouched
        waiting = self._state(killed)
        for index in range(METERS):
            if index < BATCH:
                self.assertLess(Decimal(waiting[index][0]), Decimal(100), index)
                self.assertTrue(waiting[index][1], index)
            else:
                self.assertEqual(waiting[index], before[index], index)
        # a manual run meanwhile is refused
        manual = self._committed_env()
        with self.assertRaises(UserError):
            manual["prepaid.account"]._run_deductions(meter_ids=killed.ids, manual=True)
        manual.cr.rollback()

        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.assertEqual(process.returncode, -signal.SIGKILL)
        locker.rollback()  # the orphaned session gets its lock, cannot answer, rolls back
        deadline = time.monotonic() + 60
        while self._sessions(watcher, app_name):
            if time.monotonic() > deadline:
                self.fail("the session of the killed run did not end")
            time.sleep(0.2)
            watcher.rollback()
        self.assertEqual(self._state(killed)[BATCH:], waiting[BATCH:], "nothing half-written")

        # run again, twice at the same time: the rest is charged once (one run charges,
        # the other finds the lock taken, or they take turns between batches)
        readings = 23  # per meter: 24 readings, the first a baseline
        runs = [self._start_run(killed, f"{app_name}-{n}") for n in (2, 3)]
        charged = [self._finish(process, log) for process, log in runs]
        self.assertEqual(sum(charged), readings * (METERS - BATCH), charged)
        # then a clean single run of the twins
        process, log = self._start_run(clean, f"{app_name}-4")
        self.assertEqual(self._finish(process, log), readings * METERS)

        after, reference = self._state(killed), self._state(clean)
        for index in range(METERS):
            balance, until, base, state, ledger_sum, _ledger = after[index]
            self.assertEqual(balance, ledger_sum, "balance == sum of the ledger")
            self.assertEqual(after[index], reference[index], f"meter {index}")
            self.assertLess(Decimal(balance), Decimal(100))
            self.assertTrue(until and base and state)
