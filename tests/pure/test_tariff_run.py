"""B3 deductions in runs: ``CompiledTariff.price_run`` prices a meter's intervals as
``price_interval`` does one after the other.

``price_run`` charges the common interval into a book of its own and sends any other to the
one-interval path with the state so far; the lines, amounts, closed cycles and the last state
must be exactly (``repr``) those of pricing the intervals one at a time, and an error in any
interval must price nothing. These tests price random runs of random tariffs both ways.
"""

import decimal
import threading
from datetime import datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tariff_fast_paths import BANDS4, LADDER_TOU, MARCH, quantities, tariffs

from prepaid_core import tariff as t
from prepaid_core.tariff.book import _EXACT, _run_exact

MINUTE = timedelta(minutes=1)


def one_by_one(tariff, state, intervals, split_unpriced=False):
    """The reference: ``price_interval`` per interval (and, with ``split_unpriced``, the
    registers' total split by time when the version does not price one of their bands)."""
    results = []
    for start, end, consumption in intervals:
        try:
            result = tariff.price_interval(state, start, end, consumption)
        except t.UnknownBandError:
            if not split_unpriced or isinstance(consumption, D):
                raise
            total = sum((v for v in consumption.values() if v), D(0))
            result = tariff.price_interval(state, start, end, total)
        results.append(result)
        state = result.state
    amount = sum((r.amount for r in results), t.ZERO_MONEY)
    return t.PricedRun(
        tuple(r.lines for r in results),
        tuple(r.amount for r in results),
        tuple(r.closed_cycles for r in results),
        amount,
        state,
    )


def registers(draw):
    chosen = draw(st.lists(st.sampled_from(BANDS4), min_size=0, max_size=3, unique=True))
    values = {b: draw(quantities) for b in chosen}
    for band in BANDS4:  # idle registers report 0
        values.setdefault(band, D("0.000"))
    return values


@st.composite
def runs(draw):
    """(tariff, state, intervals): one meter's readings, mostly back to back, across
    time-of-use periods, ladder steps, versions (March) and cycles (April)."""
    tariff = draw(tariffs())
    start = MARCH + draw(st.integers(0, 31 * 24 * 60 - 1)) * MINUTE
    state = None
    if draw(st.integers(0, 4)):
        before = draw(st.integers(0, 60_000).map(lambda n: D(n).scaleb(-1)))
        state = tariff.price_interval(None, tariff.new_state(start).cycle_start, start, before)
        state = state.state
    intervals = []
    for _ in range(draw(st.integers(0, 12))):
        gap = draw(st.sampled_from([0] * 12 + [1, 45, -1]))  # -1: overlaps the last one
        length = draw(st.sampled_from([0, 1, 15, 30, 30, 30, 30, 60, 90, 24 * 60, 26 * 60]))
        start = start + gap * MINUTE
        end = start + length * MINUTE
        kind = draw(st.integers(0, 2))
        consumption = draw(quantities) if kind == 0 else registers(draw)
        intervals.append((start, end, consumption))
        start = end
    return tariff, state, intervals


# --- properties --- #


def check(tariff, state, intervals, split_unpriced):
    before = repr(state)
    try:
        expected = one_by_one(tariff, state, intervals, split_unpriced)
    except t.TariffError as error:
        with pytest.raises(type(error)) as raised:
            tariff.price_run(state, intervals, split_unpriced=split_unpriced)
        assert str(raised.value) == str(error)
        assert repr(state) == before  # nothing priced, the state given untouched
        return
    run = tariff.price_run(state, intervals, split_unpriced=split_unpriced)
    assert [repr(r) for r in run.intervals()] == [repr(r) for r in expected.intervals()]
    assert repr(run.amount) == repr(expected.amount)
    assert repr(run.state) == repr(expected.state)
    assert repr(state) == before


@settings(max_examples=300, deadline=None)
@given(runs())
def test_a_run_is_priced_as_its_intervals_one_by_one(case):
    tariff, state, intervals = case
    check(tariff, state, intervals, split_unpriced=False)


@settings(max_examples=300, deadline=None)
@given(runs())
def test_unpriced_registers_are_split_by_time_as_one_by_one(case):
    tariff, state, intervals = case
    check(tariff, state, intervals, split_unpriced=True)


@settings(max_examples=100, deadline=None)
@given(runs(), st.integers(0, 11))
def test_a_run_cut_anywhere_gives_the_same_as_at_once(case, cut):
    """Two deduction runs (the readings of the first one charged before the others come)
    give what one run over all of them gives."""
    tariff, state, intervals = case
    try:
        whole = tariff.price_run(state, intervals, split_unpriced=True)
    except t.TariffError:
        return
    first = tariff.price_run(state, intervals[:cut], split_unpriced=True)
    second = tariff.price_run(first.state, intervals[cut:], split_unpriced=True)
    assert repr([*first.intervals(), *second.intervals()]) == repr([*whole.intervals()])
    assert repr(second.state if intervals[cut:] else first.state) == repr(whole.state)


# --- examples --- #


def intervals_from(start, count, consumption, minutes=30):
    return [
        (
            start + i * minutes * MINUTE,
            start + (i + 1) * minutes * MINUTE,
            consumption(i),
        )
        for i in range(count)
    ]


def test_two_meters_priced_in_turn_move_the_window_back_and_forth():
    march = intervals_from(datetime(2026, 3, 5, 8), 6, lambda i: D("0.5") * (i + 1))
    february = intervals_from(datetime(2026, 2, 5, 8), 6, lambda i: {t.PEAK: D("0.25")})
    states = {3: None, 2: None}
    for _round in range(3):
        for month, intervals in ((3, march), (2, february)):
            expected = one_by_one(LADDER_TOU, states[month], intervals)
            run = LADDER_TOU.price_run(states[month], intervals)
            assert repr(run) == repr(expected)
            states[month] = run.state
            shift = timedelta(hours=3)
            intervals[:] = [(s + shift, e + shift, q) for s, e, q in intervals]


def test_a_step_boundary_and_a_cycle_end_inside_a_run():
    start = datetime(2026, 3, 31, 20)
    intervals = intervals_from(start, 10, lambda i: D("30.5"))  # 100: the step limit
    run = LADDER_TOU.price_run(None, intervals)
    assert repr(run) == repr(one_by_one(LADDER_TOU, None, intervals))
    assert {line.step for lines in run.lines for line in lines} == {1, 2}
    closed = [c for cycles in run.closed_cycles for c in cycles]
    assert [c.cycle_start for c in closed] == [datetime(2026, 3, 1)]
    assert run.state.cycle_start == datetime(2026, 4, 1)
    assert run.amount == sum(run.amounts)


def test_an_empty_run_and_an_iterator_of_intervals():
    state = LADDER_TOU.new_state(MARCH)
    empty = LADDER_TOU.price_run(state, [])
    assert empty.lines == empty.amounts == empty.closed_cycles == ()
    assert empty.amount == t.ZERO_MONEY and empty.state is state
    intervals = intervals_from(MARCH, 5, lambda i: D("1.25"))
    assert repr(LADDER_TOU.price_run(state, iter(intervals))) == repr(
        LADDER_TOU.price_run(state, intervals)
    )


def test_an_error_in_a_run_prices_nothing():
    intervals = intervals_from(MARCH, 5, lambda i: D("1.25"))
    state = LADDER_TOU.price_run(None, intervals[:2]).state
    book = dict(state.lines)
    bad = [*intervals[2:4], (intervals[4][0], intervals[4][1], D("-1"))]
    with pytest.raises(t.NegativeConsumptionError):
        LADDER_TOU.price_run(state, bad)
    assert state.lines == book and state.priced_until == intervals[1][1]
    with pytest.raises(t.AlreadyPricedError):  # a reading charged twice, inside one run
        LADDER_TOU.price_run(state, [intervals[2], intervals[3], intervals[3]])
    with pytest.raises(t.UnknownBandError):
        LADDER_TOU.price_run(state, [intervals[2], (*intervals[3][:2], {t.SHARP: D(1)})])
    split = LADDER_TOU.price_run(
        state, [intervals[2], (*intervals[3][:2], {t.SHARP: D(1)})], split_unpriced=True
    )
    assert repr(split) == repr(
        one_by_one(LADDER_TOU, state, [intervals[2], (*intervals[3][:2], D(1))])
    )


def test_aware_times_and_a_run_inside_pricing():
    paris = t.Tariff("Paris", LADDER_TOU.tariff.versions, timezone="Europe/Paris").compile()
    utc = ZoneInfo("UTC")
    local = intervals_from(datetime(2026, 3, 2, 9, 15), 4, lambda i: D("0.75"))
    aware = [
        (s.replace(tzinfo=paris.zone).astimezone(utc), e.replace(tzinfo=paris.zone), q)
        for s, e, q in local
    ]
    assert repr(paris.price_run(None, aware)) == repr(paris.price_run(None, local))
    for intervals in (local, local[:1]):
        inner = _run_exact(paris.price_run, None, intervals)  # the exact Context is in use
        assert repr(inner) == repr(paris.price_run(None, intervals))
    assert decimal.getcontext() is not _EXACT


def test_threads_pricing_runs_at_once_get_the_results_of_one_thread():
    runs = [
        intervals_from(MARCH + timedelta(hours=7 * i), 12, lambda j: D("0.9") + j)
        for i in range(40)
    ]

    def price(out):
        state = None
        for intervals in runs:
            run = LADDER_TOU.price_run(state, intervals)
            state = run.state
            out.append(repr(run))

    alone = []
    price(alone)
    outputs = [[] for _ in range(4)]
    threads = [threading.Thread(target=price, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == alone for out in outputs)


def test_registers_of_several_bands_in_a_run():
    """Registers of several bands in one interval (a period change inside it, or a meter
    whose registers all move): one line per band, across the step boundary too."""
    registers = {t.VALLEY: D("1.250"), t.FLAT: D("2.5"), t.PEAK: D("0.125"), t.SHARP: D(0)}
    intervals = intervals_from(datetime(2026, 3, 9, 6), 40, lambda i: dict(registers))
    run = LADDER_TOU.price_run(None, intervals)
    assert repr(run) == repr(one_by_one(LADDER_TOU, None, intervals))
    assert all(len(lines) >= 3 for lines in run.lines)
    assert {line.step for lines in run.lines for line in lines} == {1, 2}
