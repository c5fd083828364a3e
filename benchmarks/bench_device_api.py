"""G5 benchmark (c): batch ingest of readings through the device API over HTTP.

A real Odoo HTTP server (subprocess) on the benchmark database; a gateway with
``--meters`` meters; clients POST ``/meter_gateway/api/v1/push`` messages of
``--batch`` readings (API key, message ids) for two intervals (first: every reading is a
meter's baseline; second: every reading is charged).  The server validates each message
and stores it with ``prepaid.meter.reading._ingest``.  Prints readings/s over HTTP, end to
end (JSON, authentication, idempotency record, ingest, commit).  Target: >= 20,000/s.

    export PGHOST=... PGPORT=...
    python3 benchmarks/bench_device_api.py --db prepaid_bench --port 8075
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

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
    with http_server(args.db, args.port, args.workers) as url:
        clients = [
            DeviceApiClient(url, gateway_id, KEY, retries=3, timeout=600)
            for _ in range(args.clients)
        ]
        # warm-up: registry, routing map, first request of each worker
        for client in clients:
            client.post("commands/fetch", {"limit": 1})
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
    # the same kind of interval without HTTP: what the device API adds to the bulk path
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        cr.execute(
            "SELECT id FROM prepaid_meter WHERE gateway_id = %s ORDER BY id LIMIT %s",
            [gateway_id, args.meters],
        )
        ids = [row[0] for row in cr.fetchall()]
        read_at = t0 + timedelta(minutes=60)
        start = time.perf_counter()
        for i in range(0, len(ids), args.batch):
            rows = [
                {
                    "meter_id": mid,
                    "read_at": read_at,
                    "forward_total": f"{1002 + n % 7 / 10:.2f}",
                    "voltage": 221.5,
                    "power": 1.25,
                    "relay_state": "on",
                }
                for n, mid in enumerate(ids[i : i + args.batch], start=i)
            ]
            env["prepaid.meter.reading"]._ingest(rows, source="push")
            cr.commit()
        seconds = time.perf_counter() - start
        print(
            f"same interval straight into prepaid.meter.reading._ingest (no HTTP, one "
            f"process): {len(ids) / seconds:,.0f} readings/s",
            flush=True,
        )
    print(f"target >= 20,000 readings/s; {load_note()}")


if __name__ == "__main__":
    main()
