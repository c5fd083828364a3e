"""G3 benchmark (a): polls of 32 RS-485 buses x 32 meters at 2400 baud.

The simulator's collector (``prepaid_core.simulator.collector``) serves 32 buses on 32 TCP
ports with the wire time emulated (11 bits a byte at 2400 baud, 20 ms turnaround, one
transaction at a time per bus); a ``prepaid.gateway`` of the benchmark database with the
same buses and 1,024 meters is polled with ``prepaid.gateway._poll()`` (buses in parallel
threads, meters of a bus in turn, then one ``_ingest`` of every reading).

Each poll's time is set against the wire time of its slowest bus (the floor: a bus cannot
be faster than its bytes), computed from DL/T645-2007 and not from the simulator: every
transaction the bus carried counted at the frame sizes the standard gives (a frame is
68H, the 6-byte address, 68H, C, L, L data bytes, CS, 16H: 12 + L bytes, after 4 FE
wake-up bytes; a read's request carries the 4-byte data identifier, its reply the
identifier and the item's data as the standard's data tables size it, an error reply one
error byte), 11 bits a character (8E1) at the bus's baud rate, plus the standard's
shortest turnaround before each reply (Td >= 20 ms).  The simulator's own sleeping time is
printed beside it.  Target: total <= 1.2 x slowest bus.

``--refuse-blocks`` chooses the meters: ``none`` (every meter answers its energy block:
one poll), ``half`` (every other meter of a bus answers "no data" to blocks, as many real
meters do: a first poll, where the block is tried then the single items, and a later one,
where the way that worked is remembered) or ``both`` (the default: all three polls).

    python3 benchmarks/bench_gateway_poll.py --db prepaid_bench [--base-port 7230]
"""

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass

from odoo_bench import load_note, open_registry

import odoo
from odoo import api

from prepaid_core.protocols import dlt645
from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter

NAME = "Bench Poll Collector"

# DL/T645-2007, independently of the codec and the simulator
#: bits a character on the wire: start, 8 data, even parity, stop (8E1)
BITS_PER_CHARACTER = 11
#: FE bytes sent before each frame to wake the receiver
WAKE_UP = 4
#: 68H, A0-A5, 68H, C, L, ..., CS, 16H: the bytes of a frame besides its L data bytes
FRAME_OVERHEAD = 12
#: the shortest time a meter waits before it answers (Td, 20 ms <= Td <= 500 ms)
TURNAROUND = 0.020
#: data bytes of the items a poll reads, after their 4-byte identifier (Appendix A)
READ_DATA_BYTES = {
    0x0000FF00: 20,  # combined active energy, total and tariffs 1-4: 5 x XXXXXX.XX
    0x0001FF00: 20,  # forward active energy block
    0x00000000: 4,  # combined active energy total, XXXXXX.XX
    0x00010000: 4,  # forward active energy total
    0x00020000: 4,  # reverse active energy total
    **{0x00000000 + (n << 8): 4 for n in range(1, 5)},  # combined, tariffs 1-4
    **{0x00010000 + (n << 8): 4 for n in range(1, 5)},  # forward, tariffs 1-4
    0x02030000: 3,  # instantaneous total active power, XX.XXXX
    0x00900200: 4,  # remaining amount, XXXXXX.XX
    0x00900201: 4,  # overdraft amount, XXXXXX.XX
    0x04000503: 2,  # meter running status word 3
    0x04000101: 4,  # date and week, YYMMDDWW
    0x04000102: 3,  # time, hhmmss
    0x05060001: 5,  # daily frozen time, YYMMDDhhmm
    0x05060101: 20,  # daily frozen forward active energy block
    **{0x04050100 + n: 4 for n in range(1, 5)},  # rates 1-4, XXXX.XXXX
}


def standard_seconds(n_bytes, baud):
    """Seconds ``n_bytes`` characters take on the wire at ``baud`` (8E1)."""
    return n_bytes * BITS_PER_CHARACTER / baud


def standard_transaction(frame, reply, baud):
    """Wire seconds of one transaction as DL/T645-2007 sizes it: the request (its L data
    bytes), and, when the meter answered, the turnaround and the reply (a read's item
    data, or one error byte)."""
    seconds = standard_seconds(WAKE_UP + FRAME_OVERHEAD + len(frame.data), baud)
    if not reply:
        return seconds
    answer = dlt645.parse_frame(reply)
    function = frame.control & 0x1F
    if answer.is_error:
        length = 1
    elif function == dlt645.Function.READ:
        di = int.from_bytes(frame.data[:4], "little")
        if di not in READ_DATA_BYTES:
            raise KeyError(f"no DL/T645-2007 data size in the benchmark for {di:08X}H")
        length = 4 + READ_DATA_BYTES[di]
    else:
        length = 0  # a command's acknowledgement carries no data
    return seconds + TURNAROUND + standard_seconds(WAKE_UP + FRAME_OVERHEAD + length, baud)


def address(bus, position):
    return f"88{bus:04d}{position:06d}"


@dataclass
class CountedBus(Bus):
    """A simulated bus that also adds up the wire time of its transactions as the standard
    sizes them (:func:`standard_transaction`)."""

    wire_seconds: float = 0.0

    async def transact(self, frame, request_length: int) -> bytes:
        reply = await super().transact(frame, request_length)
        self.wire_seconds += standard_transaction(frame, reply, self.baud)
        return reply


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buses", type=int, default=32)
    parser.add_argument("--meters", type=int, default=32, help="meters per bus")
    parser.add_argument("--baud", type=int, default=2400)
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument(
        "--base-port",
        type=int,
        default=0,
        help="the simulated buses listen on this port and the next ones (default: free ports)",
    )
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
            port=args.base_port + b - 1 if args.base_port else 0,
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
        f"  wire time of the slowest bus (DL/T645-2007): {slowest.wire_seconds:.2f} s "
        f"({slowest.transactions} transactions; the simulator slept {slowest.busy_seconds:.2f} s "
        "for them)"
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
