"""G3 benchmark (a): polls of 32 RS-485 buses x 32 meters at 2400 baud.

The simulator's collector (``prepaid_core.simulator.collector``) serves 32 buses on 32 TCP
ports with the wire time emulated (11 bits a byte at 2400 baud, 20 ms turnaround, one
transaction at a time per bus); a ``prepaid.gateway`` of the benchmark database with the
same buses and 1,024 meters is polled with ``prepaid.gateway._poll()`` (buses in parallel
threads, meters of a bus in turn, then one ``_ingest`` of every reading).

Each poll's time is set against the wire time of its slowest bus (the floor: a bus cannot
be faster than its bytes), computed from the bytes of every request and reply the bus
carried, plus the turnaround of each reply.  Target: total <= 1.2 x slowest bus.

``--refuse-blocks`` chooses the meters: ``none`` (every meter answers its energy block:
one poll), ``half`` (every other meter of a bus answers "no data" to blocks, as many real
meters do: a first poll, where the block is tried then the single items, and a later one,
where the way that worked is remembered) or ``both`` (the default: all three polls).

    python3 benchmarks/bench_gateway_poll.py --db prepaid_bench
"""

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass

from odoo_bench import load_note, open_registry

import odoo
from odoo import api

from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import Bus, Collector, wire_time
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter

NAME = "Bench Poll Collector"


def address(bus, position):
    return f"88{bus:04d}{position:06d}"


@dataclass
class CountedBus(Bus):
    """A simulated bus that also adds up the wire time of the bytes it carries."""

    wire_seconds: float = 0.0

    async def transact(self, frame, request_length: int) -> bytes:
        reply = await super().transact(frame, request_length)
        self.wire_seconds += wire_time(request_length, self.baud)
        if reply:
            self.wire_seconds += self.turnaround + wire_time(len(reply), self.baud)
        return reply


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buses", type=int, default=32)
    parser.add_argument("--meters", type=int, default=32, help="meters per bus")
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument(
        "--refuse-blocks",
        choices=("none", "half", "both"),
        default="both",
        help="meters that answer 'no data' to block reads: none, every other one, or a "
        "run of each (default)",
    )
    return parser.parse_args()


def simulated_buses(args):
    clock = AcceleratedClock()
    return [
        CountedBus.of_meters(
            [VirtualMeter(MeterConfig(address(b, m)), clock) for m in range(1, args.meters + 1)],
            "dlt645",
            baud=args.baud,
        )
        for b in range(1, args.buses + 1)
    ]


def benchmark_gateway(env, args):
    """The benchmark's collector with its buses and meters (created on first use)."""
    gateway = env["prepaid.gateway"].search([("name", "=", NAME)], limit=1)
    if gateway:
        return gateway
    print("creating the collector and its meters ...", flush=True)
    gateway = env["prepaid.gateway"].create(
        {"name": NAME, "gateway_type": "tcp_collector", "host": "127.0.0.1"}
    )
    model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
    for number in range(1, args.buses + 1):
        bus = env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": number, "baud_rate": str(args.baud)}
        )
        env["prepaid.meter"].create(
            [
                {
                    "name": f"poll-{address(number, m)}",
                    "address": address(number, m),
                    "model_id": model.id,
                    "gateway_id": gateway.id,
                    "bus_id": bus.id,
                    "state": "in_service",
                }
                for m in range(1, args.meters + 1)
            ]
        )
    return gateway


def set_refusals(buses, gateway, refusing):
    """Every other meter of each bus refuses blocks (or none does); every meter's way of
    reading is forgotten, as for meters polled for the first time."""
    for bus in buses:
        for position, responder in enumerate(bus.responders):
            responder.refuses_blocks = refusing and position % 2 == 1
    meters = gateway.env["prepaid.meter"].search([("gateway_id", "=", gateway.id)])
    meters.write({"dlt645_read_mode": False})
    gateway.env.cr.commit()


def timed_poll(gateway, buses, label):
    """One poll; prints its time against the wire time of the slowest bus."""
    for bus in buses:
        bus.busy_seconds = bus.wire_seconds = 0.0
        bus.transactions = 0
    start = time.perf_counter()
    report = gateway._poll()
    gateway.env.cr.commit()
    total = time.perf_counter() - start
    slowest = max(buses, key=lambda bus: bus.wire_seconds)
    threads = gateway.last_poll_seconds
    print(f"{label}: {gateway.last_poll_summary}")
    print(
        f"  wire time of the slowest bus: {slowest.wire_seconds:.2f} s "
        f"({slowest.transactions} transactions; {slowest.busy_seconds:.2f} s busy on the "
        "simulator)"
    )
    print(
        f"  bus threads: {threads:.2f} s = {threads / slowest.wire_seconds:.2f} x; total "
        f"(commands, threads, {report['stored']:,} readings stored, commit): {total:.2f} s "
        f"= {total / slowest.wire_seconds:.2f} x the slowest bus (target <= 1.2 x)",
        flush=True,
    )


def run_polls(gateway, buses, mode):
    if mode in ("none", "both"):
        set_refusals(buses, gateway, False)
        timed_poll(gateway, buses, "every meter reads blocks")
    if mode in ("half", "both"):
        set_refusals(buses, gateway, True)
        timed_poll(gateway, buses, "half refuse blocks, first poll (way not known)")
        timed_poll(gateway, buses, "half refuse blocks, later poll (way remembered)")


def main():
    args = parse_args()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(120)

    buses = simulated_buses(args)
    collector = Collector(buses, name="bench")
    run(collector.start())
    registry = open_registry(args.db, "meter_gateway")
    count = args.buses * args.meters
    print(f"{args.buses} buses x {args.meters} meters ({count:,}) at {args.baud} baud")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = benchmark_gateway(env, args)
        gateway.write({"poll_timeout": 2.0, "poll_retries": 1, "poll_lease_until": False})
        for bus, sim_bus in zip(gateway.bus_ids.sorted("number"), buses, strict=True):
            bus.port = sim_bus.port
        cr.commit()
        run_polls(gateway, buses, args.refuse_blocks)
    run(collector.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    print(load_note())


if __name__ == "__main__":
    main()
