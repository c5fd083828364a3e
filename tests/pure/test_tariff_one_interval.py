"""B3 speed of the most common deduction: one new reading per meter (``price_run`` of one
interval, ``price_interval``) goes through ``CompiledTariff._price_one``.

It must give exactly (``repr``, digits and exponents) what the run loop gives for a run of
that one interval (the reference), and the same amounts, lines and state as the general
path; so must the intervals that just miss the common case (a tariff version change or
a cycle boundary one minute inside the interval) and those at its edge (a ladder step
boundary crossed by the last thousandth, a period change, registers of two bands). An
oracle written from the definitions says which intervals are the common case, and a spy
checks that exactly those are priced without handing them on.
"""

import bisect
import decimal
from datetime import date, datetime, timedelta
from decimal import Decimal as D

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_tariff_fast_paths import BANDS4, general, tariffs

from prepaid_core import tariff as t
from prepaid_core.tariff.book import exactly
from prepaid_core.tariff.compiled import _price_run

MINUTE = timedelta(minutes=1)
APRIL = datetime(2026, 4, 1)
MISSES = ("step", "period", "version", "cycle", "two bands")


def reference(tariff, state, start, end, consumption):
    """The interval priced by the run loop, as a run of one (what ``_price_one`` must give
    exactly)."""
    run = exactly(_price_run, tariff, state, [(start, end, consumption)], False)
    (lines,), (amount,), (closed,), _amount, state = run
    return t.PricedInterval(lines, amount, state, closed)


def same_as_general(result, tariff, state, start, end, consumption):
    """The general path's amount, lines (as a multiset: registers of several bands are
    in the registers' order inline, in time order there) and state."""
    slow = general(tariff, state, start, end, consumption)
    assert sorted(result.lines) == sorted(slow.lines)
    assert result.amount == slow.amount and result.state == slow.state
    assert result.closed_cycles == slow.closed_cycles


def run_of_one(result):
    """What ``price_run`` of one interval gives, from the general path's result."""
    return t.PricedRun(
        (result.lines,), (result.amount,), (result.closed_cycles,), result.amount, result.state
    )


def is_common(tariff, state, start, end, consumption):
    """Whether the interval is the common case of ``_price_one``, from the definitions."""
    if state is None or state.priced_until is None or start < state.priced_until:
        return False
    cycle_start, cycle_end = tariff.cycle.bounds(start)
    if state.cycle_start != cycle_start or not start <= end <= cycle_end or start == cycle_end:
        return False
    version = tariff._version(start)
    if end > version.end:
        return False
    if isinstance(consumption, dict):
        moved = [(band, q) for band, q in consumption.items() if q]
        if not moved:
            return True
        if any((version.single_band or band) not in version.prices for band, _q in moved):
            return False
        q = sum(q for _band, q in moved)  # (registers of several bands: one step for all)
    else:
        q = consumption  # (over several time-of-use periods: split by time)
        if not q:
            return True
    if not isinstance(consumption, dict) or len(moved) == 1 or version.single_band:
        return True  # one band: through as many ladder steps as it takes
    limits = version.limits  # registers of several bands: within one ladder step
    return state.consumption + q <= limits[bisect.bisect_right(limits, state.consumption)]


class Spy:
    """Counts the intervals that ``_price_one`` hands to another path."""

    def __init__(self, tariff):
        self.calls = 0
        for name in ("_price_other",):
            setattr(tariff, name, self.wrap(getattr(tariff, name)))

    def wrap(self, method):
        def counted(*args):
            self.calls += 1
            return method(*args)

        return counted


@st.composite
def one_intervals(draw):
    """(tariff, state, start, end, consumption, miss): ``miss`` is ``None`` for an
    interval drawn inside the inline case, else the way it was made to just miss it."""
    tariff = draw(tariffs())
    version = tariff.versions[-1]  # (from a day of March when there are two)
    miss = draw(st.sampled_from((None, None, None, *MISSES)))
    if miss == "version":
        assume(len(tariff.versions) == 2)
        start = version.start - draw(st.integers(1, 120)) * MINUTE
        end = version.start + MINUTE
    elif miss == "cycle":
        start = APRIL - draw(st.integers(1, 120)) * MINUTE
        end = APRIL + MINUTE
    else:
        day = draw(st.integers(max(version.start.day, 1), 30))
        start = datetime(2026, 3, day) + draw(st.integers(0, 24 * 60 - 1)) * MINUTE
        length = draw(st.sampled_from([0, 1, 15, 30, 30]))
        end = start + length * MINUTE
        if not version.single_band:
            period_end = version.period_at(start)[1]
            if miss == "period":
                assume(period_end < APRIL)
                end = period_end + MINUTE
            else:
                end = min(end, period_end)
        elif miss == "period":
            assume(False)  # (one band: no period to change)
    before = draw(st.integers(0, 60_000).map(lambda n: D(n).scaleb(-1)))
    cycle_start = tariff.new_state(start).cycle_start
    state = general(tariff, None, cycle_start, start, before).state
    in_force = tariff._version(start)
    limits = in_force.limits
    room = limits[bisect.bisect_right(limits, state.consumption)] - state.consumption
    if miss == "step":
        assume(room.is_finite())
        q = room + D("0.001")  # the step boundary crossed by the last thousandth
    elif room.is_finite():
        q = min(room, draw(st.integers(0, 40_000).map(lambda n: D(n).scaleb(-3))))
    else:
        q = draw(st.integers(0, 40_000).map(lambda n: D(n).scaleb(-3)))
    if (draw(st.booleans()) or miss == "two bands") and miss != "period":  # TOU registers
        priced = sorted(in_force.prices) if not in_force.single_band else list(BANDS4)
        band = draw(st.sampled_from(priced))
        consumption = dict.fromkeys(BANDS4, D("0.000"))
        consumption[band] = q
        if miss == "two bands":
            assume(q and not in_force.single_band and len(priced) > 1)
            other = draw(st.sampled_from([b for b in priced if b != band]))
            consumption[band] = q - q / 2
            consumption[other] = q / 2
    else:
        consumption = q
    return tariff, state, start, end, consumption, miss


def outcome(price):
    """A pricing's result, or ``[error type, message]``."""
    try:
        return price()
    except t.TariffError as error:
        return [type(error), str(error)]


@settings(max_examples=250, deadline=None)
@given(one_intervals())
def test_one_interval_is_priced_as_by_the_reference_path(case):
    tariff, state, start, end, consumption, miss = case
    before = repr(state)
    expected = outcome(lambda: reference(tariff, state, start, end, consumption))
    if isinstance(expected, list):  # (a band that the next version does not price)
        assert outcome(lambda: tariff.price_interval(state, start, end, consumption)) == expected
        assert outcome(lambda: tariff.price_run(state, [(start, end, consumption)])) == expected
        return
    same_as_general(expected, tariff, state, start, end, consumption)
    spy = Spy(tariff)
    common = is_common(tariff, state, start, end, consumption)
    assert repr(tariff.price_interval(state, start, end, consumption)) == repr(expected)
    assert spy.calls == (0 if common else 1)
    run = tariff.price_run(state, [(start, end, consumption)])
    assert repr(run) == repr(run_of_one(expected))
    assert spy.calls == (0 if common else 2)
    assert repr(state) == before  # never changed in place
    assert common == (miss not in ("version", "cycle"))  # (a step, a period: common too)


@settings(max_examples=150, deadline=None)
@given(
    one_intervals(),
    st.sampled_from(["digits", "negative", "unknown", "unknown moved", "overlap", "unpriced"]),
)
def test_bad_one_intervals_are_priced_or_refused_as_by_the_reference_path(case, fault):
    """The same errors (type and message) as the reference path, the state left as it
    was; or, when the fault is not one for this tariff, the same result."""
    tariff, state, start, end, consumption, _miss = case
    zeros = dict.fromkeys(BANDS4, D("0.000"))
    if fault == "digits":
        consumption = D("1." + "1" * 70)  # too many digits to be charged exactly
    elif fault == "negative":
        consumption = {**zeros, t.PEAK: D("-0.5")}
    elif fault == "unknown":
        consumption = {**zeros, "super peak": D("0.000")}
    elif fault == "unknown moved":
        consumption = {**zeros, "super peak": D("0.5")}
    elif fault == "overlap":
        start -= MINUTE  # one minute already charged
    else:
        consumption = {**zeros, t.SHARP: D("0.5")}  # (not priced by most test tariffs)
    before = repr(state)
    tariff.price_interval(state, end, end, D(0))  # (points the window at the interval)
    expected = outcome(lambda: reference(tariff, state, start, end, consumption))
    one = outcome(lambda: tariff.price_interval(state, start, end, consumption))
    run = outcome(lambda: tariff.price_run(state, [(start, end, consumption)]))
    if isinstance(expected, list):
        assert one == run == expected
        if fault == "unpriced":  # split by time when asked: the registers' total
            split = tariff.price_run(state, [(start, end, consumption)], split_unpriced=True)
            total = reference(tariff, state, start, end, D("0.5"))
            assert repr(split) == repr(run_of_one(total))
    else:
        assert fault != "overlap"
        assert repr(one) == repr(expected)
        assert repr(run) == repr(run_of_one(expected))
    assert repr(state) == before


def test_the_fast_path_keeps_the_callers_decimal_context():
    tariff = t.Tariff("flat", (t.TariffVersion.flat(date(2026, 1, 1), "0.6037"),)).compile()
    start = datetime(2026, 3, 2, 9)
    state = tariff.price_interval(None, start - timedelta(minutes=30), start, D("0.5")).state
    with decimal.localcontext() as ctx:
        ctx.prec = 3  # a caller's context that would round: not used for pricing
        result = tariff.price_run(state, [(start, start + MINUTE * 30, D("12.345"))])
        assert decimal.getcontext() is ctx
    assert result.amount == D(
        "7.4526"
    )  # 7.7545 to date, less 0.3019 and result.state.consumption == D("12.845")
