"""STS token vending throughput against the project's own token format, same run.

Run: ``python benchmarks/bench_sts.py [--seconds 1.0]``.  Not a test; target: >= 2,000
STS credit tokens per second in one process, decoder key derived for each token (as
``issue_token`` derives the meter key for each).  Prints one line per case and the ratio.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from prepaid_core import sts
from prepaid_core.tokens import TokenKind, issue_keypad_token, issue_token

UTC = timezone.utc  # datetime.UTC is Python 3.11+

VENDING_KEY = bytes.fromhex("abababababababab")
OWN_KEY = bytes(range(32))
BATCH = 500
PANS = [f"600727{i:011d}" for i in range(BATCH)]
ADDRESSES = [f"{i:012d}" for i in range(BATCH)]
START = datetime(2024, 1, 1, tzinfo=UTC)


def _rate(fn, seconds: float) -> float:
    """Tokens per second of ``fn`` (which returns how many it issued)."""
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def sts_vend_deriving_key() -> int:
    for i, pan in enumerate(PANS):
        key = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, pan)
        sts.encode_credit(key, Decimal("12.5"), START + timedelta(minutes=i), 5)
    return BATCH


def sts_vend_cached_key() -> int:
    key = sts.decoder_key_dkga02(VENDING_KEY, "123456", "01", 1, PANS[0])
    for i in range(BATCH):
        sts.encode_credit(key, Decimal("12.5"), START + timedelta(minutes=i), 5)
    return BATCH


TOKENS = [
    sts.encode_credit(bytes(8), Decimal("12.5"), START + timedelta(minutes=i), 5)
    for i in range(BATCH)
]


def sts_decode() -> int:
    for token in TOKENS:
        sts.decode(token, bytes(8))
    return BATCH


def own_binary() -> int:
    for i, address in enumerate(ADDRESSES):
        issue_token(OWN_KEY, address, TokenKind.CREDIT, Decimal("12.5"), i + 1)
    return BATCH


def own_keypad() -> int:
    for i, address in enumerate(ADDRESSES):
        issue_keypad_token(OWN_KEY, address, TokenKind.CREDIT, Decimal("12.5"), i + 1)
    return BATCH


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    seconds = parser.parse_args(argv).seconds
    rates = {}
    for name, fn in (
        ("STS credit, DKGA02 key per token", sts_vend_deriving_key),
        ("STS credit, key cached", sts_vend_cached_key),
        ("STS decode", sts_decode),
        ("own format, binary (issue_token)", own_binary),
        ("own format, keypad (issue_keypad_token)", own_keypad),
    ):
        rates[name] = _rate(fn, seconds)
        print(f"{name:42s} {rates[name]:>10,.0f} tokens/s")
    sts_rate = rates["STS credit, DKGA02 key per token"]
    own_rate = rates["own format, binary (issue_token)"]
    print(f"ratio STS / own binary: {sts_rate / own_rate:.2f} (target STS >= 2,000/s)")
    return 0 if sts_rate >= 2000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
