"""G5 benchmark (c): batch ingest of readings through the device API over HTTP.

A real Odoo HTTP server (subprocess) on the benchmark database; a gateway with
``--meters`` meters; clients POST ``/meter_gateway/api/v1/push`` messages of
``--batch`` readings (API key, message ids) for two intervals (first: every reading is a
meter's baseline; second: every reading is charged).  The server validates each message
and stores it with ``prepaid.meter.reading._ingest``.  Prints readings/s over HTTP, end to
end (JSON, authentication, idempotency record, ingest, commit).  Target: >= 20,000/s.

Then, in this process without HTTP, the same kind of interval through the device API's
handler (``prepaid.gateway._api_push`` on the parsed message) and straight into
``_ingest``: the difference is what the device API adds besides HTTP; ``--profile``
prints the CPU-time profile (cProfile, process time) of the handler path.

    export PGHOST=... PGPORT=...
    python3 benchmarks/bench_device_api.py --db prepaid_bench --port 8075
"""

import argparse
import contextlib
import cProfile
import json
import pstats
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psutil
from odoo_bench import bench_gateway, http_server, load_note, open_registry

import odoo
from odoo import api

from prepaid_core.gateway_runner.api import DeviceApiClient, new_message_id

KEY = "bench-device-api-key-0123456789"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="Odoo HTTP workers (0: threaded)")
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--port", type=int, default=8075)
    parser.add_argument("--profile", action="store_true", help="cProfile the handler path")
    parser.add_argument("--no-http", action="store_true", help="only the in-process paths")
    args = parser.parse_args()

    registry = open_registry(args.db, "meter_gateway")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = bench_gateway(env, "Bench API", "mqtt", args.meters, "77", api_key=KEY)
        cr.execute(
            "DELETE FROM prepaid_meter_reading_store r USING prepaid_meter m "
            "WHERE m.id = r.meter_id AND m.gateway_id = %s",
            [gateway.id],
        )
        cr.execute(
            "UPDATE prepaid_meter_latest l SET baseline_total = NULL, baseline_at = NULL, "
            "last_reading_at = NULL, last_total = NULL "
            "FROM prepaid_meter m WHERE m.latest_id = l.id AND m.gateway_id = %s",
            [gateway.id],
        )
        cr.execute(
            "SELECT address FROM prepaid_meter WHERE gateway_id = %s ORDER BY id LIMIT %s",
            [gateway.id, args.meters],
        )
        addresses = [row[0] for row in cr.fetchall()]
        cr.commit()
        gateway_id = gateway.id
    t0 = datetime(2031, 1, 1) + timedelta(hours=int(time.time()) % 10_000)
    if not args.no_http:
        push_over_http(args, gateway_id, addresses, t0)
    in_process(registry, args, gateway_id, addresses, t0)
    print(f"target >= 20,000 readings/s; {load_note()}")


def push_over_http(args, gateway_id, addresses, t0):
    with http_server(args.db, args.port, args.workers) as url:
        clients = [
            DeviceApiClient(url, gateway_id, KEY, retries=3, timeout=600)
            for _ in range(args.clients)
        ]
        # warm-up: registry, routing map, first request of each worker (half a second of
        # its CPU): as many requests at once as there are workers, so each worker takes one
        warm = [
            DeviceApiClient(url, gateway_id, KEY, retries=3, timeout=600)
            for _ in range(max(args.workers, 1))
        ]
        for _round in range(2):
            with ThreadPoolExecutor(len(warm)) as pool:
                list(pool.map(lambda client: client.post("commands/fetch", {"limit": 1}), warm))
        settle()
        for label, minutes in (("first interval (baselines)", 0), ("second interval", 30)):
            read_at = (t0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
            batches = [
                [
                    {
                        "address": address,
                        "read_at": read_at,
                        "forward_total": f"{1000 + minutes / 30 * (1 + n % 7 / 10):.2f}",
                        "voltage": 221.5,
                        "power": 1.25,
                        "relay_state": "on",
                    }
                    for n, address in enumerate(addresses[i : i + args.batch], start=i)
                ]
                for i in range(0, len(addresses), args.batch)
            ]

            def send(index, batches=batches):
                client = clients[index % len(clients)]
                return client.push(batches[index], [], message_id=new_message_id("bench"))

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                answers = list(pool.map(send, range(len(batches))))
            seconds = time.perf_counter() - start
            stored = sum(a["stored"] for a in answers)
            rejected = sum(len(a["rejected"]) for a in answers)
            assert stored == len(addresses), (stored, rejected, answers[0]["rejected"][:3])
            print(
                f"{label}: {stored:,} readings in {len(batches)} messages of {args.batch:,} "
                f"in {seconds:.2f} s = {stored / seconds:,.0f} readings/s "
                f"({args.clients} clients, {args.workers} workers)",
                flush=True,
            )


def settle(timeout=60, quiet=0.05):
    """Wait until the server's processes are idle: its gevent process loads the registry
    for a few seconds of CPU after the workers answer; timed beside it, the pushes would
    share the machine with the server's start."""
    me = psutil.Process()

    def cpu():
        total = 0.0
        for process in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    deadline, last = time.monotonic() + timeout, cpu()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu()
        if now - last < quiet:
            return
        last = now


def in_process(registry, args, gateway_id, addresses, t0):
    """Two more intervals without HTTP: through the device API handler, then straight
    into ``_ingest`` (CPU seconds of this process beside wall seconds)."""
    runs = [
        ("through gateway._api_push (no HTTP)", 60, True, False),
        ("straight into prepaid.meter.reading._ingest (no HTTP)", 90, False, False),
    ]
    if args.profile:
        runs.append(("through gateway._api_push, profiled", 120, True, True))
    for label, minutes, via_api, profile in runs:
        with registry.cursor() as cr:
            env = api.Environment(cr, odoo.SUPERUSER_ID, {})
            gateway = env["prepaid.gateway"].browse(gateway_id)
            meter_ids = dict(gateway._api_meters_by_address(addresses))
            read_at = (t0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
            bodies = [
                json.dumps(
                    {
                        "readings": [
                            {
                                "address": address,
                                "read_at": read_at,
                                "forward_total": f"{1002 + minutes / 30 + n % 7 / 10:.2f}",
                                "voltage": 221.5,
                                "power": 1.25,
                                "relay_state": "on",
                            }
                            for n, address in enumerate(addresses[i : i + args.batch], start=i)
                        ]
                    }
                ).encode()
                for i in range(0, len(addresses), args.batch)
            ]
            profiler = cProfile.Profile(time.process_time) if profile else None
            start, cpu = time.perf_counter(), time.process_time()
            stored = 0
            for body in bodies:
                if profiler:
                    profiler.enable()
                payload = json.loads(body)
                if via_api:
                    stored += gateway._api_push(payload)["stored"]
                else:
                    rows = [
                        dict(row, meter_id=meter_ids[row.pop("address")], source="push")
                        for row in payload["readings"]
                    ]
                    stored += env["prepaid.meter.reading"]._ingest(rows, source="push")["stored"]
                if profiler:
                    profiler.disable()
                cr.commit()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert stored == len(addresses), stored
            print(
                f"{label}: {stored / seconds:,.0f} readings/s "
                f"({seconds:.2f} s wall, {cpu:.2f} s CPU of this process)",
                flush=True,
            )
            if profiler:
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(25)
                stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
