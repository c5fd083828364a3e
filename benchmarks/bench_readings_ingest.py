"""M5 benchmark: one interval of readings for 100,000 meters into the readings store.

Compares, in the same run and on the same database:
- the baseline: ORM batch ``create`` of ``prepaid.meter.reading`` (same validation), on a
  sample of meters, and
- the project's bulk path, ``prepaid.meter.reading._ingest`` (validation in Python, COPY,
  one UPDATE of every meter's latest state), on all meters;
for a first interval (every reading is a meter's baseline) and a second one (every reading
is charged).  Prints readings/s and the ratio.  Target: bulk >= 50,000 readings/s.

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_readings_ingest.py'
The benchmark database (``prepaid_bench``) is created on first use and kept; each run first
deletes the readings of the previous one, so runs are comparable, and each interval starts
after the vacuum autovacuum would have done in the 30 minutes between two intervals.
"""

import argparse
import logging
import os
import subprocess
import time
from datetime import datetime, timedelta

from odoo_bench import open_registry

import odoo
from odoo import api


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--orm-sample", type=int, default=5_000)
    parser.add_argument("--db", default="prepaid_bench")
    args = parser.parse_args()

    # print the phases of each batch (stored / meters)
    logging.getLogger("odoo.addons.prepaid_meter.models.prepaid_meter_reading").setLevel(
        logging.DEBUG
    )
    registry = open_registry(args.db, "prepaid_meter")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        meters = env["prepaid.meter"]
        have = meters.search_count([("name", "=like", "bench-%")])
        if have < args.meters:
            print(f"creating {args.meters - have} meters ...", flush=True)
            site = env["prepaid.site"].create({"name": "Bench site"})
            building = env["prepaid.building"].create({"name": "Bench", "site_id": site.id})
            unit = env["prepaid.unit"].create({"name": "Bench", "building_id": building.id})
            gateway = env["prepaid.gateway"].create({"name": "Bench 4G", "gateway_type": "mqtt"})
            model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
            # each meter with its latest-state record (prepaid.meter delegates to it)
            cr.execute(
                """
                WITH latest AS (
                    INSERT INTO prepaid_meter_latest (connection_state, actual_relay_state,
                                                      relay_mismatch)
                    SELECT 'never', 'unknown', false FROM generate_series(%s, %s)
                    RETURNING id)
                INSERT INTO prepaid_meter (name, address, model_id, unit_id, building_id,
                    site_id, company_id, gateway_id, state, ct_ratio, pt_ratio, multiplier,
                    desired_relay_state, status, active, latest_id,
                    utility, access_token, create_uid, write_uid, create_date, write_date)
                SELECT 'bench-' || n, lpad(n::text, 12, '0'), %s, %s, %s, %s, %s, %s,
                       'in_service', 1, 1, 1, 'on', 'normal', true, l.id,
                       'electricity', md5(random()::text), 1, 1, now(), now()
                  FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM latest) l
                  JOIN generate_series(%s, %s) WITH ORDINALITY AS g(n, rn) ON g.rn = l.rn
                """,
                [
                    have + 1,
                    args.meters,
                    model.id,
                    unit.id,
                    building.id,
                    site.id,
                    env.company.id,
                    gateway.id,
                    have + 1,
                    args.meters,
                ],
            )
            # the states are keyed by meter too (what the bulk path joins on)
            cr.execute(
                "UPDATE prepaid_meter_latest l SET meter_id = m.id FROM prepaid_meter m "
                "WHERE m.latest_id = l.id AND l.meter_id IS NULL"
            )
            cr.commit()
        # start every run from meters that were never read, like the first run, and from
        # an empty month of the store (the readings of a month go into its own partition:
        # emptied, not deleted row by row, so that runs do not insert into the holes and
        # bloated indexes earlier runs left, which no real store has)
        t0 = datetime(2030, 1, 1)
        readings = env["prepaid.meter.reading"]
        if readings._partition_name(t0) in readings._partition_names():
            cr.execute(f"TRUNCATE {readings._partition_name(t0)}")
        cr.execute(
            "DELETE FROM prepaid_meter_reading_store r USING prepaid_meter m "
            "WHERE m.id = r.meter_id AND m.name LIKE 'bench-%%'"
        )
        cr.execute(
            "UPDATE prepaid_meter_latest l SET baseline_total = NULL, baseline_at = NULL, "
            "last_reading_at = NULL, last_total = NULL, last_contact_at = NULL, "
            "actual_relay_state = 'unknown', connection_state = 'never', relay_mismatch = false "
            "FROM prepaid_meter m WHERE m.latest_id = l.id AND m.name LIKE 'bench-%%'"
        )
        cr.commit()
        cr.execute(
            "SELECT id FROM prepaid_meter WHERE name LIKE 'bench-%%' ORDER BY id LIMIT %s",
            [args.meters],
        )
        ids = [row[0] for row in cr.fetchall()]
        results = {}
        for label, minutes in (
            ("first interval (baselines)", 0),
            ("second interval (charged)", 30),
        ):
            # Intervals are 30 minutes apart: autovacuum has cleaned up after the previous
            # one (the latest states it rewrote, the rows it added) before the next arrives.
            # Here they follow each other at once: the same cleanup, done before the timing
            # instead of during it.
            subprocess.run(
                [
                    "psql",
                    "-qd",
                    args.db,
                    "-c",
                    "VACUUM (ANALYZE) prepaid_meter_latest, prepaid_meter_reading_store",
                ],
                check=True,
            )

            def rows(sample, minutes=minutes):
                return [
                    {
                        "meter_id": mid,
                        "read_at": t0 + timedelta(minutes=minutes),
                        "forward_total": 1000 + minutes / 30 * (1 + (mid % 7) / 10),
                        "voltage": 221.5,
                        "power": 1.25,
                        "relay_state": "on",
                        "source": "push",
                    }
                    for mid in sample
                ]

            readings = env["prepaid.meter.reading"]
            sample = ids[: args.orm_sample]
            vals = rows(sample)
            cr.execute("SAVEPOINT orm_sample")
            start = time.perf_counter()
            readings.create(vals)
            env.flush_all()
            orm = len(sample) / (time.perf_counter() - start)
            cr.execute(
                "ROLLBACK TO SAVEPOINT orm_sample"
            )  # the bulk path starts from the same state
            env.invalidate_all()
            batch = rows(ids)
            start, cpu = time.perf_counter(), time.process_time()
            result = readings._ingest(batch)
            env.flush_all()
            bulk = len(ids) / (time.perf_counter() - start)
            cpu = time.process_time() - cpu
            assert result["stored"] == len(ids), result["stored"]
            cr.commit()  # as the gateway does after each batch
            results[label] = (orm, bulk)
            print(
                f"{label}: ORM batch create {orm:,.0f} readings/s ({len(sample):,} meters); "
                f"bulk _ingest {bulk:,.0f} readings/s ({len(ids):,} meters, "
                f"{cpu:.2f}s Python CPU); ratio {bulk / orm:.1f}x; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    worst = min(bulk for _, bulk in results.values())
    print(f"bulk path, slowest interval: {worst:,.0f} readings/s (target 50,000)")


if __name__ == "__main__":
    main()
