"""B3 pricing paths: the common interval gives the general path's result.

``CompiledTariff.price_interval`` prices the common interval (one cycle, one version, one
band or registers of several bands, one ladder step) with ``charge_common`` and sends
anything else to ``_price_general``, which cuts the interval by time. Whichever way an
interval goes, the result must be the same: these tests price random intervals of random
tariffs both ways.
"""

import decimal
import itertools
import threading
from datetime import date, datetime, time, timedelta
from decimal import Decimal as D
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prepaid_core import tariff as t
from prepaid_core.tariff.book import _EXACT, _run_exact
from prepaid_core.tariff.quantities import apportion, exponent_of

MARCH = datetime(2026, 3, 1)
BANDS4 = (t.SHARP, t.PEAK, t.FLAT, t.VALLEY)


def general(tariff, state, start, end, consumption):
    """The general path, alone (what ``price_interval`` must agree with)."""
    if state is None:
        state = tariff.new_state(start)
    with decimal.localcontext(_EXACT):
        return tariff._price_general(state, start, end, consumption)


def same_lines(a, b):
    """Lines equal as a multiset (registers of several bands: the inline path keeps the
    registers' order, the general path the periods' order)."""
    return sorted(a.lines) == sorted(b.lines)


# --- strategies --- #

prices = st.integers(0, 300_000).map(lambda n: D(n).scaleb(-5))
quantities = st.one_of(
    st.integers(0, 40_000).map(lambda n: D(n).scaleb(-3)),  # meters' 3 decimals
    st.integers(0, 4_000_000).map(lambda n: D(n).scaleb(-6)),
    st.integers(0, 99).map(D),
    st.integers(0, 10**9).map(lambda n: D(n).scaleb(-9)),  # finer than the split unit
    st.integers(1, 9).map(lambda n: D(n).scaleb(1)),  # "2E+1"
)


@st.composite
def schedules(draw):
    """Daily periods on quarter hours, bands drawn (two neighbours may share a band)."""
    cuts = sorted(draw(st.sets(st.integers(1, 95), min_size=1, max_size=t.MAX_SEGMENTS - 1)))
    bounds = [0, *cuts, 96]
    segments = []
    for a, b in itertools.pairwise(bounds):
        band = draw(st.sampled_from(BANDS4))
        segments.append(t.TouSegment(time(a // 4, a % 4 * 15), time(b // 4 % 24, b % 4 * 15), band))
    return t.TouSchedule.daily(segments)


@st.composite
def tariffs(draw):
    steps = draw(st.integers(1, t.MAX_STEPS))
    limits = tuple(
        D(v).scaleb(-1)
        for v in sorted(draw(st.sets(st.integers(1, 600), min_size=steps - 1, max_size=steps - 1)))
    )
    versions = []
    starts = [date(2026, 1, 1)]
    if draw(st.booleans()):  # a second version from a day of March
        starts.append(date(2026, 3, draw(st.integers(2, 28))))
    for valid_from in starts:
        tou = draw(schedules()) if draw(st.integers(0, 4)) else None
        bands = sorted(tou.bands) if tou else [draw(st.sampled_from(BANDS4))]
        table = {b: tuple(draw(st.lists(prices, min_size=steps, max_size=steps))) for b in bands}
        versions.append(t.TariffVersion(valid_from, table, step_limits=limits, tou=tou))
    return t.Tariff("fast", tuple(versions)).compile()


@st.composite
def cases(draw, registers=False):
    """(tariff, state, start, end, consumption), the state charged up to ``start``."""
    tariff = draw(tariffs())
    minute = timedelta(minutes=1)
    start = MARCH + draw(st.integers(0, 31 * 24 * 60 - 1)) * minute
    length = draw(st.sampled_from([0, 1, 15, 30, 30, 30, 60, 90, 24 * 60, 26 * 60]))
    end = start + length * minute
    before = draw(st.integers(0, 60_000).map(lambda n: D(n).scaleb(-1)))
    state = None
    if draw(st.integers(0, 5)):
        cycle_start = tariff.new_state(start).cycle_start
        state = general(tariff, None, cycle_start, start, before).state
    if registers:
        chosen = draw(st.lists(st.sampled_from(BANDS4), min_size=1, max_size=4, unique=True))
        consumption = {b: draw(quantities) for b in chosen}
        for band in BANDS4:  # idle registers report 0
            consumption.setdefault(band, D("0.000"))
        if not all(
            b in v.prices or v.single_band or not q
            for v in tariff.versions
            for b, q in consumption.items()
        ):
            assume(False)  # (a band the tariff does not price: tested elsewhere)
    else:
        consumption = draw(quantities)
    return tariff, state, start, end, consumption


# --- properties --- #


@settings(max_examples=200, deadline=None)
@given(cases())
def test_a_total_is_priced_as_by_the_general_path(case):
    tariff, state, start, end, q = case
    fast = tariff.price_interval(state, start, end, q)
    slow = general(tariff, state, start, end, q)
    assert fast == slow
    if q and q.as_tuple().exponent <= 0:  # same digits too ("0.177", not "0.177000")
        assert repr(fast) == repr(slow)


@settings(max_examples=200, deadline=None)
@given(cases(registers=True))
def test_registers_are_priced_as_by_the_general_path(case):
    tariff, state, start, end, registers = case
    try:
        slow = general(tariff, state, start, end, registers)
    except t.UnknownBandError:
        with pytest.raises(t.UnknownBandError):
            tariff.price_interval(state, start, end, registers)
        return
    fast = tariff.price_interval(state, start, end, registers)
    assert same_lines(fast, slow)
    assert fast.amount == slow.amount and fast.state == slow.state
    assert fast.closed_cycles == slow.closed_cycles


@settings(max_examples=200, deadline=None)
@given(cases())
def test_a_reading_is_charged_once_on_every_path(case):
    tariff, state, start, end, q = case
    first = tariff.price_interval(state, start, end, q)
    if end > start:
        with pytest.raises(t.AlreadyPricedError):
            tariff.price_interval(first.state, start, end, q)
    again = tariff.price_interval(state, start, end, q)  # a retry from the stored state
    assert repr(again) == repr(first)


@settings(max_examples=200, deadline=None)
@given(quantities, st.lists(st.integers(0, 10**11), min_size=1, max_size=6))
def test_a_split_is_exact_and_within_one_unit_of_proportional(q, weights):
    with decimal.localcontext(_EXACT):
        shares = apportion(q, weights)
    assert sum(shares) == q and all(share >= 0 for share in shares)
    unit = D(1).scaleb(min(q.as_tuple().exponent, -t.SPLIT_PLACES))
    whole = sum(weights)
    if not whole:  # all weights zero: the first share takes all
        assert shares[0] == q
        return
    for share, weight in zip(shares, weights, strict=True):
        exact = Fraction(q) * weight / whole
        assert abs(Fraction(share) - exact) < Fraction(unit)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_exponent_of_a_quantity(q):
    assert exponent_of(q) == q.as_tuple().exponent


# --- examples of the window (cycle, version) the inline path trusts --- #

LADDER_TOU = t.Tariff(
    "Ladder TOU",
    (
        t.TariffVersion(
            date(2026, 1, 1),
            {t.VALLEY: ("0.30", "0.40"), t.FLAT: ("0.60", "0.70"), t.PEAK: ("1.00", "1.20")},
            step_limits=(100,),
            tou=t.TouSchedule.daily(
                [
                    t.TouSegment(time(23), time(7), t.VALLEY),
                    t.TouSegment(time(7), time(10), t.FLAT),
                    t.TouSegment(time(10), time(12), t.PEAK),
                    t.TouSegment(time(12), time(23), t.FLAT),
                ]
            ),
        ),
    ),
).compile()


def test_a_state_of_another_cycle_is_closed_as_by_the_general_path():
    other = t.Tariff(
        "15th",
        (t.TariffVersion.flat(date(2026, 1, 1), "0.60"),),
        cycle=t.CycleRule(t.MONTHLY, 15),
    ).compile()
    state = other.price_interval(None, datetime(2026, 3, 16, 9), datetime(2026, 3, 16, 9), D(1))
    start, end = datetime(2026, 3, 20, 8), datetime(2026, 3, 20, 9)  # one period
    LADDER_TOU.price_interval(None, start, end, D(1))  # the window is on March
    fast = LADDER_TOU.price_interval(state.state, start, end, D(2))
    assert fast == general(LADDER_TOU, state.state, start, end, D(2))
    assert fast.closed_cycles[0].cycle_start == datetime(2026, 3, 15)


def test_an_empty_interval_at_the_cycle_end_belongs_to_the_next_cycle():
    state = LADDER_TOU.price_interval(None, MARCH, datetime(2026, 3, 31, 23), D(5)).state
    LADDER_TOU.price_interval(state, datetime(2026, 3, 31, 23), datetime(2026, 3, 31, 23), D(0))
    instant = datetime(2026, 4, 1)
    fast = LADDER_TOU.price_interval(state, instant, instant, D(1))
    assert fast == general(LADDER_TOU, state, instant, instant, D(1))
    assert fast.state.cycle_start == instant and len(fast.closed_cycles) == 1


def test_the_window_follows_the_intervals_back_and_forth():
    # two meters priced in turn, one in March, the other in February (another cycle)
    states = {}
    for hour in (8, 9, 10, 11):
        for month in (3, 2):
            start = datetime(2026, month, 5, hour, 45)
            end = start + timedelta(minutes=30)
            fast = LADDER_TOU.price_interval(states.get(month), start, end, D("0.5"))
            assert repr(fast) == repr(general(LADDER_TOU, states.get(month), start, end, D("0.5")))
            states[month] = fast.state


def test_aware_times_are_converted_as_before():
    paris = t.Tariff("Paris", LADDER_TOU.tariff.versions, timezone="Europe/Paris").compile()
    utc = datetime(2026, 3, 2, 8, 15, tzinfo=ZoneInfo("UTC"))  # 09:15 in Paris
    fast = paris.price_interval(None, utc, utc + timedelta(minutes=30), D(1))
    local = paris.price_interval(
        None, datetime(2026, 3, 2, 9, 15), datetime(2026, 3, 2, 9, 45), D(1)
    )
    assert repr(fast) == repr(local)
    with pytest.raises(AttributeError):
        paris.price_interval(None, date(2026, 3, 2), datetime(2026, 3, 2, 9), D(1))


# --- the exact decimal context, entered through a contextvars.Context --- #


def test_pricing_inside_pricing_falls_back_to_switching_the_context():
    start, end = datetime(2026, 3, 2, 9, 45), datetime(2026, 3, 2, 10, 15)
    outer = LADDER_TOU.price_interval(None, start, end, D("1.5"))
    inner = _run_exact(LADDER_TOU.price_interval, None, start, end, D("1.5"))  # in use
    assert repr(inner) == repr(outer)
    assert decimal.getcontext() is not _EXACT


def test_threads_pricing_at_once_get_the_results_of_one_thread():
    starts = [MARCH + timedelta(minutes=30 * i) for i in range(200)]

    def run(out):
        state = None
        for start in starts:
            result = LADDER_TOU.price_interval(
                state, start, start + timedelta(minutes=30), D("0.9")
            )
            state = result.state
            out.append(repr(result))

    alone = []
    run(alone)
    outputs = [[] for _ in range(4)]
    threads = [threading.Thread(target=run, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(out == alone for out in outputs)


def test_errors_inside_the_exact_context_are_the_same():
    start, end = datetime(2026, 3, 2, 9), datetime(2026, 3, 2, 9, 30)
    with pytest.raises(t.PrecisionError):
        LADDER_TOU.price_interval(None, start, end, D("1." + "1" * 70))
    with pytest.raises(t.NegativeConsumptionError):
        LADDER_TOU.price_interval(None, start, end, D("-1"))
    with pytest.raises(t.IntervalError):
        LADDER_TOU.price_interval(None, end, start, D("1"))
    assert decimal.getcontext() is not _EXACT
