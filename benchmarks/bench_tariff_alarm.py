"""Benchmark of the pure tariff engine (B1/B3) and alarm state machine (B8).

Prices N intervals on an 8-step ladder x 4-band time-of-use tariff the way the billing
scheduled action does (``prepaid.account._deduct_batch``): many meters, one state per meter,
and each run of the action pricing the new readings of every meter with one
``CompiledTariff.price_run`` call per meter (measure ``price_run``). Then runs the alarm
state machine as often. Prints intervals/s and evaluations/s (wall clock and CPU time of
this process, so that a busy machine can be told apart from a slow engine).

    python benchmarks/bench_tariff_alarm.py [--intervals N] [--meters M] [--budget S]
                                            [--shapes 30x1,1x15] [--scenarios ...]

Shapes, ``<minutes between readings>x<new readings per meter in one run of the action>``
(the action runs every 15 minutes):
  30x1   collectors polled every 30 minutes (the default): one new reading per meter
  1x15   readings every minute (4G meters, or collectors polled every minute): 15 per meter
  30x48  a day of readings at once (after an outage of the gateway or of the server)
For comparison in the same run, on the first shape, ``price_interval`` one interval per
call (how the action priced before ``price_run``). The ways measured are alternated run by
run of the action, each on meters of its own, so that they share the conditions of a
shared machine.

(Pricing all the meters of a run in one call was measured against this and dropped:
commit a8e51ae has it as measure ``price_runs``; see docs/tariff_engine.md.)

Each shape stops early (and says so) once it has run ``--budget`` seconds of wall clock per
way measured (default 20), so that the whole run stays within a few minutes even on a
loaded machine; the rates are then those of the intervals actually priced. The run ends
with one line per measure, ``<measure>: <N> per s (wall), <M> per s (CPU)``.

Scenarios:
  registers  TOU register deltas as meters report them: the band(s) in force get the
             consumption, the other registers are 0 (an interval across a period change
             has two bands)
  total      a total only, split over the time-of-use periods by time
  worst      all four registers non-zero in every interval
Not a test; exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time as clock
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prepaid_core import alarm, tariff

BANDS = (tariff.SHARP, tariff.PEAK, tariff.FLAT, tariff.VALLEY)
START = datetime(2026, 3, 1)
STEP = timedelta(minutes=30)
WAYS = ("price_run",)  # the action's way
INF = float("inf")


def build_tariff() -> tariff.CompiledTariff:
    segments = [
        tariff.TouSegment(time(23), time(7), tariff.VALLEY),
        tariff.TouSegment(time(7), time(10), tariff.FLAT),
        tariff.TouSegment(time(10), time(11, 30), tariff.PEAK),
        tariff.TouSegment(time(11, 30), time(13), tariff.SHARP),
        tariff.TouSegment(time(13), time(18, 15), tariff.FLAT),
        tariff.TouSegment(time(18, 15), time(21), tariff.PEAK),
        tariff.TouSegment(time(21), time(23), tariff.FLAT),
    ]
    base = {tariff.SHARP: "1.1", tariff.PEAK: "0.9", tariff.FLAT: "0.6", tariff.VALLEY: "0.3"}
    prices = {
        band: tuple(Decimal(price) + Decimal("0.0537") * step for step in range(8))
        for band, price in base.items()
    }
    limits = tuple(Decimal(v) for v in ("50", "100", "150", "200", "260", "330", "420"))
    version = tariff.TariffVersion(
        date(2026, 1, 1), prices, step_limits=limits, tou=tariff.TouSchedule.daily(segments)
    )
    return tariff.Tariff("Benchmark 8 steps x 4 bands", (version,)).compile()


def workload(compiled, rounds, scenario, minutes=30):
    """Per round: (start, end, [inputs for meters, cycled])."""
    per_30_min = (53, 91, 120, 177, 240, 305, 388, 412)  # Wh
    pool = [Decimal(max(1, n * minutes // 30)).scaleb(-3) for n in per_30_min]
    step = timedelta(minutes=minutes)
    out = []
    for r in range(rounds):
        start = START + step * r
        end = start + step
        if scenario == "total":
            inputs = pool
        elif scenario == "worst":
            inputs = [dict(zip(BANDS, pool[i : i + 4], strict=True)) for i in range(4)]
        else:
            first, last = compiled.band_at(start), compiled.band_at(end - timedelta(seconds=1))
            inputs = []
            for q in pool:
                registers = dict.fromkeys(BANDS, Decimal("0.000"))
                if first == last:
                    registers[first] = q
                else:  # a period change inside the interval: the consumption is shared
                    registers[first] = q / 2
                    registers[last] = q - q / 2
                inputs.append(registers)
        out.append((start, end, inputs))
    return out


def timed(function):
    wall, cpu = clock.perf_counter(), clock.process_time()
    result = function()
    return result, clock.perf_counter() - wall, clock.process_time() - cpu


def bench_pricing(compiled, meters, rounds, scenario, shape=(30, 1), ways=WAYS, budget=INF):
    """Price the workload of ``shape`` (minutes between readings, readings per meter and
    run of the action) each of the ``ways``, alternating them run by run of the action so
    that they share the machine's conditions (each way has its own meters' states); per
    way ``(intervals, wall s, CPU s, charged)``, and whether the budget cut the measure."""
    minutes, run = shape
    work = workload(compiled, rounds, scenario, minutes)
    groups = [work[i : i + run] for i in range(0, len(work), run)]
    price_interval = compiled.price_interval
    price_run = compiled.price_run

    def by_price_run(states, group):
        """As the action: every meter's new readings, one price_run call per meter."""
        size = len(group[0][2])
        runs = [[(start, end, inputs[k]) for start, end, inputs in group] for k in range(size)]
        charged = Decimal(0)
        for m in range(meters):
            result = price_run(states[m], runs[m % size])
            states[m] = result.state
            charged += result.amount
        return charged

    def by_price_interval(states, group):
        """One price_interval call per interval (before price_run)."""
        charged = Decimal(0)
        for start, end, inputs in group:
            size = len(inputs)
            for m in range(meters):
                result = price_interval(states[m], start, end, inputs[m % size])
                states[m] = result.state
                charged += result.amount
        return charged

    functions = {
        "price_run": by_price_run,
        "price_interval": by_price_interval,
    }
    states = {way: [None] * meters for way in ways}
    totals = {way: [0.0, 0.0, Decimal(0)] for way in ways}  # wall, CPU, charged
    done = 0
    deadline = clock.perf_counter() + budget * len(ways)
    for group in groups:
        for way in ways:
            wall, cpu = clock.perf_counter(), clock.process_time()
            charged = functions[way](states[way], group)
            total = totals[way]
            total[0] += clock.perf_counter() - wall
            total[1] += clock.process_time() - cpu
            total[2] += charged
        done += len(group)
        if clock.perf_counter() > deadline:
            break
    return {way: (meters * done, *totals[way]) for way in ways}, done < rounds


def bench_alarm(meters, rounds, budget=INF):
    settings = alarm.AlarmSettings(Decimal("20"), Decimal("10"), overdraft_limit=Decimal("5"))
    states = [None] * meters
    balances = [Decimal(30 + m % 17) for m in range(meters)]
    usage = Decimal("0.4137")
    evaluate = alarm.evaluate
    inputs_type = alarm.AlarmInputs
    done = 0

    def run():
        nonlocal done
        notices = 0
        deadline = clock.perf_counter() + budget
        for r in range(rounds):
            now = START + STEP * r
            for m in range(meters):
                balance = balances[m] - usage
                recharge = None
                if balance < -5:  # the tenant recharges once cut
                    balance += 50
                    recharge = now
                balances[m] = balance
                states[m], decision = evaluate(
                    states[m], inputs_type(balance, settings, last_recharge_at=recharge), now
                )
                notices += len(decision.notices)
            done += 1
            if clock.perf_counter() > deadline:
                break
        return notices

    notices, wall, cpu = timed(run)
    return meters * done, wall, cpu, notices, done < rounds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=1_000_000)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--scenarios", default="registers,total,worst")
    parser.add_argument(
        "--shapes",
        default="30x1,1x15,30x48",
        help="<minutes between readings>x<readings per meter and call>, comma-separated",
    )
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds of wall clock per measure at most"
    )
    args = parser.parse_args(argv)
    meters = max(1, min(args.meters, args.intervals))
    rounds = max(1, args.intervals // meters)
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes.split(",")]
    compiled = build_tariff()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), load {_load()}")
    print(f"{meters} meters x {rounds} readings; 8-step ladder x 4-band TOU tariff")
    summary = []
    for scenario in args.scenarios.split(","):
        for index, (minutes, run) in enumerate(shapes):
            # price_interval (one interval per call) for comparison on the first shape only
            ways = (*WAYS, "price_interval") if index == 0 and run == 1 else WAYS
            measures, cut = bench_pricing(
                compiled, meters, rounds, scenario, (minutes, run), ways, args.budget
            )
            for way, (count, wall, cpu, charged) in measures.items():
                measure = f"{way} {scenario} {minutes}x{run}"
                print(
                    f"{measure:30s} {count:>9,d} intervals in {wall:6.2f} s: "
                    f"{count / wall:>9,.0f} intervals/s wall, {count / cpu:>9,.0f}/s CPU "
                    f"(charged {charged}{_stopped(cut, args.budget)})"
                )
                summary.append((measure, count, wall, cpu))
    count, wall, cpu, notices, cut = bench_alarm(meters, rounds, args.budget)
    print(
        f"{'alarm.evaluate':30s} {count:>9,d} evaluations in {wall:6.2f} s: "
        f"{count / wall:>9,.0f} evaluations/s wall, {count / cpu:>9,.0f}/s CPU "
        f"({notices} notices{_stopped(cut, args.budget)})"
    )
    summary.append(("alarm.evaluate", count, wall, cpu))
    print(f"load at the end {_load()}")
    for measure, count, wall, cpu in summary:
        print(f"{measure}: {count / wall:.0f} per s (wall), {count / cpu:.0f} per s (CPU)")
    return 0


def _load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _stopped(cut: bool, budget: float) -> str:
    return f"; stopped at the {budget:g} s budget" if cut else ""


if __name__ == "__main__":
    sys.exit(main())
