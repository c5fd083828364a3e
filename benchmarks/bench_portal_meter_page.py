"""T3/T5 benchmark: a tenant's meter page and its history page, for a meter with one year of
30-minute readings (17,520 readings, frozen per day for the charts), under 20 concurrent
users.  Prints p50/p95/max latency and the request rate.  Target: p95 <= 150 ms.

Each simulated user logs in (its own session), then loads the page again and again; with
``--think`` seconds between two loads (a tenant reading the page on a phone), and once more
with no pause at all (a closed loop: the worst case, every user hammering the server).

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_portal_meter_page.py'
The benchmark database (``prepaid_bench_portal``) is created on first use and kept; the
bench meter and its readings are made once.  Odoo is started on ``--port`` with ``--workers``
worker processes for the run and stopped afterwards.
"""

import argparse
import os
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

LOGIN, PASSWORD = "bench_tenant", "bench_tenant_pw"
YEAR_START = datetime(2025, 1, 1)
READINGS = 365 * 48  # one year of 30-minute readings


def ensure_meter(env):
    """The bench tenant, its meter with a year of readings, its account; made once."""
    meter = env["prepaid.meter"].search([("name", "=", "Bench portal meter")], limit=1)
    if meter and meter.reading_count >= READINGS:
        return meter
    site = env["prepaid.site"].create({"name": "Bench portal site", "code": "BPS"})
    building = env["prepaid.building"].create({"name": "Bench", "site_id": site.id})
    unit = env["prepaid.unit"].create({"name": "BP-1", "building_id": building.id})
    meter = env["prepaid.meter"].create(
        {
            "name": "Bench portal meter",
            "model_id": env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
            "unit_id": unit.id,
        }
    )
    partner = env["res.partner"].create({"name": "Bench Tenant", "email": "bench@example.com"})
    tenancy = env["prepaid.tenancy"].create(
        {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2024-12-01"}
    )
    tenancy.action_open()
    tenancy.account_id._recharge("500", memo="bench")
    env["res.users"].with_context(no_reset_password=True).create(
        {
            "name": "Bench Tenant",
            "login": LOGIN,
            "password": PASSWORD,
            "partner_id": partner.id,
            "group_ids": [(6, 0, [env.ref("base.group_portal").id])],
        }
    )
    total, rows = 1000.0, []
    for step in range(READINGS):
        at = YEAR_START + timedelta(minutes=30 * step)
        total += 0.4 + (0.6 if 8 <= at.hour <= 20 else 0.0)
        rows.append(
            {
                "meter_id": meter.id,
                "read_at": at,
                "forward_total": round(total, 2),
                "source": "poll",
            }
        )
    for start in range(0, len(rows), 5000):
        env["prepaid.meter.reading"]._ingest(rows[start : start + 5000])
    env["prepaid.meter.reading.daily"]._freeze(YEAR_START)
    return meter


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


def login(url, db):
    session = requests.Session()
    response = session.post(
        f"{url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": LOGIN, "password": PASSWORD}},
        timeout=30,
    )
    response.raise_for_status()
    assert response.json().get("result", {}).get("uid"), response.text[:300]
    return session


def run(url, db, path, users, duration, think, marker="o_prepaid"):
    sessions = [login(url, db) for _i in range(users)]
    for session in sessions[:2]:  # warm-up: asset bundles, caches
        for _i in range(3):
            session.get(f"{url}{path}", timeout=60).raise_for_status()
    latencies, errors = [], []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration

    def user(session):
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                response = session.get(f"{url}{path}", timeout=60)
                ok = response.status_code == 200 and marker in response.text
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - began
            with lock:
                (latencies if ok else errors).append(elapsed)
            if think:
                time.sleep(think)

    threads = [threading.Thread(target=user, args=(s,)) for s in sessions]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"  {path:<34} think {think:>4.1f}s  requests {len(latencies):>5}  errors {len(errors):>3}"
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
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--think", type=float, default=1.0)
    args = parser.parse_args()

    registry = open_registry(args.db, "prepaid_portal")
    with registry.cursor() as cr:
        env = api.Environment(cr, api.SUPERUSER_ID, {})
        started = time.perf_counter()
        meter = ensure_meter(env)
        cr.commit()
        print(
            f"meter {meter.id}: {meter.reading_count} readings, "
            f"{env['prepaid.meter.reading.daily'].search_count([('meter_id', '=', meter.id)])} "
            f"daily records (set-up {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        meter_id = meter.id
    server, url = start_server(args.db, args.port, args.workers)
    try:
        load = os.getloadavg()
        print(
            f"{args.users} users, {args.duration:.0f} s per run, Odoo with {args.workers} "
            f"workers, {os.cpu_count()} CPUs, load before "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            flush=True,
        )
        results = {}
        for path in (f"/my/meters/{meter_id}", f"/my/meters/{meter_id}/history"):
            results[path] = run(url, args.db, path, args.users, args.duration, args.think)
        for path in (f"/my/meters/{meter_id}",):
            run(url, args.db, path, args.users, args.duration, 0.0)
        # reference: Odoo's own portal page (addresses form) under the same load
        run(url, args.db, "/my/account", args.users, args.duration, args.think, "o_portal")
        load = os.getloadavg()
        print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        worst = max(results.values())
        verdict = "met" if worst <= 150 else "NOT met"
        print(
            f"target p95 <= 150 ms with {args.think:.1f} s think time: {verdict} ({worst:.1f} ms)"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
