"""T3/T5 benchmark: tenants' meter pages and history pages under concurrent independent
users, each a tenant of their own on their own meter with one year of 30-minute readings
(17,520 readings each, frozen per day for the charts).  Prints p50/p95/max latency and the
request rate.  Target: p95 <= 150 ms.

Each simulated user logs in as its own tenant (its own session) and loads its own meter's
page again and again, starting at a random moment, with a think time between two loads
drawn at random around ``--think`` seconds (exponential: a tenant reading the page on a
phone, the users out of step with each other); then once more with no pause at all (a
closed loop: the worst case, every user hammering the server).

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_portal_meter_page.py'
The benchmark database (``prepaid_bench_portal``) is created on first use and kept; the
bench tenants, their meters and readings are made once.  Odoo is started on ``--port`` with
``--workers`` worker processes for the run and stopped afterwards.
"""

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import requests
from odoo_bench import ROOT, addons_path, open_registry

from odoo import api

PASSWORD = "bench_tenant_pw"
YEAR_START = datetime(2025, 1, 1)
READINGS = 365 * 48  # one year of 30-minute readings


def login_of(number):
    return f"bench_tenant_{number}"


def ensure_tenant(env, number):
    """Bench tenant ``number``: its user, its meter with a year of readings (its own daily
    profile), its account; made once.  Returns the meter."""
    name = f"Bench portal meter {number}"
    meter = env["prepaid.meter"].search([("name", "=", name)], limit=1)
    if meter and meter.reading_count >= READINGS:
        return meter
    site = env["prepaid.site"].search([("code", "=", "BPS")], limit=1) or env[
        "prepaid.site"
    ].create({"name": "Bench portal site", "code": "BPS"})
    building = env["prepaid.building"].create({"name": f"Bench {number}", "site_id": site.id})
    unit = env["prepaid.unit"].create({"name": f"BP-{number}", "building_id": building.id})
    meter = env["prepaid.meter"].create(
        {
            "name": name,
            "model_id": env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
            "unit_id": unit.id,
        }
    )
    partner = env["res.partner"].create(
        {"name": f"Bench Tenant {number}", "email": f"bench{number}@example.com"}
    )
    tenancy = env["prepaid.tenancy"].create(
        {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2024-12-01"}
    )
    tenancy.action_open()
    tenancy.account_id._recharge("500", memo="bench")
    env["res.users"].with_context(no_reset_password=True).create(
        {
            "name": f"Bench Tenant {number}",
            "login": login_of(number),
            "password": PASSWORD,
            "partner_id": partner.id,
            "group_ids": [(6, 0, [env.ref("base.group_portal").id])],
        }
    )
    rows = year_of_readings(meter.id, random.Random(number))
    for start in range(0, len(rows), 5000):
        env["prepaid.meter.reading"]._ingest(rows[start : start + 5000])
    env.cr.commit()
    return meter


def year_of_readings(meter_id, rng):
    """A year of 30-minute readings: a base load and a day-time load of the tenant's own."""
    base, day, total, rows = rng.uniform(0.1, 0.5), rng.uniform(0.2, 1.2), 1000.0, []
    for step in range(READINGS):
        at = YEAR_START + timedelta(minutes=30 * step)
        total += base + (day if 8 <= at.hour <= 20 else 0.0)
        rows.append(
            {
                "meter_id": meter_id,
                "read_at": at,
                "forward_total": round(total, 2),
                "source": "poll",
            }
        )
    return rows


def start_server(db, port, workers):
    # the ``odoo`` launcher rather than ``-m odoo``: the prefork server re-executes
    # sys.argv[0] for its websocket process
    cmd = [
        shutil.which("odoo") or sys.executable,
        *(() if shutil.which("odoo") else ("-m", "odoo")),
        "-c",
        f"{ROOT}/odoo.conf",
        f"--addons-path={addons_path()}",
        f"--db_host={os.environ['PGHOST']}",
        f"--db_port={os.environ.get('PGPORT', '5432')}",
        "--db_user=odoo",
        "-d",
        db,
        f"--db-filter=^{db}$",
        f"--http-port={port}",
        f"--gevent-port={port + 1}",  # (the prefork server's websocket process)
        f"--workers={workers}",
        "--max-cron-threads=0",
        "--log-level=warn",
    ]
    server = subprocess.Popen(cmd, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _i in range(120):
        try:
            if requests.get(f"{url}/web/health", timeout=2).ok:
                return server, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    sys.exit("Odoo did not start")


def login(url, db, number):
    session = requests.Session()
    response = session.post(
        f"{url}/web/session/authenticate",
        json={
            "jsonrpc": "2.0",
            "params": {"db": db, "login": login_of(number), "password": PASSWORD},
        },
        timeout=30,
    )
    response.raise_for_status()
    assert response.json().get("result", {}).get("uid"), response.text[:300]
    return session


def user_loop(session, url, path, stop_at, think, rng, record):
    """One tenant: a random start, then its page again and again, a random think time
    (exponential, mean ``think``) between two loads; ``record(ok, seconds)`` each load."""
    if think:
        time.sleep(rng.uniform(0, think))
    while time.monotonic() < stop_at:
        began = time.perf_counter()
        try:
            response = session.get(f"{url}{path}", timeout=60)
            ok = response.status_code == 200 and path.marker in response.text
        except requests.RequestException:
            ok = False
        record(ok, time.perf_counter() - began)
        if think:
            time.sleep(rng.expovariate(1 / think))


class Page(str):
    """A page's path, with the text that shows it was rendered (not a login form)."""

    def __new__(cls, path, marker="o_prepaid"):
        page = super().__new__(cls, path)
        page.marker = marker
        return page


def run(url, db, pages, duration, think, label):
    """Every user (``pages``: ``{tenant number: Page}``) on its own page for ``duration``
    seconds; prints the latencies; returns the p95 in ms."""
    sessions = {number: login(url, db, number) for number in pages}
    for number in list(pages)[:2]:  # warm-up: asset bundles, caches
        for _i in range(3):
            sessions[number].get(f"{url}{pages[number]}", timeout=60).raise_for_status()
    latencies, errors = [], []
    lock = threading.Lock()

    def record(ok, seconds):
        with lock:
            (latencies if ok else errors).append(seconds)

    stop_at = time.monotonic() + duration
    threads = [
        threading.Thread(
            target=user_loop,
            args=(sessions[n], url, pages[n], stop_at, think, random.Random(n), record),
        )
        for n in pages
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"  {label:<22} think {think:>4.1f}s  requests {len(latencies):>5}  errors {len(errors):>3}"
        f"  {len(latencies) / wall:6.1f} req/s  p50 {p(0.50):6.1f} ms  p95 {p(0.95):6.1f} ms"
        f"  max {latencies[-1] * 1000:6.1f} ms  mean {statistics.mean(latencies) * 1000:6.1f} ms",
        flush=True,
    )
    return p(0.95)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="prepaid_bench_portal")
    parser.add_argument("--port", type=int, default=8074)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="N: Odoo's prefork server with N workers, as in production (one per core); "
        "0: the threaded server",
    )
    parser.add_argument("--users", type=int, default=20, help="tenants, each on their own meter")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=1.0)
    args = parser.parse_args()

    registry = open_registry(args.db, "prepaid_portal")
    with registry.cursor() as cr:
        env = api.Environment(cr, api.SUPERUSER_ID, {})
        started = time.perf_counter()
        daily = env["prepaid.meter.reading.daily"]
        meters = {n: ensure_tenant(env, n).id for n in range(1, args.users + 1)}
        if daily.search_count([("meter_id", "in", list(meters.values()))]) < 365 * len(meters):
            daily._freeze(YEAR_START)
        cr.commit()
        readings = env["prepaid.meter"].browse(list(meters.values())).mapped("reading_count")
        print(
            f"{len(meters)} tenants, each on their own meter: {min(readings):,}-"
            f"{max(readings):,} readings a meter (set-up {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    server, url = start_server(args.db, args.port, args.workers)
    try:
        load = os.getloadavg()
        print(
            f"{args.users} users, {args.duration:.0f} s per run, Odoo with {args.workers} "
            f"workers, {os.cpu_count()} CPUs, load before "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            flush=True,
        )
        meter_page = {n: Page(f"/my/meters/{m}") for n, m in meters.items()}
        history = {n: Page(f"/my/meters/{m}/history") for n, m in meters.items()}
        results = {
            "meter page": run(url, args.db, meter_page, args.duration, args.think, "meter page"),
            "history": run(url, args.db, history, args.duration, args.think, "history page"),
        }
        run(url, args.db, meter_page, args.duration, 0.0, "meter page")
        # reference: Odoo's own portal page (addresses form) under the same load
        account = {n: Page("/my/account", "o_portal") for n in meters}
        run(url, args.db, account, args.duration, args.think, "/my/account (Odoo)")
        load = os.getloadavg()
        print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        worst = max(results.values())
        verdict = "met" if worst <= 150 else "NOT met"
        print(
            f"target p95 <= 150 ms with think times around {args.think:.1f} s: {verdict} "
            f"({worst:.1f} ms)"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
