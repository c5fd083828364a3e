"""Benchmark: 10,000 4G MQTT meters in one simulator process (G7, X2). Not a test.

Starts its own Mosquitto on a free loopback port, a subscriber in a second process that
counts the readings reaching the broker's subscribers, and one simulator process (this
one) with N ``MqttMeter`` (one MQTT connection each, one asyncio loop). Every meter
publishes a reading every simulated minute; the accelerated clock makes a minute last
``60 / speed`` real seconds. Prints connection time, how many meters are connected, and
the sustained message rates (published by the fleet, acknowledged by the broker, received
by the subscriber) over the measurement window. Bounded in time (< 3 minutes).

Measured on the 2-core development machine (broker and subscriber on the same cores):
10,000 meters connected in 5-18 s, 150-215 MB RSS (15-20 KB a meter); one reading per meter
every 6 s (1,667 msg/s) sustained with QoS 1; the ceiling is about 3,200 msg/s, MQTT 5 and
3.1.1 alike. One reading a minute per meter, as in the field, is 167 msg/s for 10,000.

    python benchmarks/bench_mqtt_fleet.py                      # 10,000 meters, speed 10
    python benchmarks/bench_mqtt_fleet.py --meters 2000 --speed 60 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prepaid_core.protocols import mqtt_schema as schema
from prepaid_core.simulator.broker import start_mosquitto
from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleet


def subscriber(host: str, port: int, ready, counts, stop) -> None:
    """Count readings per kind in a separate process (QoS 0 subscription: a counter)."""
    received = {"reading": 0, "status": 0, "other": 0}

    def on_message(client, userdata, message):
        kind = message.topic.rsplit("/", 1)[-1]
        received[kind if kind in received else "other"] += 1

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
    client.on_message = on_message
    client.connect(host, port)
    client.subscribe(f"{schema.TOPIC_PREFIX}/+/reading", qos=0)
    client.subscribe(f"{schema.TOPIC_PREFIX}/+/status", qos=0)
    client.loop(timeout=1.0)
    ready.set()
    while not stop.is_set():
        client.loop(timeout=0.1)
        counts["reading"] = received["reading"]
        counts["status"] = received["status"]
    client.disconnect()


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


async def run(args, broker, counts) -> dict:
    clock = AcceleratedClock(speed=args.speed)
    meters = [
        VirtualMeter(
            MeterConfig(
                f"{900000000000 + n:012d}",
                profile=LoadProfile(seed=n),
                balance=Decimal(10**6),
            ),
            clock,
        )
        for n in range(args.meters)
    ]
    fleet = MqttFleet(
        meters,
        broker.host,
        broker.port,
        clock,
        reading_interval=60,
        connect_concurrency=args.concurrency,
        mqtt_version=args.mqtt_version,
    )
    started = time.monotonic()
    await fleet.start(timeout=120)
    await fleet.wait_connected(timeout=60)
    connect_seconds = time.monotonic() - started
    connected = fleet.stats.connected
    print(f"connected {connected}/{args.meters} meters in {connect_seconds:.1f} s", flush=True)
    await asyncio.sleep(min(5.0, 60 / args.speed))  # warm-up: one reading cycle at most
    s0 = (time.monotonic(), fleet.stats.published, fleet.stats.acked, counts["reading"])
    lag_max = 0.0
    samples = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        tick = time.monotonic()
        await asyncio.sleep(1.0)
        lag_max = max(lag_max, time.monotonic() - tick - 1.0)
        samples.append(fleet.stats.published)
    s1 = (time.monotonic(), fleet.stats.published, fleet.stats.acked, counts["reading"])
    elapsed = s1[0] - s0[0]
    result = {
        "connected": connected,
        "still_connected": fleet.stats.connected,
        "connect_seconds": connect_seconds,
        "elapsed": elapsed,
        "published_rate": (s1[1] - s0[1]) / elapsed,
        "acked_rate": (s1[2] - s0[2]) / elapsed,
        "received_rate": (s1[3] - s0[3]) / elapsed,
        "loop_lag_max": lag_max,
        "publish_errors": fleet.stats.publish_errors,
        "disconnects": fleet.stats.disconnects,
        "cycles": fleet.stats.extra.get("cycles", 0),
        "late": fleet.stats.extra.get("late", 0),
        "window": (s0, s1),
    }
    await fleet.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=10.0, help="simulated seconds per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument(
        "--mqtt-version", type=int, choices=(4, 5), default=5, help="5 or 4 (3.1.1)"
    )
    parser.add_argument("--concurrency", type=int, default=200, help="CONNECTs in flight")
    args = parser.parse_args()
    raise_fd_limit(args.meters + 1000)

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        broker = start_mosquitto(Path(tmp), persistence=False)
        manager = multiprocessing.Manager()
        counts = manager.dict(reading=0, status=0)
        ready, stop = multiprocessing.Event(), multiprocessing.Event()
        sub = multiprocessing.Process(
            target=subscriber, args=(broker.host, broker.port, ready, counts, stop)
        )
        sub.start()
        ready.wait(10)
        try:
            t0 = time.monotonic()
            before = counts["reading"]
            result = asyncio.run(run(args, broker, counts))
            received_total = counts["reading"] - before
        finally:
            stop.set()
            sub.join(10)
            broker.stop()
            manager.shutdown()
    total = time.monotonic() - t0
    expected = args.meters * args.speed / 60
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"MQTT version:            {'5' if args.mqtt_version == 5 else '3.1.1'}")
    print(
        f"meters:                  {args.meters} (speed {args.speed:g}: a reading every "
        f"{60 / args.speed:.1f} s real per meter)"
    )
    print(
        f"connected:               {result['connected']} "
        f"(all: {result['connected'] == args.meters}); still connected at the end: "
        f"{result['still_connected']}; disconnects: {result['disconnects']}"
    )
    print(f"connect time:            {result['connect_seconds']:.1f} s")
    print(f"offered load:            {expected:,.0f} readings/s")
    print(
        f"published (sustained):   {result['published_rate']:,.0f} msg/s "
        f"over {result['elapsed']:.0f} s"
    )
    print(f"PUBACKed by the broker:  {result['acked_rate']:,.0f} msg/s")
    print(
        f"received by subscriber:  {result['received_rate']:,.0f} readings/s in the window "
        f"({received_total:,} readings in the whole {total:.0f} s run)"
    )
    print(f"event-loop lag (max):    {result['loop_lag_max'] * 1000:.0f} ms")
    print(f"publish errors:          {result['publish_errors']}")
    print(f"readings > 1 interval late: {result['late']}")
    print(f"simulator peak RSS:      {rss_mb:,.0f} MB")
    return 0 if result["connected"] == args.meters else 1


if __name__ == "__main__":
    sys.exit(main())
