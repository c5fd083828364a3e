"""G2 benchmark: DL/T645 encode and decode throughput (frames per second).

Run: ``python benchmarks/bench_dlt645.py [--seconds 1.0]``.  Not a test; target: decode
>= 100,000 frames/s on one core.  Prints one line per case.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal

from prepaid_core.protocols import dlt645

ADDRESS = "000000000001"
DI = 0x00010000


def _rate(fn, seconds: float) -> tuple[float, int]:
    """Calls of ``fn`` per second (fn returns how many frames it handled)."""
    frames = 0
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        frames += fn()
        calls += 1
        now = time.perf_counter()
        if now >= deadline and calls >= 3:
            return frames / (now - start), frames


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    args = parser.parse_args(argv)
    s = args.seconds

    reply = dlt645.build_read_reply(ADDRESS, DI, Decimal("123456.78"))
    reply_frame = dlt645.parse_frame(reply)
    batch = 1000
    addresses = [f"{i:012d}" for i in range(batch)]
    stream = b"".join(
        dlt645.build_read_reply(a, DI, Decimal(i), preamble=4) for i, a in enumerate(addresses)
    )
    chunks = [stream[i : i + 512] for i in range(0, len(stream), 512)]

    def encode_requests():
        for a in addresses:
            dlt645.read_request(a, DI)
        return batch

    def decode_replies():
        decode = dlt645.decode
        for _ in range(batch):
            decode(reply)
        return batch

    def decode_and_parse():
        decode, parse = dlt645.decode, dlt645.parse_read_reply
        for _ in range(batch):
            parse(decode(reply)[1])
        return batch

    def parse_values():
        parse = dlt645.parse_read_reply
        for _ in range(batch):
            parse(reply_frame)
        return batch

    def framer_stream():
        framer = dlt645.Framer()
        n = 0
        for chunk in chunks:
            n += len(framer.feed(chunk))
        assert n == batch, n
        return n

    cases = [
        ("read request encode", encode_requests),
        ("read reply decode (frame)", decode_replies),
        ("read reply decode + value", decode_and_parse),
        ("read reply value only", parse_values),
        ("Framer, 512-byte chunks", framer_stream),
    ]
    print(f"DL/T645 benchmark, {s:.1f} s per case")
    for name, fn in cases:
        rate, frames = _rate(fn, s)
        print(f"  {name:<28} {rate:>12,.0f} frames/s  ({frames:,} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
