"""X1 under faults, at length: the demo's whole stack (Odoo with 2 workers) while workers,
PostgreSQL, Mosquitto and runners are killed or restarted and hostile messages arrive;
then the checks of ``scripts/site_chaos.py`` against the simulator's own record.  The
end-to-end test runs a short version of the same (``tests/e2e/test_site_chaos.py``).

    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/chaos_site.py --minutes 10'

Prints the faults made, the hostile messages sent and the counts of the checks; exits 1
when one fails.  Uses its own database (``--db``, created fresh with ``--fresh``) and ports.
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import demo_stack  # noqa: E402
import site_chaos  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="time under faults")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds before the faults")
    parser.add_argument("--db", default="prepaid_chaos")
    parser.add_argument("--fresh", action="store_true", help="build the database anew")
    parser.add_argument("--http-port", type=int, default=8189)
    parser.add_argument("--broker-port", type=int, default=18849)
    parser.add_argument("--sim-port", type=int, default=27200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-postgres-restart",
        action="store_true",
        help="for a PostgreSQL server that is not the project's own cluster",
    )
    args = parser.parse_args()
    local = ROOT / ".local" / "chaos"
    local.mkdir(parents=True, exist_ok=True)
    record = local / "record.jsonl"
    record.unlink(missing_ok=True)
    stack = demo_stack.Stack(
        db=args.db,
        http_port=args.http_port,
        broker_port=args.broker_port,
        sim_base_port=args.sim_port,
        local=local,
        fresh=args.fresh,
        workers=args.workers,
        record=record,
    )
    started = time.monotonic()

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # the site is stopped on the way out
    try:
        stack.start()
        print(f"site up in {time.monotonic() - started:.0f} s; warm-up {args.warm_up:.0f} s")
        time.sleep(args.warm_up)
        chaos, hostile, report = site_chaos.run_site(
            stack, args.minutes * 60, seed=args.seed, restart_pg=not args.no_postgres_restart
        )
    finally:
        stack.stop()
    print(f"faults: {dict(chaos.done)}; fault errors: {chaos.errors}")
    print(f"hostile messages: {dict(hostile.sent)}")
    print(report.summary())
    problems = report.problems(chaos.recharges)
    for problem in problems:
        print(f"FAILED: {problem}")
    print(f"{len(problems)} problems, {time.monotonic() - started:.0f} s in all")
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PGUSER", "odoo")
    sys.exit(main())
