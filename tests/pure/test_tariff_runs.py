"""B3 deductions of many meters in one call: ``CompiledTariff.price_runs`` prices each
meter's new intervals exactly as ``price_run`` does, meter by meter.

``price_runs`` charges the common interval of each meter inline, with what it worked out
once for the meters read at the same times (version, window, time-of-use band), and sends any
other meter to what ``price_run`` does. For every meter the entry returned must be exactly
(``repr``) the run of ``price_run``, or the ``TariffError`` it raises (same type and
message), and an error of one meter must leave the others priced. These tests price random
fleets of random tariffs both ways: meters read at the same times and not, states in the
current cycle, the previous one (a rollover) or from JSON, ladder steps crossed, a version
change, runs of several readings, no reading, and bad readings.
"""

import decimal
import gc
import threading
from datetime import datetime, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st
from test_tariff_fast_paths import BANDS4, LADDER_TOU, MARCH, quantities, tariffs

from prepaid_core import tariff as t

MINUTE = timedelta(minutes=1)


def expected_runs(tariff, items, split_unpriced):
    """The reference: ``price_run`` per meter, or the error it raises."""
    out = []
    for state, intervals in items:
        try:
            out.append(tariff.price_run(state, intervals, split_unpriced=split_unpriced))
        except t.TariffError as error:
            out.append(error)
    return out


def describe(entry):
    if isinstance(entry, t.TariffError):
        return (type(entry).__name__, str(entry))
    return repr(entry)


def check(tariff, items, split_unpriced=True):
    before = repr(items)
    expected = expected_runs(tariff, items, split_unpriced)
    got = tariff.price_runs(items, split_unpriced=split_unpriced)
    assert isinstance(got, list) and len(got) == len(items)
    assert [describe(e) for e in got] == [describe(e) for e in expected]
    assert repr(items) == before  # the states given are untouched
    return got


def register_values(draw, bands=BANDS4):
    chosen = draw(st.lists(st.sampled_from(bands), min_size=0, max_size=2, unique=True))
    values = {b: draw(quantities) for b in chosen}
    for band in BANDS4:  # idle registers report 0
        values.setdefault(band, D("0.000"))
    return values


@st.composite
def fleets(draw):
    """(tariff, items): the meters of one run of the action. Most are read at the same
    times (one interval of 30 minutes, the polled collectors); some have several readings,
    none, an interval of their own, or a bad reading."""
    tariff = draw(tariffs())
    start = MARCH + draw(st.integers(0, 31 * 24 * 60 - 1)) * MINUTE
    end = start + draw(st.sampled_from([30, 30, 30, 15, 0, 60, 24 * 60])) * MINUTE
    items = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["shared"] * 6 + ["own", "several", "none", "bad"]))
        # the state: none, charged up to the interval's start (maybe from another cycle,
        # then rolled over by this interval), and maybe read back from JSON
        state = None
        if draw(st.integers(0, 5)):
            back = draw(st.sampled_from([0, 0, 0, 30, 3 * 24 * 60, 40 * 24 * 60]))
            since = start - back * MINUTE
            before = draw(st.integers(0, 60_000).map(lambda n: D(n).scaleb(-1)))
            cycle_start = tariff.new_state(since).cycle_start
            state = tariff.price_interval(None, cycle_start, since, before).state
            if draw(st.booleans()):
                state = t.CycleState.from_json(state.to_json())
        if kind == "shared":
            consumption = draw(quantities) if draw(st.booleans()) else register_values(draw)
            intervals = [(start, end, consumption)]
        elif kind == "own":
            own = start + draw(st.integers(-90, 90)) * MINUTE
            intervals = [(own, own + 30 * MINUTE, draw(quantities))]
        elif kind == "several":
            intervals, at = [], start
            for _ in range(draw(st.integers(2, 5))):
                q = draw(quantities) if draw(st.booleans()) else register_values(draw)
                intervals.append((at, at + 30 * MINUTE, q))
                at += 30 * MINUTE
        elif kind == "none":
            intervals = []
        else:  # a reading that price_run refuses, or a band that the tariff may not price
            bad = draw(
                st.sampled_from(
                    [
                        D("-1"),
                        {t.PEAK: D("-0.5")},
                        {"turbo": D(1)},
                        {t.DEEP_VALLEY: D("1.5")},
                        D("NaN"),
                        1.5,
                        {t.SHARP: D("0.001"), t.FLAT: D("0.002"), t.VALLEY: D("1")},
                    ]
                )
            )
            intervals = [(start, end, bad)]
            if state is not None and draw(st.booleans()):  # charged already (R11)
                intervals = [(start - 60 * MINUTE, end, D(1))]
        items.append((state, intervals))
    return tariff, items


# --- properties --- #


@settings(max_examples=300, deadline=None)
@given(fleets())
def test_each_meter_is_priced_as_price_run_prices_it(case):
    tariff, items = case
    check(tariff, items, split_unpriced=True)


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_without_split_unpriced_too(case):
    tariff, items = case
    check(tariff, items, split_unpriced=False)


@settings(max_examples=100, deadline=None)
@given(fleets(), st.randoms(use_true_random=False))
def test_the_order_of_the_meters_changes_nothing(case, random):
    """The work shared between meters depends on the meters before; the results do not."""
    tariff, items = case
    first = [describe(e) for e in tariff.price_runs(items, split_unpriced=True)]
    order = list(range(len(items)))
    random.shuffle(order)
    shuffled = tariff.price_runs([items[i] for i in order], split_unpriced=True)
    assert [describe(shuffled[order.index(i)]) for i in range(len(items))] == first


@settings(max_examples=100, deadline=None)
@given(fleets())
def test_successive_runs_of_the_action(case):
    """Three runs of the action, each pricing the next 30 minutes of every meter from the
    state the previous run gave (steps crossed, a cycle or version boundary on the way)."""
    tariff, items = case
    for _round in range(3):
        got = check(tariff, items)
        items = [
            (entry.state, _next(intervals)) if isinstance(entry, t.PricedRun) else (state, [])
            for entry, (state, intervals) in zip(got, items, strict=True)
        ]


def _next(intervals):
    """The same readings, moved on by what they span (30 minutes if nothing)."""
    if not intervals:
        return []
    shift = (intervals[-1][1] - intervals[0][0]) or 30 * MINUTE
    return [(s + shift, e + shift, q) for s, e, q in intervals]


# --- examples --- #


def test_an_error_of_one_meter_leaves_the_others_priced():
    start, end = datetime(2026, 3, 5, 8), datetime(2026, 3, 5, 8, 30)
    good = [(start, end, D("1.25"))]
    state = LADDER_TOU.price_run(None, [(datetime(2026, 3, 5, 7, 30), start, D(2))]).state
    items = [
        (state, good),
        (state, [(start, end, D("-1"))]),
        (state, [(start - 60 * MINUTE, end, D(1))]),  # overlaps what was charged (R11)
        (None, [(datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 30), D(1))]),  # no version
        (state, [(start, end, {t.SHARP: D(1)})]),  # a band that the tariff does not price
        (state, good),
    ]
    got = LADDER_TOU.price_runs(items)
    assert isinstance(got[1], t.NegativeConsumptionError)
    assert isinstance(got[2], t.AlreadyPricedError)
    assert isinstance(got[3], t.NoVersionError)
    assert isinstance(got[4], t.UnknownBandError)
    assert repr(got[0]) == repr(got[5]) == repr(LADDER_TOU.price_run(state, good))
    split = LADDER_TOU.price_runs(items[4:5], split_unpriced=True)[0]
    assert repr(split) == repr(LADDER_TOU.price_run(state, items[4][1], split_unpriced=True))


def test_a_wrong_argument_is_raised_and_no_error_is_swallowed():
    start, end = datetime(2026, 3, 5, 8), datetime(2026, 3, 5, 8, 30)
    try:
        LADDER_TOU.price_runs([(None, [(start, end)])])  # an interval without consumption
    except ValueError:
        pass
    else:
        raise AssertionError("a malformed interval must raise")
    assert gc.isenabled()  # the collector paused during the call is running again


def test_an_empty_fleet_and_iterators():
    assert LADDER_TOU.price_runs([]) == []
    start = datetime(2026, 3, 5, 8)
    intervals = [
        (start, start + 30 * MINUTE, D("0.5")),
        (start + 30 * MINUTE, start + 60 * MINUTE, D(1)),
    ]
    got = LADDER_TOU.price_runs(iter([(None, iter(intervals)), (None, iter(intervals[:1]))]))
    assert repr(got) == repr(
        [LADDER_TOU.price_run(None, intervals), LADDER_TOU.price_run(None, intervals[:1])]
    )


def test_the_garbage_collector_left_as_found():
    start = datetime(2026, 3, 5, 8)
    items = [(None, [(start, start + 30 * MINUTE, D("0.5"))])]
    gc.disable()
    try:
        LADDER_TOU.price_runs(items)
        assert not gc.isenabled()  # paused by the caller: still paused
    finally:
        gc.enable()
    LADDER_TOU.price_runs(items)
    assert gc.isenabled()


def test_inside_the_exact_context_and_in_threads():
    """Called where the exact decimal Context is already in use (the fallback that sets
    the decimal context), and from threads at once: the results of one thread alone."""
    fleet = []
    for i in range(60):
        start = MARCH + timedelta(hours=5 * i)
        fleet.append([(start, start + 30 * MINUTE, {t.PEAK: D("0.9") + i, t.VALLEY: D(0)})])
    items = [(None, intervals) for intervals in fleet]
    alone = [repr(run) for run in LADDER_TOU.price_runs(items)]
    inner = t._run_exact(LADDER_TOU.price_runs, items)
    assert [repr(run) for run in inner] == alone
    assert decimal.getcontext() is not t._EXACT

    def price(out):
        for _ in range(20):
            out.append([repr(run) for run in LADDER_TOU.price_runs(items)])

    outputs = [[] for _ in range(4)]
    threads = [threading.Thread(target=price, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(run == alone for out in outputs for run in out)
