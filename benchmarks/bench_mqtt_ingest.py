"""G2/G5 benchmark (b): the MQTT throughput of the chain, simulated 4G meters through
Mosquitto and the gateway runner into Odoo, found by raising the offered load step by step.

- a private Mosquitto (``prepaid_core.simulator.broker``) on ``--broker-port``;
- an Odoo HTTP server on the benchmark database with an MQTT gateway of 10,000 meters;
- the gateway runner (``prepaid_core.gateway_runner.mqtt``) in this process: persistent
  MQTT 5 session, QoS 1, batches posted to the device API, broker acknowledgements after
  the commit;
- the meters (``MqttFleet``, one MQTT client each) in a second process, each publishing one
  reading an interval at its own phase; one fleet process a step.

Each step offers a higher load (``--rates``, readings/s: the meters report every
``meters / rate`` seconds) for ``--minutes``, then waits until everything acknowledged has
reached the runner.  A step *holds* when the chain keeps up: readings stored at >= 95 % of
the rate the fleet really published, the lag of each reading (from its timestamp on the
meter to its acknowledgement after the commit) at p95 <= 5 s, and not growing (the second
half of the step's p50 no more than 1 s above the first half's).  The steps stop at the
first one that does not hold; the throughput is the highest rate that held, printed with
its p50/p95 lag.  A step whose load the fleet process could not publish (it ran late) says
so: the limit there is the load generator, not the chain.

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
from dataclasses import dataclass
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
#: lines the fleet process prints: reporting started; readings published and late
REPORTING, PUBLISHED = "fleet-reporting", "fleet-published"
#: a step holds with the lag at p95 within this, and its p50 growing by no more than
LAG_P95, LAG_GROWTH = 5.0, 1.0


@dataclass
class Step:
    """One offered load and what the chain did with it."""

    offered: float  # readings/s asked of the fleet
    published: int = 0  # readings the fleet published while reporting
    late: int = 0  # readings published more than an interval late (the fleet behind)
    stored: int = 0  # readings stored in Odoo from the step's start until drained
    seconds: float = 0.0  # reporting time
    drained: float = 0.0  # seconds after the reporting until everything reached Odoo
    lags: tuple = ()

    def lag(self, fraction, part=slice(None)):
        return percentile(self.lags[part], fraction)

    @property
    def holds(self):
        half = len(self.lags) // 2
        growing = self.lag(0.5, slice(half, None)) - self.lag(0.5, slice(None, half))
        return (
            bool(self.lags)
            and self.stored >= 0.95 * self.published
            and self.lag(0.95) <= LAG_P95
            and growing <= LAG_GROWTH
        )

    def line(self):
        seconds = self.seconds or float("nan")
        return (
            f"offered {self.offered:,.0f}/s: published {self.published / seconds:,.0f}/s "
            f"({self.late:,} late), stored {self.stored / seconds:,.0f}/s (the last "
            f"{self.drained:.1f} s after the fleet stopped); lag p50 "
            f"{self.lag(0.5):.2f} s, p95 {self.lag(0.95):.2f} s, max "
            f"{max(self.lags, default=float('nan')):.2f} s; "
            + ("holds" if self.holds else "does NOT hold")
        )


def fleet_main(host, port, count, seconds, interval, record_path):
    """Second process: ``count`` meters, one reading each ``interval`` seconds, for
    ``seconds`` after they are connected (``REPORTING`` is printed then); each reading the
    broker acknowledged is written to ``record_path`` (JSON lines)."""
    from prepaid_core.simulator.cli import _recorder  # noqa: PLC0415
    from prepaid_core.simulator.clock import AcceleratedClock  # noqa: PLC0415
    from prepaid_core.simulator.meter import MeterConfig, VirtualMeter  # noqa: PLC0415
    from prepaid_core.simulator.mqtt_meter import MqttFleet  # noqa: PLC0415

    async def main(record):
        clock = AcceleratedClock()
        meters = [
            VirtualMeter(MeterConfig(f"{PREFIX}{n:010d}"), clock) for n in range(1, count + 1)
        ]
        fleet = MqttFleet(
            meters, host, port, clock, reading_interval=interval, record=_recorder(record)
        )
        started = time.monotonic()
        await fleet.start(timeout=300)
        await fleet.wait_connected(timeout=120)
        took = time.monotonic() - started
        print(f"fleet: {count:,} meters connected in {took:.1f} s", flush=True)
        print(REPORTING, flush=True)
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
        print(
            f"{PUBLISHED} {stats.by_kind.get('reading', (0, 0))[0]} {stats.extra.get('late', 0)}",
            flush=True,
        )

    with open(record_path, "a", encoding="utf-8") as record:
        asyncio.run(main(record))


def stored_count(registry, gateway_id):
    with registry.cursor() as cr:
        return gateway_readings(cr, gateway_id)


def drain(runner, record):
    """Wait until every reading the broker acknowledged reached the runner (or nothing
    arrived for 10 s, at most 120 s)."""
    with open(record, encoding="utf-8") as lines:
        acked = sum(1 for line in lines if line.strip())
    deadline, quiet = time.monotonic() + 120, 0
    while time.monotonic() < deadline and quiet < 10:
        if runner.stats.readings + runner.stats.invalid >= acked:
            break
        received = runner.stats.received
        time.sleep(1.0)
        quiet = quiet + 1 if runner.stats.received == received else 0


def run_step(args, broker, runner, count_stored, record, rate):
    """One offered load: a fleet process reporting every ``meters / rate`` seconds for the
    step's minutes, then the drain; returns its :class:`Step`."""
    step, seconds = Step(rate), args.minutes * 60
    fleet = subprocess.Popen(
        [
            *(sys.executable, os.path.abspath(__file__), "--fleet"),
            *(broker.host, str(broker.port), str(args.meters), str(seconds)),
            *(str(args.meters / rate), record),
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
    )
    mark, before, began = 0, 0, time.monotonic()
    for line in fleet.stdout:
        if line.startswith(REPORTING):
            mark, before, began = len(runner.stats.lags), count_stored(), time.monotonic()
        elif line.startswith(PUBLISHED):
            step.published, step.late = (int(word) for word in line.split()[1:3])
        else:
            print(line, end="", flush=True)
    fleet.wait()
    drain(runner, record)
    step.seconds, step.drained = seconds, time.monotonic() - began - seconds
    step.stored = count_stored() - before
    step.lags = tuple(runner.stats.lags[mark:])
    print(f"  {step.line()}", flush=True)
    return step


def report(args, registry, runner, steps, record, stored):
    held = [step for step in steps if step.holds]
    with registry.cursor() as cr:
        counts = site_chaos.account_for_readings(cr, site_chaos.read_record(Path(record)))
    stats = runner.stats
    print(
        f"runner: {stats.readings:,} readings posted in {stats.batches:,} batches, "
        f"{stats.stored:,} stored by Odoo ({stored:,} new rows counted in the database), "
        f"{stats.rejected} rejected, {stats.invalid} invalid, {stats.api_failures} API failures"
    )
    if held:
        best = max(held, key=lambda step: step.offered)
        print(
            f"throughput: {best.stored / best.seconds:,.0f} readings/s held ({args.meters:,} "
            f"meters, offered {best.offered:,.0f}/s), lag p50 {best.lag(0.5):.2f} s, "
            f"p95 {best.lag(0.95):.2f} s (target p95 <= {LAG_P95:g} s)"
        )
    else:
        print("throughput: not found (the lowest offered load did not hold)")
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


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument(
        "--rates",
        default="167,333,667,1333,2667",
        help="offered loads of the steps, readings/s (comma-separated, rising)",
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="reporting time a step")
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--port", type=int, default=8075)
    parser.add_argument("--broker-port", type=int, help="Mosquitto's port (default: a free one)")
    parser.add_argument(
        "--fleet", nargs=6, metavar=("HOST", "PORT", "COUNT", "SECONDS", "INTERVAL", "RECORD")
    )
    return parser.parse_args()


def main():
    args = parse_args()
    if args.fleet:
        host, port, count, seconds, interval, record_path = args.fleet
        fleet_main(host, int(port), int(count), float(seconds), float(interval), record_path)
        return

    registry = open_registry(args.db, "meter_gateway")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = bench_gateway(env, "Bench 4G MQTT", "mqtt", args.meters, PREFIX, api_key=KEY)
        gateway_id = gateway.id
    before = stored_count(registry, gateway_id)
    workdir = tempfile.mkdtemp(prefix="bench-mqtt-ingest-")
    record = os.path.join(workdir, "acked.jsonl")
    broker = start_mosquitto(Path(workdir) / "mosquitto", args.broker_port)
    steps = []
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
            for rate in (float(rate) for rate in args.rates.split(",")):
                steps.append(
                    run_step(
                        args,
                        broker,
                        runner,
                        lambda: stored_count(registry, gateway_id),
                        record,
                        rate,
                    )
                )
                if not steps[-1].holds:
                    break
            runner.stop()
    finally:
        broker.stop()
    report(args, registry, runner, steps, record, stored_count(registry, gateway_id) - before)


if __name__ == "__main__":
    main()
