"""M5/M8 benchmark: reading the readings store by time, as its screens and the daily freeze do.

Adds the month of readings up to now (every 30 minutes, ``--meters`` meters, 2,000 by
default: 2.98 million rows in time order, one in 500 flagged) to the benchmark database in
one transaction, then measures each query ``--repeat`` times (median, in ms):
- the Readings menu's first page as it opens (its default filter, "To Review", newest first:
  through the partial index of read_at of the uncharged flagged rows not reviewed), against
  the first page of every reading by time with no bound (every partition is read);
- that first page without the filter as the ORM reads it (looked for in the last hour, day,
  8 days..., through the BRIN index of read_at: ``_search``), against the same unbounded;
- the list without its filter as the web client loads it (``web_search_read``: the page,
  its fields, the pager's count), with and without the windows;
- a range of days as the daily freeze reads them (the last 50 hours, which the hourly run
  read before it took the queued days only: through the BRIN index of read_at), against
  the same count with index scans priced out (the whole month is read);
- ``prepaid.meter.reading.daily._freeze`` itself over those 50 hours.
Everything is rolled back at the end (the readings of other benchmarks dated after now are
left out in the meantime).  Not a test; exits 0.

    bash -c 'source scripts/common.sh && pg_start && \
             python3 benchmarks/bench_readings_screens.py [--meters N] [--repeat N]'
"""

import argparse
import importlib
import statistics
import time
from datetime import datetime, timedelta, timezone

from lxml import etree
from odoo_bench import open_registry

import odoo
from odoo import api
from odoo.models import BaseModel
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

UTC = timezone.utc  # datetime.UTC is Python 3.11+

STEP = timedelta(minutes=30)
SLOTS = 31 * 48  # a month of readings every 30 minutes


def timed(cr, query, repeat):
    """Median wall time (ms) of ``query`` and its first row."""
    times, row = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        cr.execute(query)
        row = cr.fetchone()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default="prepaid_bench")
    args = parser.parse_args()
    registry = open_registry(args.db, "prepaid_meter")
    # (importable once the registry has set the add-ons path up)
    reading_module = importlib.import_module(
        "odoo.addons.prepaid_meter.models.prepaid_meter_reading"
    )
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        readings = env["prepaid.meter.reading"]
        cr.execute("SELECT id, company_id FROM prepaid_meter ORDER BY id LIMIT %s", [args.meters])
        meters = cr.fetchall()
        # the month up to now, as a store in use holds (the screens look back from now)
        now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        first = now - (SLOTS - 1) * STEP
        readings._ensure_partitions([first.date(), now.date()])
        # (other benchmarks' intervals dated in the future: out of this store, for the
        # transaction; a store in use holds nothing newer than now)
        cr.execute("DELETE FROM prepaid_meter_reading_store WHERE read_at > %s", [now])
        slots = SLOTS
        print(
            f"adding {len(meters) * slots:,} readings from {first:%Y-%m-%d %H:%M} to {now:%H:%M} "
            f"on {now:%Y-%m-%d} ...",
            flush=True,
        )
        # one reading in 500 flagged (rollbacks, spikes, gaps), the month's first a baseline
        cr.execute(
            """
            INSERT INTO prepaid_meter_reading_store
                (meter_id, company_id, read_at, received_at, source, forward_total, total,
                 consumption, flags, chargeable)
            SELECT m.id, m.company_id, %s + t * interval '30 minutes',
                   %s + t * interval '30 minutes', 'push', 1000 + t, 1000 + t, 1,
                   CASE WHEN t = 0 THEN 'baseline'
                        WHEN (t * 7 + m.id) %% 500 = 0 THEN 'rollback' END,
                   t > 0 AND (t * 7 + m.id) %% 500 != 0
              FROM generate_series(0, %s) t,
                   unnest(%s::int[], %s::int[]) m(id, company_id)
             ORDER BY t, m.id
            """,
            [first, first, slots - 1, [m[0] for m in meters], [m[1] for m in meters]],
        )
        # the rows lie in time order, as intervals arrive; autovacuum summarizes each block
        # range of the BRIN indexes as it fills (autosummarize): done here, in the transaction
        cr.execute(
            """
            SELECT brin_summarize_new_values(i.indexrelid)
              FROM pg_inherits h
              JOIN pg_index i ON i.indrelid = h.inhrelid
              JOIN pg_class c ON c.oid = i.indexrelid
              JOIN pg_am am ON am.oid = c.relam AND am.amname = 'brin'
             WHERE h.inhparent = 'prepaid_meter_reading_store'::regclass
            """
        )
        cr.execute("ANALYZE prepaid_meter_reading_store")
        cr.execute("SELECT count(*) FROM prepaid_meter_reading_store")
        print(f"{cr.fetchone()[0]:,} readings stored in all", flush=True)

        # the menu's first page, as the web client asks for it
        action = env.ref("prepaid_meter.prepaid_meter_reading_action")
        context = safe_eval(action.context or "{}")
        arch = readings.get_views([(False, "search")])["views"]["search"]["arch"]
        domain = []
        for name in context:
            if name.startswith("search_default_"):
                filter_name = name.removeprefix("search_default_")
                node = etree.fromstring(arch).xpath(f"//filter[@name='{filter_name}']")
                domain += safe_eval(node[0].get("domain"))
        review = readings._search(domain, order=readings._order, limit=80).select()
        every = BaseModel._search(readings, [], order=readings._order, limit=80).select()
        page, _ = timed(cr, SQL("SELECT count(*) FROM (%s) page", review), args.repeat)
        all_page, _ = timed(cr, SQL("SELECT count(*) FROM (%s) page", every), args.repeat)
        print(
            f"Readings menu, first page: {page:8.1f} ms to review (filter {domain}); "
            f"{all_page:8.1f} ms for every reading by time without a bound "
            f"({all_page / page:.0f}x)"
        )
        # without the filter: the page is looked for in the last hour, day... (the ORM's
        # _search, its windows' counts included), against every reading read and sorted
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            page_ids = readings.search([], limit=80).ids
            times.append((time.perf_counter() - start) * 1000)
        windowed = statistics.median(times)
        cr.execute(every)
        assert page_ids == [row[0] for row in cr.fetchall()], "not the same page"
        print(
            f"every reading newest first, first page (the same 80): {windowed:8.1f} ms through "
            f"the last hours' window; {all_page:8.1f} ms reading every reading "
            f"({all_page / windowed:.0f}x)"
        )
        # the list as the web client loads it without the filter (web_search_read: the page,
        # its fields, the pager's count up to 10,001), with and without the windows
        specification = {
            name: {} for name in ("read_at", "source", "forward_total", "total", "consumption")
        }
        specification["meter_id"] = {"fields": {"display_name": {}}}
        loads, default_cost = {}, reading_module.NEWEST_FIRST_COST
        for label, threshold in (("windows", default_cost), ("none", float("inf"))):
            reading_module.NEWEST_FIRST_COST = threshold
            times = []
            for _ in range(args.repeat):
                readings.env.invalidate_all()
                start = time.perf_counter()
                result = readings.web_search_read([], specification, limit=80, count_limit=10001)
                times.append((time.perf_counter() - start) * 1000)
            loads[label] = statistics.median(times), [r["id"] for r in result["records"]]
        reading_module.NEWEST_FIRST_COST = default_cost
        assert loads["windows"][1] == loads["none"][1] == page_ids, "not the same page"
        print(
            f"the list without its filter (web_search_read, {result['length']:,} counted): "
            f"{loads['windows'][0]:8.1f} ms through the windows; {loads['none'][0]:8.1f} ms "
            f"without ({loads['none'][0] / loads['windows'][0]:.0f}x)"
        )

        # the daily freeze's range: the last 50 hours of the month
        since = now + STEP - timedelta(hours=50)
        count = SQL("SELECT count(*) FROM prepaid_meter_reading WHERE read_at >= %s", since)
        brin, (rows,) = timed(cr, count, args.repeat)
        cr.execute("SET LOCAL enable_bitmapscan = off")
        cr.execute("SET LOCAL enable_indexscan = off")
        cr.execute("SET LOCAL enable_indexonlyscan = off")
        scan, _ = timed(cr, count, args.repeat)
        cr.execute("RESET enable_bitmapscan; RESET enable_indexscan; RESET enable_indexonlyscan")
        print(
            f"daily freeze range ({rows:,} readings of the last 50 hours): {brin:8.1f} ms "
            f"through the BRIN index; {scan:8.1f} ms reading the whole month ({scan / brin:.1f}x)"
        )
        start = time.perf_counter()
        frozen = env["prepaid.meter.reading.daily"]._freeze(since)
        print(
            f"_freeze of those 50 hours: {frozen:,} daily records in "
            f"{(time.perf_counter() - start) * 1000:8.1f} ms"
        )
        cr.rollback()


if __name__ == "__main__":
    main()
