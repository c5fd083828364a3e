"""M5 benchmark: the hourly freeze of the daily readings at volume.

A fleet of meters (the ``bench-`` meters of ``prepaid_bench``, 20,000 by default) read
every 30 minutes: yesterday whole and today until noon are in the store and were frozen by
the previous run; the last hour's two intervals have just come.  Times, in the same run and
on the same data, alternated:
- the baseline: the former hourly run, which aggregated again every reading of the last
  50 hours (``_freeze(now - 50 hours)``), and
- the project's run, ``_freeze_queued``: the days that received readings since the last run
  (today, here), read whole.
Prints the readings in the store (yesterday's, today's), each way's median seconds and the
daily records it wrote, and the ratio.  The readings are written in SQL into a month of
their own (June 2032) and every run is rolled back: the database is left as it was.

    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_daily_freeze.py'
"""

import argparse
import statistics
import time
from datetime import datetime, timedelta

from odoo_bench import open_registry

import odoo
from odoo import api

DAY = datetime(2032, 6, 11)  # "today"; yesterday is 10 June
NOW = DAY + timedelta(hours=12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="prepaid_bench")
    args = parser.parse_args()
    registry = open_registry(args.db, "prepaid_meter")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        cr.execute(
            "SELECT id, company_id FROM prepaid_meter WHERE name LIKE 'bench-%%' "
            "ORDER BY id LIMIT %s",
            [args.meters],
        )
        meters = cr.fetchall()
        if len(meters) < args.meters:
            raise SystemExit(
                f"{args.db} has {len(meters)} bench meters: run bench_readings_ingest.py first"
            )
        companies = {company for _meter, company in meters}
        readings = env["prepaid.meter.reading"]
        daily = env["prepaid.meter.reading.daily"]
        partition = readings._ensure_partitions([DAY])
        print(f"writing the readings of {len(meters):,d} meters (yesterday, today until noon)")
        cr.execute(
            """
            INSERT INTO prepaid_meter_reading_store (meter_id, company_id, read_at,
                received_at, source, forward_total, total, consumption, power, chargeable)
            SELECT m.meter_id, m.company_id, t, t, 'poll', 1000 + 0.25 * k, 1000 + 0.25 * k,
                   0.25, 0.5, true
              FROM unnest(%s::int[], %s::int[]) m(meter_id, company_id)
             CROSS JOIN generate_series(%s::timestamp, %s::timestamp, interval '30 minutes')
                   WITH ORDINALITY g(t, k)
             ORDER BY t, m.meter_id  -- (as the readings come: interval by interval)
            """,
            [
                [m for m, _c in meters],
                [c for _m, c in meters],
                DAY - timedelta(days=1),
                NOW - timedelta(minutes=30),
            ],
        )
        stored = cr.rowcount
        # what autovacuum does as the month fills: the statistics, the BRIN summaries
        cr.execute(f"ANALYZE {partition}")
        cr.execute(
            "SELECT brin_summarize_new_values(indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE i.indrelid = %s::regclass AND a.amname = 'brin'",
            [partition],
        )
        daily._freeze(DAY - timedelta(days=1))  # what the previous runs froze
        cr.execute("DELETE FROM prepaid_meter_reading_daily_queue")
        cr.execute("ANALYZE prepaid_meter_reading_daily")
        cr.execute(
            "SELECT count(*) FILTER (WHERE read_at < %s), count(*) FILTER (WHERE read_at >= %s) "
            "FROM prepaid_meter_reading_store WHERE read_at >= %s",
            [DAY, DAY, DAY - timedelta(days=1)],
        )
        yesterday, today = cr.fetchone()
        per_run = {"former (last 50 hours)": [], "queued days": []}
        written = {}
        for _round in range(args.rounds):
            for way, times in per_run.items():
                cr.execute("SAVEPOINT run")
                # the last hour's readings came through _ingest, which queued their times
                daily._queue_readings(
                    {
                        (company, NOW - timedelta(minutes=m))
                        for company in companies
                        for m in (60, 30)
                    }
                )
                daily.flush_model()
                started = time.perf_counter()
                if way == "queued days":
                    written[way] = daily._freeze_queued()
                else:
                    written[way] = daily._freeze(NOW - timedelta(hours=50))
                times.append(time.perf_counter() - started)
                cr.execute("ROLLBACK TO SAVEPOINT run")
        cr.rollback()
    print(
        f"{stored:,d} readings of {len(meters):,d} meters: {yesterday:,d} yesterday, "
        f"{today:,d} today until noon (UTC); medians of {args.rounds} runs"
    )
    for way, times in per_run.items():
        median = statistics.median(times)
        print(f"{way:24s} {median:6.2f} s ({written[way]:,d} daily records written)")
    former, queued = (statistics.median(times) for times in per_run.values())
    print(f"ratio: the queued run takes {queued / former:.2f} of the former's time")


if __name__ == "__main__":
    main()
