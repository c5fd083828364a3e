"""G2/G5 benchmark (b): 10,000 simulated 4G meters reporting every minute through Mosquitto
and the gateway runner into Odoo.

- a private Mosquitto (``prepaid_core.simulator.broker``);
- an Odoo HTTP server on the benchmark database with an MQTT gateway of 10,000 meters;
- the gateway runner (``prepaid_core.gateway_runner.mqtt``) in this process: persistent
  MQTT 5 session, QoS 1, batches posted to the device API, broker acknowledgements after
  the commit;
- 10,000 meters (``MqttFleet``, one MQTT client each) in a second process, each publishing
  one reading a minute of real time at its own phase.

The duration is scaled down (``--minutes``, default 3), not the meter count.  Prints the
sustained readings/s stored in Odoo and the lag of each reading from its timestamp on the
meter to its acknowledgement after the commit (p50, p95, max).  Target: p95 <= 5 s.

Every message is accounted for at the end: the fleet records each reading the broker
acknowledged (it stops publishing, then waits for what is in flight), and each must be in
the store once or in the rejected readings with a reason; messages by kind are printed
(published, acknowledged by the broker). Any reading missing fails the run (exit 1).

    python3 benchmarks/bench_mqtt_ingest.py --db prepaid_bench --port 8075
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odoo_bench import (
    bench_gateway,
    gateway_readings,
    http_server,
    load_note,
    open_registry,
    percentile,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
import site_chaos

import odoo
from odoo import api

from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings
from prepaid_core.simulator.broker import start_mosquitto

KEY = "bench-mqtt-ingest-key-0123456789"
PREFIX = "66"


def fleet_main(host, port, count, seconds, record_path):
    """Second process: ``count`` meters, one reading a minute each, for ``seconds``; each
    reading the broker acknowledged is written to ``record_path`` (JSON lines)."""
    from prepaid_core.simulator.cli import _recorder  # noqa: PLC0415
    from prepaid_core.simulator.clock import AcceleratedClock  # noqa: PLC0415
    from prepaid_core.simulator.meter import MeterConfig, VirtualMeter  # noqa: PLC0415
    from prepaid_core.simulator.mqtt_meter import MqttFleet  # noqa: PLC0415

    async def main(record):
        clock = AcceleratedClock()
        meters = [
            VirtualMeter(MeterConfig(f"{PREFIX}{n:010d}"), clock) for n in range(1, count + 1)
        ]
        fleet = MqttFleet(meters, host, port, clock, reading_interval=60, record=_recorder(record))
        started = time.monotonic()
        await fleet.start(timeout=300)
        await fleet.wait_connected(timeout=120)
        took = time.monotonic() - started
        print(f"fleet: {count:,} meters connected in {took:.1f} s", flush=True)
        await asyncio.sleep(seconds)
        stats = fleet.stats
        await fleet.stop()
        kinds = ", ".join(
            f"{kind} {published:,} / {acked:,}"
            for kind, (published, acked) in sorted(stats.by_kind.items())
        )
        print(
            f"fleet: published {stats.published:,}, acknowledged by the broker {stats.acked:,} "
            f"(by kind, published / acknowledged: {kinds}), not sent while disconnected "
            f"{stats.publish_errors}, late {stats.extra.get('late', 0)}",
            flush=True,
        )

    with open(record_path, "a", encoding="utf-8") as record:
        asyncio.run(main(record))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=3.0, help="reporting time measured")
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--port", type=int, default=8075)
    parser.add_argument("--fleet", nargs=5, metavar=("HOST", "PORT", "COUNT", "SECONDS", "RECORD"))
    args = parser.parse_args()
    if args.fleet:
        host, port, count, seconds, record_path = args.fleet
        fleet_main(host, int(port), int(count), float(seconds), record_path)
        return

    registry = open_registry(args.db, "meter_gateway")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = bench_gateway(env, "Bench 4G MQTT", "mqtt", args.meters, PREFIX, api_key=KEY)
        gateway_id = gateway.id
        before = gateway_readings(cr, gateway_id)
    workdir = tempfile.mkdtemp(prefix="bench-mqtt-ingest-")
    record = os.path.join(workdir, "acked.jsonl")
    broker = start_mosquitto(Path(workdir) / "mosquitto")
    try:
        with http_server(args.db, args.port, workers=0) as url:
            api_client = DeviceApiClient(url, gateway_id, KEY, timeout=300)
            runner = MqttRunner(
                api_client,
                MqttSettings(
                    broker.host,
                    broker.port,
                    client_id=f"bench-runner-{os.getpid()}",
                    batch_size=2000,
                    batch_wait=0.5,
                    command_interval=10,
                ),
                record_lags=True,
            ).start()
            # the fleet connects first (~10-20 s), then reports for the measured minutes
            seconds = args.minutes * 60
            fleet = subprocess.Popen(
                [
                    *(sys.executable, os.path.abspath(__file__), "--fleet"),
                    *(broker.host, str(broker.port), str(args.meters), str(seconds), record),
                ],
                env=dict(os.environ),
            )
            fleet.wait()
            # drain what is still on its way (every acknowledged reading reached the runner,
            # or nothing arrived for 10 s), then stop
            with open(record, encoding="utf-8") as lines:
                acked = sum(1 for line in lines if line.strip())
            deadline, quiet = time.monotonic() + 120, 0
            while time.monotonic() < deadline and quiet < 10:
                if runner.stats.readings + runner.stats.invalid >= acked:
                    break
                received = runner.stats.received
                time.sleep(1.0)
                quiet = quiet + 1 if runner.stats.received == received else 0
            runner.stop()
    finally:
        broker.stop()
    with registry.cursor() as cr:
        stored = gateway_readings(cr, gateway_id) - before
        counts = site_chaos.account_for_readings(cr, site_chaos.read_record(Path(record)))
    stats = runner.stats
    lags = stats.lags
    print(
        f"runner: {stats.readings:,} readings posted in {stats.batches:,} batches, "
        f"{stats.stored:,} stored by Odoo ({stored:,} new rows counted in the database), "
        f"{stats.rejected} rejected, {stats.invalid} invalid, {stats.api_failures} API failures"
    )
    print(
        f"sustained: {stored / seconds:,.0f} readings/s over {args.minutes:g} min "
        f"({args.meters:,} meters x 1 reading/min = {args.meters / 60:,.0f} readings/s offered)"
    )
    print(
        f"lag from the meter's timestamp to the broker ack after the commit: "
        f"p50 {percentile(lags, 0.5):.2f} s, p95 {percentile(lags, 0.95):.2f} s, "
        f"max {max(lags, default=float('nan')):.2f} s (target p95 <= 5 s)"
    )
    print(
        f"accounted: {counts['acknowledged']:,} readings acknowledged by the broker: "
        f"{counts['stored']:,} stored once, {counts['rejected']:,} rejected with a reason "
        f"(rejected readings, dead letters), {counts['stored_twice']:,} stored twice, "
        f"{counts['missing']:,} missing; {stored - counts['stored']:,} stored rows not "
        f"acknowledged to the meter; the runner's dead letters: {stats.dead_letters}"
    )
    print(load_note())
    if counts["missing"] or counts["stored_twice"]:
        print("FAILED: every acknowledged reading must be stored once or rejected")
        sys.exit(1)


if __name__ == "__main__":
    main()
