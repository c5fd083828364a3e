"""M5 benchmark: one interval of readings for 100,000 meters into the readings store.

Compares, in the same run and on the same database:
- the baseline: ORM batch ``create`` of ``prepaid.meter.reading`` (same validation), on a
  sample of meters, and
- the project's bulk path, ``prepaid.meter.reading._ingest`` (validation in Python, COPY,
  one UPDATE of every meter's latest state), on all meters;
for a first interval (every reading is a meter's baseline) and a second one (every reading
is charged).  Prints readings/s and the ratio.  Target: bulk >= 50,000 readings/s.

Each interval is measured two ways, in passes that alternate (``--passes``):
- one transaction: the whole interval in one batch, in this process (the worst case: one
  PostgreSQL backend does all the database's work, one after the other);
- N workers (``--workers``, default 2: the machine's cores): N processes, as Odoo's
  workers, each storing its share of the meters (its gateways' batch) in its own
  transaction at the same time; the rate is that of the whole interval, from the first
  start to the last commit.  The ORM baseline is measured the same way (each worker its
  share of the sample).
Both start from the same state: meters never read, an empty month of the store.

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_readings_ingest.py'
The benchmark database (``prepaid_bench``) is created on first use and kept; each pass first
deletes the readings of the previous one, so runs are comparable, and each interval starts
after the vacuum autovacuum would have done in the 30 minutes between two intervals.
"""

import argparse
import logging
import multiprocessing
import os
import statistics
import subprocess
import time
from datetime import datetime, timedelta

from odoo_bench import bench_gateway, open_registry

import odoo
from odoo import api

T0 = datetime(2030, 1, 1)
INTERVALS = (("first interval (baselines)", 0), ("second interval (charged)", 30))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--orm-sample", type=int, default=5_000)
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--workers", type=int, default=2, help="processes of the second way")
    parser.add_argument("--passes", type=int, default=1, help="passes of both ways, alternated")
    args = parser.parse_args()

    # print the phases of each batch (stored / meters)
    logging.getLogger("odoo.addons.prepaid_meter.models.prepaid_meter_reading").setLevel(
        logging.DEBUG
    )
    registry = open_registry(args.db, "prepaid_meter")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        # every meter on one 4G gateway, named bench-<n> (the other benchmarks' meters)
        bench_gateway(env, "Bench 4G", "mqtt", args.meters, "", meter_name="bench")
        cr.execute(
            "SELECT id FROM prepaid_meter WHERE name LIKE 'bench-%%' ORDER BY id LIMIT %s",
            [args.meters],
        )
        ids = [row[0] for row in cr.fetchall()]
    results = {}  # way -> [(ORM, bulk)] of its intervals
    for _ in range(args.passes):
        for way in ("one transaction", f"{args.workers} workers"):
            with registry.cursor() as cr:
                reset(api.Environment(cr, odoo.SUPERUSER_ID, {}))
            for label, minutes in INTERVALS:
                vacuum(args.db)
                if way == "one transaction":
                    orm, bulk, cpu = measure_alone(registry, ids, args.orm_sample, minutes)
                    detail = f"{len(ids):,} meters, {cpu:.2f}s Python CPU"
                else:
                    orm, bulk = measure_workers(
                        registry, ids, args.orm_sample, minutes, args.workers
                    )
                    detail = f"{args.workers} x {len(ids) // args.workers:,} meters"
                results.setdefault(way, []).append((orm, bulk))
                print(
                    f"{way}, {label}: ORM batch create {orm:,.0f} readings/s "
                    f"({min(args.orm_sample, len(ids)):,} meters); bulk _ingest "
                    f"{bulk:,.0f} readings/s ({detail}); ratio {bulk / orm:.1f}x; "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    with registry.cursor() as cr:
        reset(api.Environment(cr, odoo.SUPERUSER_ID, {}))
    for way in ("one transaction", f"{args.workers} workers"):
        orms, bulks = zip(*results[way], strict=True)
        print(
            f"bulk path, {way}: slowest interval {min(bulks):,.0f} readings/s, median "
            f"{statistics.median(bulks):,.0f}, {sum(b >= 50_000 for b in bulks)} of "
            f"{len(bulks)} intervals over 50,000 (target 50,000); ORM batch create median "
            f"{statistics.median(orms):,.0f}"
        )


def reset(env):
    """Meters never read, like the first run, and an empty month of the store (the
    readings of a month go into its own partition: emptied, not deleted row by row, so
    that runs do not insert into the holes and bloated indexes earlier runs left, which
    no real store has)."""
    cr, readings = env.cr, env["prepaid.meter.reading"]
    if readings._partition_name(T0) in readings._partition_names():
        cr.execute(f"TRUNCATE {readings._partition_name(T0)}")
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


def vacuum(db):
    """Intervals are 30 minutes apart: autovacuum has cleaned up after the previous one
    (the latest states it rewrote, the rows it added) before the next arrives.  Here they
    follow each other at once: the same cleanup, done before the timing instead of
    during it."""
    subprocess.run(
        [
            "psql",
            "-qd",
            db,
            "-c",
            "VACUUM (ANALYZE) prepaid_meter_latest, prepaid_meter_reading_store",
        ],
        check=True,
    )


def interval_rows(ids, minutes):
    return [
        {
            "meter_id": mid,
            "read_at": T0 + timedelta(minutes=minutes),
            "forward_total": 1000 + minutes / 30 * (1 + (mid % 7) / 10),
            "voltage": 221.5,
            "power": 1.25,
            "relay_state": "on",
            "source": "push",
        }
        for mid in ids
    ]


def orm_then_bulk(env, ids, sample, minutes, ready=None):
    """ORM batch create of ``sample`` (rolled back: the bulk path starts from the same
    state), then the bulk path on ``ids``, committed as the gateway does after each
    batch.  ``ready``: a barrier passed before each of the two (the workers start each
    together).  Returns the start and end of each, and the bulk path's Python CPU."""
    cr = env.cr
    readings = env["prepaid.meter.reading"]
    vals = interval_rows(sample, minutes)
    batch = interval_rows(ids, minutes)
    cr.execute("SAVEPOINT orm_sample")
    if ready:
        ready.wait()
    orm = [time.perf_counter()]
    readings.create(vals)
    env.flush_all()
    orm.append(time.perf_counter())
    cr.execute("ROLLBACK TO SAVEPOINT orm_sample")
    env.invalidate_all()
    if ready:
        ready.wait()
    bulk, cpu = [time.perf_counter()], time.process_time()
    result = readings._ingest(batch)
    env.flush_all()
    cr.commit()
    bulk.append(time.perf_counter())
    assert result["stored"] == len(ids), result["stored"]
    return orm, bulk, time.process_time() - cpu


def measure_alone(registry, ids, orm_sample, minutes):
    """The interval in one transaction: (ORM readings/s, bulk readings/s, Python CPU)."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        sample = ids[:orm_sample]
        orm, bulk, cpu = orm_then_bulk(env, ids, sample, minutes)
    return len(sample) / (orm[1] - orm[0]), len(ids) / (bulk[1] - bulk[0]), cpu


def measure_workers(registry, ids, orm_sample, minutes, workers):
    """The interval shared by ``workers`` processes (as Odoo's workers, each with its own
    connection), each its contiguous share of the meters (a gateway's meters are created
    together) and of the ORM sample: (ORM readings/s, bulk readings/s), from the first
    start to the last end."""
    odoo.sql_db.close_all()  # each process opens connections of its own
    context = multiprocessing.get_context("fork")
    ready, results = context.Barrier(workers), context.Queue()
    share = -(-len(ids) // workers)
    sample = ids[:orm_sample]
    sample_share = -(-len(sample) // workers)

    def work(k):
        with registry.cursor() as cr:
            env = api.Environment(cr, odoo.SUPERUSER_ID, {})
            results.put(
                orm_then_bulk(
                    env,
                    ids[k * share : (k + 1) * share],
                    sample[k * sample_share : (k + 1) * sample_share],
                    minutes,
                    ready,
                )
            )

    processes = [context.Process(target=work, args=(k,)) for k in range(workers)]
    for process in processes:
        process.start()
    done = [results.get() for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"a worker failed (exit code {process.exitcode})")
    orm = min(d[0][0] for d in done), max(d[0][1] for d in done)
    bulk = min(d[1][0] for d in done), max(d[1][1] for d in done)
    return len(sample) / (orm[1] - orm[0]), len(ids) / (bulk[1] - bulk[0])


if __name__ == "__main__":
    main()
