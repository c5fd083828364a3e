"""X2 benchmark: the whole chain on one box, N meters reporting every T minutes.

- Odoo in prefork mode (``--workers`` HTTP workers, ``--cron-workers`` cron worker
  processes) on the benchmark database, its PostgreSQL tuned as a production server's;
- N meters with their units, open tenancies and accounts on an 8-step ladder x time-of-use
  tariff (``bench_deduction``'s fleet), history already in the store (``--history-days``
  days of readings every T minutes before the first interval);
- each interval, every meter's reading posted to the device API as gateway runners post:
  ``--posters`` concurrent clients, messages of ``--batch`` readings (the runner's default),
  signed (``prepaid_core.device_auth``);
- the scheduled actions doing the rest in the cron workers: the deduction run (triggered by
  the ingest) charges every reading, evaluates the alarms and cuts the meters whose balance
  crosses zero (``--zero-share`` of them each interval, set just above zero beforehand),
  which triggers the reconciler that queues their relay commands; the hourly freeze is
  triggered every hour of readings, the reconciler every interval.

Time is compressed: each interval starts when the previous one finished.  Per interval:
wall time from the first reading posted to the last reading charged and its commands
queued, readings/s stored, meters/s charged, lag from post to charge (p50, p95), CPU seconds
of Odoo's and PostgreSQL's processes, the largest RSS of each Odoo process, database growth
(and per day of readings), and the deduction's floor (``floor.py``) measured on the same
readings.  N is *sustained* at T when every measured interval ends within T/2.

    export PGPORT=56301 PG_OPTIONS="-c shared_buffers=6GB ..."   # docs/benchmarks.md
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_capacity.py \
        --meters 100000 --history-days 0.5 --zero-share 0.001'

``--drop-month``: at the end, time dropping the oldest month of history (retention).
``--runner-meters 10000``: the gateway runner's RSS with that many MQTT meters reporting
through Mosquitto (``bench_mqtt_ingest``'s fleet) instead of the chain.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import psutil
from bench_deduction import create_fleet, ladder_tou_tariff, reset
from bench_device_api import settle
from floor import measure_floor_anew
from odoo_bench import (
    bench_gateway,
    gateway_readings,
    http_server,
    load_note,
    open_registry,
    percentile,
)
from psycopg2.errors import SerializationFailure

import odoo
from odoo import api

from prepaid_core.gateway_runner.api import DeviceApiClient, new_message_id
from prepaid_core.simulator.broker import start_mosquitto

KEY = "bench-capacity-key-0123456789"
#: the first interval (the bench tenancies open on 2029-12-01); history comes before it
T0 = datetime(2030, 1, 10)
GIB = 1024**3


class Meter(NamedTuple):
    meter_id: int
    account_id: int
    gateway_id: int
    address: str


class Message(NamedTuple):
    gateway_id: int
    meters: list


class Sizes(NamedTuple):
    total: int
    store: int


class Usage(NamedTuple):
    odoo_cpu: float
    pg_cpu: float
    busiest: float  # CPU seconds of the busiest Odoo process (the deduction's cron worker)
    rss: dict  # {Odoo process label: largest RSS in bytes}


def main():
    args = parse_args()
    # stopped (timeout, kill): the servers started here are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if not os.environ.get("PGHOST"):
        sys.exit("Start PostgreSQL first: source scripts/common.sh && pg_start")
    # the runner's check: the device API alone (bench_gateway's meters have no account)
    modules = "meter_gateway" if args.runner_meters else "meter_gateway,prepaid_billing"
    registry = open_registry(args.db, modules)
    if args.runner_meters:
        runner_memory(registry, args)
        return
    meters = prepare_fleet(registry, args.meters, args.partition_period)
    load_history(registry, args)
    options = [
        f"--gevent-port={args.port + 1}",
        "--limit-time-cpu=3600",
        "--limit-time-real-cron=0",
    ]
    with http_server(args.db, args.port, args.workers, args.cron_workers, options) as url:
        settle()
        results = [
            run_interval(registry, url, meters, index, args)
            for index in range(args.warmup + args.intervals)
        ]
    summarize(results[args.warmup :], args)
    if args.drop_month:
        drop_month(registry)
    print(load_note())


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--interval", type=int, default=15, help="minutes between readings")
    parser.add_argument("--intervals", type=int, default=4, help="measured intervals")
    parser.add_argument("--warmup", type=int, default=2, help="intervals before (baselines)")
    parser.add_argument("--history-days", type=float, default=0.0)
    parser.add_argument("--partition-period", choices=("month", "week", "day"), default="month")
    parser.add_argument("--posters", type=int, default=4, help="concurrent device API clients")
    parser.add_argument("--batch", type=int, default=1000, help="readings per message")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers")
    parser.add_argument("--cron-workers", type=int, default=2)
    parser.add_argument("--zero-share", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=3.0, help="x T: an interval's limit")
    parser.add_argument("--drop-month", action="store_true")
    parser.add_argument("--runner-meters", type=int, default=0)
    parser.add_argument("--runner-minutes", type=float, default=3.0)
    parser.add_argument("--db", default="capacity_bench")
    parser.add_argument("--port", type=int, default=7301)
    return parser.parse_args()


# === SET-UP === #
def prepare_fleet(registry, count, period):
    """The fleet at its starting state (no readings, balances of 1000, relays wanted on),
    the store empty and cut by ``period``."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        create_fleet(env, cr, count, ladder_tou_tariff(env))
        for gateway in env["prepaid.gateway"].search([("name", "=", "Bench 4G")]):
            gateway._set_api_key(KEY)
        print("resetting the store, the ledger and the meters ...", flush=True)
        env["prepaid.meter.reading"]._drop_partitions_before(date(2100, 1, 1))
        env["ir.config_parameter"].set_param("prepaid_meter.reading_partition_period", period)
        cr.execute(
            "TRUNCATE prepaid_meter_reading_store, prepaid_meter_reading_daily, "
            "prepaid_meter_reading_daily_queue"
        )
        cr.execute("DELETE FROM meter_gateway_command")
        reset(cr)
        cr.execute(
            "UPDATE prepaid_meter SET desired_relay_state = 'on', desired_relay_reason = NULL "
            "WHERE name LIKE 'bench-%%' AND desired_relay_state IS DISTINCT FROM 'on'"
        )
        cr.execute(
            """
            SELECT m.id AS meter_id, a.id AS account_id, m.gateway_id, m.address
              FROM prepaid_meter m
              JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
              JOIN prepaid_account a ON a.tenancy_id = t.id
             WHERE m.name LIKE 'bench-%%' ORDER BY m.id LIMIT %s
            """,
            [count],
        )
        meters = [Meter(**row) for row in cr.dictfetchall()]
        cr.commit()
    vacuum(registry.db_name)
    return meters


def vacuum(db):
    subprocess.run(
        [
            *("psql", "-qd", db, "-c"),
            "VACUUM ANALYZE prepaid_meter, prepaid_meter_latest, prepaid_account, "
            "prepaid_account_line, prepaid_meter_reading_store",
        ],
        check=True,
    )


def load_history(registry, args):
    """``--history-days`` days of readings every T minutes before the first interval, in
    the store's partitions (created as the ingest creates them), oldest day first, and
    charged (the meters' cursors after them)."""
    days = args.history_days
    if not days:
        return
    step = timedelta(minutes=args.interval)
    first = T0 - timedelta(days=days)
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        env["prepaid.meter.reading"]._ensure_partitions(
            [first + timedelta(days=d) for d in range(int(days) + 2)]
        )
        cr.commit()
        start, day, rows = time.perf_counter(), first, 0
        while day < T0:
            end = min(day + timedelta(days=1), T0)
            cr.execute(
                """
                INSERT INTO prepaid_meter_reading_store (meter_id, company_id, read_at,
                    received_at, source, forward_total, total, consumption, chargeable)
                SELECT m.id, m.company_id, t, t, 'push',
                       900 + extract(epoch FROM t - %(first)s) / 36000,
                       900 + extract(epoch FROM t - %(first)s) / 36000, 0.025, true
                  FROM generate_series(%(day)s, %(end)s - %(step)s, %(step)s) t
                 CROSS JOIN (SELECT id, company_id FROM prepaid_meter
                              WHERE name LIKE 'bench-%%' ORDER BY id LIMIT %(n)s) m
                """,
                {"first": first, "day": day, "end": end, "step": step, "n": args.meters},
            )
            rows += cr.rowcount
            cr.commit()
            day = end
            rate = rows / (time.perf_counter() - start)
            print(f"history: {rows:,} readings up to {day} ({rate:,.0f}/s)", flush=True)
        # the history is charged already: the deduction starts after it
        cr.execute(
            "UPDATE prepaid_meter SET billing_charged_until = %s WHERE name LIKE 'bench-%%'",
            [T0 - step],
        )
        cr.commit()
    vacuum(args.db)


# === ONE INTERVAL === #
def run_interval(registry, url, meters, index, args):
    read_at = T0 + timedelta(minutes=args.interval * index)
    crossing = set_crossings(registry, meters, index, args.zero_share)
    trigger_crons(registry, index, args.interval)
    size = database_size(registry)
    messages = split(meters, args.batch)
    monitor = Monitor(registry)
    started = time.time()
    posted = post_all(url, messages, read_at, index, args.posters)
    ingest_seconds = max(posted.values()) - started
    done = wait_charged(registry, read_at, len(meters), args, monitor, started)
    usage = monitor.usage()
    with registry.cursor() as cr:
        end, lags = charge_times(cr, messages, posted, read_at)
        commands = queued_commands(cr, started)
    floor = measure_floor_anew(registry, read_at - timedelta(minutes=args.interval), read_at)
    wall = max(end, commands["last"] or 0) - started
    result = {
        "index": index,
        "read_at": read_at,
        "done": done,
        "wall": wall,
        "ingest": ingest_seconds,
        "lag50": percentile(lags, 0.5),
        "lag95": percentile(lags, 0.95),
        "crossing": crossing,
        "commands": commands["count"],
        "floor": floor.seconds,
        "floor_readings": floor.readings,
        "growth": Sizes(
            *(after - before for after, before in zip(database_size(registry), size, strict=True))
        ),
        "usage": usage,
        "meters": len(meters),
    }
    print_interval(result, args)
    return result


def set_crossings(registry, meters, index, share):
    """A fresh ``share`` of the accounts set just above zero (an adjustment in the ledger):
    this interval's charge takes them below it (cut, commands queued)."""
    every = max(round(1 / share), 1) if share else 0
    if not every:
        return 0
    accounts = [m.account_id for m in meters[index % every :: every]]
    for attempt in range(1, 6):
        try:
            _set_balances_near_zero(registry, accounts)
            break
        except SerializationFailure:
            # an action of the interval before still writes some of these accounts
            # (the forecast, the notices): again on a new snapshot
            if attempt == 5:
                raise
            time.sleep(2)
    return len(accounts)


def _set_balances_near_zero(registry, accounts):
    with registry.cursor() as cr:
        cr.execute(
            """
            WITH chosen AS (
                UPDATE prepaid_account a SET balance = 0.05 FROM prepaid_account old
                 WHERE a.id = old.id AND a.id = ANY(%s) RETURNING a.id, a.company_id,
                       old.balance AS old_balance)
            INSERT INTO prepaid_account_line (account_id, company_id, kind, amount, date,
                   posted_at, memo, create_uid, write_uid, create_date, write_date)
            SELECT id, company_id, 'adjustment', 0.05 - old_balance, %s, now(),
                   'capacity bench', 1, 1, now(), now() FROM chosen
            """,
            [accounts, T0.date()],
        )


def trigger_crons(registry, index, minutes):
    """The reconciler every interval, the hourly freeze every hour of readings."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        env.ref("meter_gateway.ir_cron_meter_gateway_reconcile")._trigger()
        if index and (index * minutes) % 60 == 0:
            env.ref("prepaid_meter.ir_cron_prepaid_meter_reading_freeze")._trigger()


def split(meters, batch):
    by_gateway = {}
    for meter in meters:
        by_gateway.setdefault(meter.gateway_id, []).append(meter)
    return [
        Message(gateway_id, group[start : start + batch])
        for gateway_id, group in by_gateway.items()
        for start in range(0, len(group), batch)
    ]


def post_all(url, messages, read_at, index, posters):
    """Every message posted by ``posters`` clients at once; ``{message number: time the
    answer came}`` (the readings are committed then)."""
    stamp = read_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    clients = {}

    def post(number):
        message = messages[number]
        key = (message.gateway_id, number % posters)
        if key not in clients:
            clients[key] = DeviceApiClient(url, message.gateway_id, KEY, timeout=900)
        readings = [
            {
                "address": meter.address,
                "read_at": stamp,
                # 0.25 to 2 kWh a quarter of an hour, by meter
                "forward_total": f"{1000 + index * (0.25 + meter.meter_id % 8 / 4):.2f}",
                "voltage": 221.5,
                "power": 1.25,
                "relay_state": "on",
            }
            for meter in message.meters
        ]
        answer = clients[key].push(readings, [], message_id=new_message_id("capacity"))
        assert answer["stored"] == len(readings), answer.get("rejected", [])[:3]
        return number, time.time()

    with ThreadPoolExecutor(posters) as pool:
        return dict(pool.map(post, range(len(messages))))


def wait_charged(registry, read_at, count, args, monitor, started):
    """Poll until every meter is charged up to ``read_at`` and every meter cut since the
    interval began has a relay command queued since then, or nothing moved for 10 s once
    every meter is charged (or the time limit); True when done."""
    deadline = time.time() + args.timeout * args.interval * 60
    since = datetime.fromtimestamp(started, UTC).replace(tzinfo=None)
    seen = {"row": None, "at": time.time()}

    def settled(row):
        if row != seen["row"]:
            seen.update(row=row, at=time.time())
        return row["charged"] >= count and time.time() - seen["at"] >= 10

    with registry.cursor() as cr:
        while time.time() < deadline:
            monitor.sample()
            polled = time.perf_counter()
            cr.execute(
                """
                SELECT (SELECT count(*) FROM prepaid_meter WHERE name LIKE 'bench-%%'
                           AND billing_charged_until >= %(read_at)s) AS charged,
                       (SELECT count(DISTINCT meter_id) FROM prepaid_meter_event
                         WHERE event_type = 'desired_off' AND create_date >= %(since)s) AS cut,
                       (SELECT count(DISTINCT meter_id) FROM meter_gateway_command
                         WHERE create_date >= %(since)s) AS commanded
                """,
                {"read_at": read_at, "since": since},
            )
            row = cr.dictfetchone()
            cr.commit()
            # a meter with an active command for its new state gets none: settled is done
            if (row["charged"] >= count and row["commanded"] >= row["cut"]) or settled(row):
                return True
            # the poll counts the whole fleet (0.2-0.7 s at a million meters): it keeps to
            # a tenth of a core at most, not to slow down what it measures
            time.sleep(max(1.0, 9 * (time.perf_counter() - polled)))
    return False


def charge_times(cr, messages, posted, read_at):
    """When the last reading was charged (epoch seconds) and every meter's lag from
    its message's answer to its charge: the deduction line of its account for the day is
    written by the batch that charged it (``write_date``: that transaction's start)."""
    cr.execute(
        "SELECT account_id, extract(epoch FROM write_date) AS at "
        "FROM prepaid_account_line WHERE kind = 'deduction' AND date = %s",
        [read_at.date()],
    )
    charged = {row["account_id"]: float(row["at"]) for row in cr.dictfetchall()}
    lags = [
        max(charged[meter.account_id] - answered, 0.0)
        for number, answered in posted.items()
        for meter in messages[number].meters
        if meter.account_id in charged
    ]
    return max(charged.values(), default=0.0), lags


def queued_commands(cr, started):
    """The relay commands queued for the meters cut in this interval: how many, and when
    the last one was (the reconciler's corrections of earlier cuts left aside)."""
    cr.execute(
        """
        SELECT count(*) AS count,
               max(extract(epoch FROM c.create_date AT TIME ZONE 'UTC')) AS last
          FROM meter_gateway_command c
         WHERE c.create_date >= %(since)s
           AND c.meter_id IN (SELECT meter_id FROM prepaid_meter_event
                               WHERE event_type = 'desired_off' AND create_date >= %(since)s)
        """,
        {"since": datetime.fromtimestamp(started, UTC).replace(tzinfo=None)},
    )
    row = cr.dictfetchone()
    return {"count": row["count"], "last": float(row["last"]) if row["last"] else None}


def database_size(registry):
    """Bytes of the whole database and of the readings store (partitions, indexes)."""
    with registry.cursor() as cr:
        cr.execute(
            "SELECT pg_database_size(current_database()) AS total, "
            "(SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            " WHERE inhparent = 'prepaid_meter_reading_store'::regclass) AS store"
        )
        row = cr.dictfetchone()
        return Sizes(row["total"], int(row["store"] or 0))


# === MEASURES === #
class Monitor:
    """CPU seconds of Odoo's processes (this script's children) and of PostgreSQL's (the
    postmaster's), and the largest RSS of each Odoo process, over one interval."""

    def __init__(self, registry):
        with registry.cursor() as cr:
            cr.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
            data = cr.fetchone()[0]
        with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as pid_file:
            self.postmaster = psutil.Process(int(pid_file.readline()))
        self.odoo = psutil.Process().children()[0]
        self.rss = {}
        self.start = {}
        self.sample()
        self.start = dict(self.cpu)

    def _tree(self, root):
        with contextlib.suppress(psutil.Error):
            yield root
            yield from root.children(recursive=True)

    def sample(self):
        self.cpu = {}
        for name, root in (("odoo", self.odoo), ("pg", self.postmaster)):
            for process in self._tree(root):
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    self.cpu[process.pid] = (name, times.user + times.system)
                    if name == "odoo":
                        rss = process.memory_info().rss
                        self.rss[process.pid] = max(self.rss.get(process.pid, 0), rss)

    def usage(self):
        self.sample()
        spent, busiest = {"odoo": 0.0, "pg": 0.0}, 0.0
        for pid, (name, seconds) in self.cpu.items():
            seconds -= self.start.get(pid, (name, 0.0))[1]
            spent[name] += seconds
            busiest = max(busiest, seconds if name == "odoo" else 0.0)
        return Usage(spent["odoo"], spent["pg"], busiest, dict(self.rss))


def print_interval(r, args):
    usage, seconds = r["usage"], max(r["wall"], 1e-9)
    day = 24 * 60 / args.interval
    print(
        f"interval {r['index']} ({r['read_at']:%H:%M}): {'done' if r['done'] else 'NOT DONE'} "
        f"in {r['wall']:.1f} s (limit {args.interval * 30} s); "
        f"{r['meters'] / max(r['ingest'], 1e-9):,.0f} readings/s stored "
        f"({r['ingest']:.1f} s), {r['meters'] / seconds:,.0f} meters/s charged; "
        f"lag post->charge p50 {r['lag50']:.1f} s p95 {r['lag95']:.1f} s; "
        f"{r['crossing']} set to cross zero, {r['commands']} commands queued; "
        f"CPU s Odoo {usage.odoo_cpu:.1f} (busiest process {usage.busiest:.1f}) "
        f"PostgreSQL {usage.pg_cpu:.1f}; "
        f"largest Odoo RSS {max(usage.rss.values(), default=0) / 2**20:,.0f} MB; "
        f"database +{r['growth'].total / 2**20:,.0f} MB ({r['growth'].total * day / GIB:,.1f} "
        f"GiB a day), of which the readings store +{r['growth'].store / 2**20:,.0f} MB "
        f"({r['growth'].store * day / GIB:,.1f} GiB a day, "
        f"{r['growth'].store / r['meters']:,.0f} bytes a reading); "
        f"floor {r['floor']:.2f} s for {r['floor_readings']:,} readings "
        f"(chain = {r['wall'] / max(r['floor'], 1e-9):.1f} x floor)",
        flush=True,
    )


def summarize(results, args):
    limit = args.interval * 30
    worst = max(r["wall"] for r in results)
    held = all(r["done"] and r["wall"] <= limit for r in results)
    rss = {}
    for r in results:
        for pid, value in r["usage"].rss.items():
            rss[pid] = max(rss.get(pid, 0), value)
    day = 24 * 60 / args.interval
    growth = sum(r["growth"].total for r in results) / len(results) * day
    store = sum(r["growth"].store for r in results) / len(results) * day
    ratios = [r["wall"] / r["floor"] for r in results if r["floor"]]
    print(
        f"{args.meters:,} meters every {args.interval} min: "
        f"{'SUSTAINED' if held else 'NOT sustained'} (worst interval {worst:.1f} s, "
        f"limit {limit} s); chain / floor {min(ratios):.1f}-{max(ratios):.1f} x; "
        f"database growth {growth / GIB:,.1f} GiB a day (readings store {store / GIB:,.1f}); "
        "Odoo RSS by process (MB): "
        + ", ".join(f"{pid}: {value / 2**20:,.0f}" for pid, value in sorted(rss.items()))
        + f"; over 2 GiB: {sum(value > 2 * GIB for value in rss.values())}",
        flush=True,
    )


def drop_month(registry):
    """Retention: the oldest month of readings dropped (its partition), timed."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        readings = env["prepaid.meter.reading"]
        cr.execute("SELECT min(read_at) FROM prepaid_meter_reading_store")
        oldest = cr.fetchone()[0]
        if oldest is None:
            return
        month_end = (oldest.replace(day=1) + timedelta(days=32)).replace(day=1)
        cr.execute(
            "SELECT count(*) AS rows, pg_database_size(current_database()) AS size "
            "FROM prepaid_meter_reading_store WHERE read_at < %s",
            [month_end],
        )
        before = cr.dictfetchone()
        start = time.perf_counter()
        dropped = readings._drop_partitions_before(month_end.date())
        cr.commit()
        seconds = time.perf_counter() - start
        cr.execute("SELECT pg_database_size(current_database())")
        freed = before["size"] - cr.fetchone()[0]
    print(
        f"retention: dropped {dropped} ({before['rows']:,} readings, "
        f"{freed / GIB:,.2f} GiB freed) in {seconds:.2f} s",
        flush=True,
    )


# === THE GATEWAY RUNNER'S MEMORY === #
def runner_memory(registry, args):
    """The gateway runner (its command, a process of its own) with ``--runner-meters`` MQTT
    meters reporting once a minute through Mosquitto: its largest RSS."""
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = bench_gateway(env, "Bench 4G MQTT", "mqtt", args.runner_meters, "66", KEY)
        gateway_id = gateway.id
    workdir = tempfile.mkdtemp(prefix="bench-capacity-runner-")
    broker = start_mosquitto(Path(workdir) / "mosquitto", port=args.port + 2)
    options = [f"--gevent-port={args.port + 1}"]
    try:
        with http_server(args.db, args.port, args.workers, 0, options) as url:
            runner = subprocess.Popen(
                [
                    *(sys.executable, "-m", "prepaid_core.gateway_runner", "--odoo-url", url),
                    *("--gateway", str(gateway_id), "--broker-host", broker.host),
                    *("--broker-port", str(broker.port), "--log-level", "WARNING"),
                    *("--dead-letter-file", os.path.join(workdir, "dead-letters.jsonl")),
                ],
                env=dict(os.environ, PREPAID_GATEWAY_API_KEY=KEY),
            )
            fleet = subprocess.Popen(
                [
                    *(
                        sys.executable,
                        os.path.join(os.path.dirname(__file__), "bench_mqtt_ingest.py"),
                    ),
                    *("--fleet", broker.host, str(broker.port), str(args.runner_meters)),
                    *(str(args.runner_minutes * 60), os.path.join(workdir, "acked.jsonl")),
                ]
            )
            peak = 0
            while fleet.poll() is None:
                peak = max(peak, psutil.Process(runner.pid).memory_info().rss)
                time.sleep(1.0)
            runner.terminate()
            runner.wait(60)
    finally:
        broker.stop()
    with registry.cursor() as cr:
        stored = gateway_readings(cr, gateway_id)
    print(
        f"gateway runner, {args.runner_meters:,} MQTT meters, one reading a minute each for "
        f"{args.runner_minutes:g} min: largest RSS {peak / 2**20:,.0f} MB (target 200 MB); "
        f"{stored:,} readings of those meters in the store",
        flush=True,
    )


if __name__ == "__main__":
    main()
