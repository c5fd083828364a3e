"""G3 benchmark (a): one poll of 32 RS-485 buses x 32 meters at 2400 baud.

The simulator's collector (``prepaid_core.simulator.collector``) serves 32 buses on 32 TCP
ports with the wire time emulated (11 bits a byte at 2400 baud, 20 ms turnaround, one
transaction at a time per bus); a ``prepaid.gateway`` of the benchmark database with the
same buses and 1,024 meters is polled once with ``prepaid.gateway._poll()`` (buses in
parallel threads, meters of a bus in turn, then one ``_ingest`` of every reading).

Prints the poll time against the wire time of the slowest bus (the floor: a bus cannot
be faster than its bytes).  Target: total <= 1.2 x slowest bus.

    python3 benchmarks/bench_gateway_poll.py --db prepaid_bench
"""

import argparse
import asyncio
import threading
import time

from odoo_bench import load_note, open_registry

import odoo
from odoo import api

from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter

NAME = "Bench Poll Collector"


def address(bus, position):
    return f"88{bus:04d}{position:06d}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buses", type=int, default=32)
    parser.add_argument("--meters", type=int, default=32, help="meters per bus")
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--db", default="prepaid_bench")
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(120)

    clock = AcceleratedClock()
    buses = [
        Bus.of_meters(
            [VirtualMeter(MeterConfig(address(b, m)), clock) for m in range(1, args.meters + 1)],
            "dlt645",
            baud=args.baud,
        )
        for b in range(1, args.buses + 1)
    ]
    collector = Collector(buses, name="bench")
    run(collector.start())

    registry = open_registry(args.db, "meter_gateway")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        gateway = env["prepaid.gateway"].search([("name", "=", NAME)], limit=1)
        if not gateway:
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
        gateway.write({"poll_timeout": 2.0, "poll_retries": 1, "poll_lease_until": False})
        for bus, sim_bus in zip(gateway.bus_ids.sorted("number"), buses, strict=True):
            bus.port = sim_bus.port
        cr.commit()
        for sim_bus in buses:
            sim_bus.busy_seconds = 0.0
        start = time.perf_counter()
        report = gateway._poll()
        cr.commit()
        total = time.perf_counter() - start
        devices = gateway.last_poll_seconds
        slowest = max(sim_bus.busy_seconds for sim_bus in buses)
        answered = gateway.last_poll_summary
    run(collector.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    count = args.buses * args.meters
    print(f"{args.buses} buses x {args.meters} meters ({count:,}) at {args.baud} baud: {answered}")
    print(f"wire time of the slowest bus (emulated, busy on the simulator): {slowest:.2f} s")
    print(
        f"poll, bus threads (slowest bus as seen by the gateway): {devices:.2f} s = "
        f"{devices / slowest:.2f} x the slowest bus"
    )
    print(
        f"poll, total (commands, threads, {report['stored']:,} readings stored, commit): "
        f"{total:.2f} s = {total / slowest:.2f} x the slowest bus (target <= 1.2 x)"
    )
    print(load_note())


if __name__ == "__main__":
    main()
