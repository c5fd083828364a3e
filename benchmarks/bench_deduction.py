"""B3 benchmark: a deduction run over 100,000 meters, each with one new reading, priced on an
8-step ladder x 4-band time-of-use tariff, against its floor and a naive ORM loop.

Every pass starts from the same store (readings, ledger and cursors of the bench meters
reset, then vacuumed), charges the meters' first readings (their baselines) and adds one new
reading per meter; every measurement runs on that state, vacuumed after the ones rolled back
(a rolled-back run leaves dead rows that slow the next one down):

- the floor: the new readings read and one ledger row per reading and the balances written
  in plain SQL and committed, no pricing, two ways (the readings read to the client and the
  rows written with COPY, balances with one UPDATE ... FROM; one INSERT ... SELECT and
  UPDATE ... FROM statement); the faster one is the floor (then undone);
- the naive ORM loop (search the meter's new readings, price them with the engine, create a
  ledger line, write the balance and the meter's cursor, one meter at a time) and the
  project's run (``_run_deductions``) on the same sample of meters (both rolled back), so
  that the per-meter figures compare equal sizes;
- the scheduled action, ``prepaid.account._cron_deduct`` (per-batch SQL, one consumption
  line per account and day, alarms evaluated, a commit per batch), on all meters, reported
  as a multiple of the floor.  Targets: <= 3 x the floor; the full run in <= 60 s.

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_deduction.py'
The benchmark database (``prepaid_bench_billing``) is created on first use and kept.
"""

import argparse
import subprocess
import time
from datetime import datetime, timedelta
from decimal import Decimal

from floor import PAST_CURSOR, copy_floor, sql_floor
from odoo_bench import load_note, open_registry

import odoo
from odoo import Command, api

T0 = datetime(2030, 1, 10, 9, 0)


def ladder_tou_tariff(env):
    tariff = env["prepaid.tariff"].search([("name", "=", "bench ladder x TOU")], limit=1)
    if tariff:
        return tariff
    steps = [
        Command.create(
            {
                "sequence": i,
                "limit_qty": 50 * i if i < 8 else 0,
                "price_sharp": 1.2 + i / 20,
                "price_peak": 0.9 + i / 20,
                "price_flat": 0.6 + i / 20,
                "price_valley": 0.3 + i / 20,
            }
        )
        for i in range(1, 9)
    ]
    segments = [
        (0, 7, "valley"),
        (7, 9, "flat"),
        (9, 11, "peak"),
        (11, 13, "sharp"),
        (13, 17, "peak"),
        (17, 21, "flat"),
        (21, 24, "valley"),
    ]
    return env["prepaid.tariff"].create(
        {
            "name": "bench ladder x TOU",
            "timezone": "UTC",
            "version_ids": [
                Command.create(
                    {
                        "valid_from": datetime(2029, 1, 1),
                        "code": "bench",
                        "use_tou": True,
                        "step_ids": steps,
                        "segment_ids": [
                            Command.create({"hour_from": a, "hour_to": b, "band": band})
                            for a, b, band in segments
                        ],
                    }
                )
            ],
        }
    )


def create_fleet(env, cr, count, tariff):
    """``count`` units, each with one meter, one open tenancy and its account (SQL)."""
    cr.execute("SELECT count(*) FROM prepaid_meter WHERE name LIKE 'bench-%%'")
    have = cr.fetchone()[0]
    if have >= count:
        return
    print(f"creating {count - have} units, meters, tenancies and accounts ...", flush=True)
    site = env["prepaid.site"].create({"name": "Bench site"})
    building = env["prepaid.building"].create({"name": "Bench", "site_id": site.id})
    gateway = env["prepaid.gateway"].create({"name": "Bench 4G", "gateway_type": "mqtt"})
    partner = env["res.partner"].create({"name": "Bench tenant"})
    model = env.ref("prepaid_meter.meter_model_dtsy_10_100")
    company = env.company.id
    args = {
        "b": building.id,
        "s": site.id,
        "c": company,
        "g": gateway.id,
        "m": model.id,
        "p": partner.id,
        "t": tariff.id,
        "lo": have + 1,
        "hi": count,
    }
    cr.execute(
        """
        INSERT INTO prepaid_unit (name, unit_type, building_id, site_id, company_id, active,
                                  create_uid, write_uid, create_date, write_date)
        SELECT 'bench-' || n, 'room', %(b)s, %(s)s, %(c)s, true, 1, 1, now(), now()
          FROM generate_series(%(lo)s, %(hi)s) n;
        -- each meter with its latest-state record (prepaid.meter delegates to it)
        ALTER TABLE prepaid_meter_latest ADD COLUMN IF NOT EXISTS bench_n int;
        INSERT INTO prepaid_meter_latest (bench_n, connection_state, actual_relay_state,
                                          relay_mismatch)
        SELECT n, 'never', 'unknown', false FROM generate_series(%(lo)s, %(hi)s) n;
        INSERT INTO prepaid_meter (name, address, model_id, unit_id, building_id, site_id,
            company_id, gateway_id, state, ct_ratio, pt_ratio, multiplier, desired_relay_state,
            status, active, utility, access_token, latest_id, billing_mode,
            alarm_level, create_uid, write_uid, create_date, write_date)
        SELECT 'bench-' || n, lpad(n::text, 12, '0'), %(m)s, u.id, %(b)s, %(s)s, %(c)s, %(g)s,
               'in_service', 1, 1, 1, 'on', 'normal', true, 'electricity',
               md5(random()::text), l.id, 'server', 'normal', 1, 1, now(), now()
          FROM generate_series(%(lo)s, %(hi)s) n
          JOIN prepaid_unit u ON u.name = 'bench-' || n
          JOIN prepaid_meter_latest l ON l.bench_n = n;
        ALTER TABLE prepaid_meter_latest DROP COLUMN bench_n;
        UPDATE prepaid_meter_latest l SET meter_id = m.id
          FROM prepaid_meter m WHERE m.latest_id = l.id AND l.meter_id IS NULL;
        INSERT INTO prepaid_tenancy (name, partner_id, unit_id, building_id, site_id,
            company_id, date_start, state, create_uid, write_uid, create_date, write_date)
        SELECT 'BENCH-' || u.id, %(p)s, u.id, %(b)s, %(s)s, %(c)s, '2029-12-01', 'open',
               1, 1, now(), now()
          FROM prepaid_unit u WHERE u.name LIKE 'bench-%%'
           AND NOT EXISTS (SELECT 1 FROM prepaid_tenancy t WHERE t.unit_id = u.id);
        INSERT INTO prepaid_account (name, tenancy_id, partner_id, unit_id, company_id, state,
            billing_type, balance, tariff_id, alarm1_threshold, alarm2_threshold,
            reminder_minutes, create_uid, write_uid, create_date, write_date)
        SELECT t.name, t.id, t.partner_id, t.unit_id, t.company_id, 'open', 'prepaid', 0, %(t)s,
               20, 5, 2, 1, 1, now(), now()
          FROM prepaid_tenancy t WHERE t.name LIKE 'BENCH-%%'
           AND NOT EXISTS (SELECT 1 FROM prepaid_account a WHERE a.tenancy_id = t.id);
        """,
        args,
    )
    cr.commit()


def reset(cr):
    """Same start for every run: one opening recharge of 1000 per account, no readings."""
    cr.execute(
        """
        DELETE FROM prepaid_meter_reading_store r USING prepaid_meter m
         WHERE m.id = r.meter_id AND m.name LIKE 'bench-%%';
        DELETE FROM prepaid_account_line l USING prepaid_account a
         WHERE a.id = l.account_id AND a.name LIKE 'BENCH-%%';
        UPDATE prepaid_meter_latest l SET baseline_total = NULL, baseline_at = NULL,
               last_reading_at = NULL, last_total = NULL, last_contact_at = NULL,
               actual_relay_state = 'unknown', connection_state = 'never', relay_mismatch = false
          FROM prepaid_meter m WHERE m.latest_id = l.id AND m.name LIKE 'bench-%%';
        UPDATE prepaid_meter SET billing_charged_until = NULL, billing_base_at = NULL,
               billing_state = NULL,
               billing_tariff_id = NULL, alarm_state = NULL, alarm_level = 'normal',
               alarm_wake_at = NULL
         WHERE name LIKE 'bench-%%';
        INSERT INTO prepaid_account_line (account_id, company_id, kind, amount, date, posted_at,
               memo, create_uid, write_uid, create_date, write_date)
        SELECT id, company_id, 'recharge', 1000, '2030-01-01', now(), 'bench opening',
               1, 1, now(), now()
          FROM prepaid_account WHERE name LIKE 'BENCH-%%';
        DELETE FROM prepaid_account_notice n USING prepaid_account a
         WHERE a.id = n.account_id AND a.name LIKE 'BENCH-%%';
        UPDATE prepaid_account SET balance = 1000, last_recharge_at = NULL
         WHERE name LIKE 'BENCH-%%';
        """
    )
    cr.commit()


def ingest(env, ids, at, total):
    rows = [
        {"meter_id": mid, "read_at": at, "forward_total": total(mid), "source": "push"}
        for mid in ids
    ]
    for start in range(0, len(rows), 20_000):
        env["prepaid.meter.reading"]._ingest(rows[start : start + 20_000])
    env.cr.commit()


def naive_loop(env, sample):
    """The baseline: one meter at a time through the ORM (the engine still prices)."""
    Reading = env["prepaid.meter.reading"]
    Line = env["prepaid.account.line"].with_context(prepaid_ledger_post=True)
    for meter in env["prepaid.meter"].browse(sample):
        account = meter.account_id
        tariff = meter.tariff_id or account.tariff_id
        compiled = tariff._compiled()
        readings = Reading.search(
            [("meter_id", "=", meter.id), ("read_at", ">", meter.billing_charged_until)],
            order="read_at",
        )
        begin = meter.billing_charged_until
        for reading in readings.filtered("chargeable"):
            quantity = Decimal(f"{reading.consumption:.4f}")
            result = compiled.price_interval(None, begin, reading.read_at, quantity)
            Line.create(
                {
                    "account_id": account.id,
                    "kind": "deduction",
                    "amount": -float(result.amount),
                    "date": reading.read_at.date(),
                    "quantity": float(quantity),
                }
            )
            account.balance -= float(result.amount)
            begin = reading.read_at
        meter.billing_charged_until = begin
    env.flush_all()


#: the tables a pass writes to (vacuumed after every reset and rolled-back measurement)
TABLES = (
    "prepaid_meter_reading_store, prepaid_account_line, prepaid_account, prepaid_meter, "
    "prepaid_meter_latest, prepaid_meter_reading_daily_queue, prepaid_tenancy, prepaid_unit"
)


def vacuum(db):
    subprocess.run(["psql", "-qd", db, "-c", f"VACUUM ANALYZE {TABLES}"], check=True)


def timed_rollback(env, db, work):
    """Seconds ``work()`` takes; its writes rolled back and the tables vacuumed after."""
    start = time.perf_counter()
    work()
    env.flush_all()
    elapsed = time.perf_counter() - start
    env.cr.rollback()
    env.invalidate_all()
    vacuum(db)
    return elapsed


def timed_floor(env, db, floor):
    """Seconds the ``floor`` writes take, committed (as the run's are); then undone (its
    ledger rows deleted, the balances moved back) and the tables vacuumed."""
    cr = env.cr
    start = time.perf_counter()
    floor(cr)
    cr.commit()
    elapsed = time.perf_counter() - start
    cr.execute(
        """
        UPDATE prepaid_account a SET balance = a.balance - s.amount
          FROM (SELECT account_id, sum(amount) AS amount FROM prepaid_account_line
                 WHERE memo = 'floor' GROUP BY account_id) s
         WHERE a.id = s.account_id;
        DELETE FROM prepaid_account_line WHERE memo = 'floor';
        """
    )
    cr.commit()
    vacuum(db)
    return elapsed


def prepare_pass(env, db, ids):
    """The state every measurement of a pass starts from: the bench meters' baselines
    charged, one new reading each (2 to 9 kWh over 30 minutes of the peak band)."""
    reset(env.cr)
    vacuum(db)
    ingest(env, ids, T0, lambda mid: 1000)
    env["prepaid.account"]._cron_deduct()
    env.invalidate_all()
    ingest(env, ids, T0 + timedelta(minutes=30), lambda mid: 1002 + mid % 8)
    vacuum(db)


def run_pass(env, db, ids, sample):
    """One pass: the floor, the naive loop and the run on the sample, the scheduled action
    on all meters; returns the figures (seconds)."""
    cr, accounts = env.cr, env["prepaid.account"]
    prepare_pass(env, db, ids)
    figures = {
        "floor_copy": timed_floor(env, db, lambda cr: copy_floor(cr, PAST_CURSOR, {"ids": ids})),
        "floor_sql": timed_floor(env, db, lambda cr: sql_floor(cr, PAST_CURSOR, {"ids": ids})),
        "naive": timed_rollback(env, db, lambda: naive_loop(env, sample)),
        "run_sample": timed_rollback(env, db, lambda: accounts._run_deductions(meter_ids=sample)),
    }
    start = time.perf_counter()
    charged = accounts._cron_deduct()
    figures["cron"] = time.perf_counter() - start
    assert charged == len(ids), (charged, len(ids))
    assert not accounts._audit_balance(), "a balance differs from its ledger"
    cr.commit()
    return figures


def report(figures, meters, sample):
    floor = min(figures["floor_copy"], figures["floor_sql"])
    naive, run = sample / figures["naive"], sample / figures["run_sample"]
    cron = figures["cron"]
    print(
        f"floor (plain SQL, no pricing): {floor:.2f} s for {meters:,} readings "
        f"(COPY {figures['floor_copy']:.2f} s, INSERT ... SELECT {figures['floor_sql']:.2f} s); "
        f"scheduled action: {cron:.2f} s ({meters / cron:,.0f} meters/s) = "
        f"{cron / floor:.2f} x the floor (target <= 3 x; {meters:,} meters in <= 60 s); "
        f"on {sample:,} meters: naive ORM loop {naive:,.0f} meters/s, the run "
        f"{run:,.0f} meters/s ({run / naive:.1f} x); {load_note()}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument(
        "--orm-sample",
        type=int,
        default=2_000,
        help="meters the naive ORM loop and the run are compared on (equal sizes)",
    )
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--db", default="prepaid_bench_billing")
    args = parser.parse_args()

    registry = open_registry(args.db, "prepaid_billing")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        tariff = ladder_tou_tariff(env)
        cr.commit()
        create_fleet(env, cr, args.meters, tariff)
        cr.execute(
            "SELECT id FROM prepaid_meter WHERE name LIKE 'bench-%%' ORDER BY id LIMIT %s",
            [args.meters],
        )
        ids = [row[0] for row in cr.fetchall()]
        sample = ids[: args.orm_sample]
        for _pass in range(args.passes):
            report(run_pass(env, args.db, ids, sample), len(ids), len(sample))


if __name__ == "__main__":
    main()
