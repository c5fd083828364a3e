"""B1/B3 properties: partition invariance, exact splits, cumulative rounding, monotonicity.

An independent oracle charges a time-ordered stream of consumption the slow, obvious way
(walk every quantity through the ladder, exact cost per (band, step), round each cycle
total once); the engine must agree with it however the stream is cut into intervals.
"""

import decimal
import itertools
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import tariff as t
from prepaid_core.tariff.book import _EXACT

CYCLE = datetime(2026, 3, 1)
BANDS4 = (t.SHARP, t.PEAK, t.FLAT, t.VALLEY)
SLOT = timedelta(hours=3)  # the test schedule: 8 periods of 3 h, bands in turn

quantities = st.integers(0, 40_000).map(lambda n: D(n).scaleb(-3))  # 0 to 40 kWh, 3 dp
prices = st.integers(0, 300_000).map(lambda n: D(n).scaleb(-5))  # 0 to 3.00000


@st.composite
def ladders(draw, max_limit=400):
    steps = draw(st.integers(1, t.MAX_STEPS))
    limits = sorted(
        draw(st.sets(st.integers(1, max_limit * 10), min_size=steps - 1, max_size=steps - 1))
    )
    return tuple(D(v).scaleb(-1) for v in limits)


@st.composite
def ladder_tou_tariffs(draw):
    limits = draw(ladders())
    steps = len(limits) + 1
    rising = draw(st.booleans())
    table = {}
    for band in BANDS4:
        row = draw(st.lists(prices, min_size=steps, max_size=steps))
        table[band] = tuple(sorted(row) if rising else row)
    segments = [t.TouSegment(time(3 * i), time((3 * i + 3) % 24), BANDS4[i % 4]) for i in range(8)]
    version = t.TariffVersion(
        date(2026, 1, 1), table, step_limits=limits, tou=t.TouSchedule.daily(segments)
    )
    return t.Tariff("prop", (version,)).compile(), limits, table


@st.composite
def ladder_tariffs(draw):
    limits = draw(ladders())
    table = {
        t.FLAT: tuple(draw(st.lists(prices, min_size=len(limits) + 1, max_size=len(limits) + 1)))
    }
    version = t.TariffVersion(date(2026, 1, 1), table, step_limits=limits)
    return t.Tariff("prop", (version,)).compile(), limits, table


def oracle(stream, limits, table):
    """Charge ``[(band, q), ...]`` in order: (quantity per (band, step), cycle total)."""
    total = D(0)
    per_key = {}
    cost = {}
    for band, q in stream:
        while q > 0:
            step = sum(1 for limit in limits if total >= limit)
            room = limits[step] - total if step < len(limits) else q
            take = min(q, room)
            key = (band, step + 1)
            per_key[key] = per_key.get(key, D(0)) + take
            cost[key] = cost.get(key, D(0)) + take * table[band][step]
            total += take
            q -= take
    rounded = sum((c.quantize(D("0.0001"), ROUND_HALF_UP) for c in cost.values()), D(0))
    return per_key, rounded


def check_result(result, before):
    """Lines add up, amounts are non-negative, the state is the sum of its lines."""
    assert all(line.amount >= 0 and line.quantity > 0 for line in result.lines)
    assert sum((line.amount for line in result.lines), D(0)) == result.amount
    assert result.amount == result.state.charged - (before.charged if before else 0)
    assert result.amount == result.amount.quantize(D("0.0001"))
    state = result.state
    for q, cost, rounded in state.lines.values():
        assert rounded == cost.quantize(D("0.0001"), ROUND_HALF_UP) and q > 0
    assert state.charged == sum((r for _q, _c, r in state.lines.values()), D(0))
    assert state.consumption == sum((q for q, _c, _r in state.lines.values()), D(0))


def partition(draw, parts_count_max, total_parts):
    """Random cut points splitting ``total_parts`` items into contiguous groups."""
    cuts = draw(st.sets(st.integers(1, max(total_parts - 1, 1)), max_size=parts_count_max))
    bounds = [0, *sorted(c for c in cuts if c < total_parts), total_parts]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_ladder_partition_invariance(data):
    """Single band: any partition of a cycle's consumption gives the same total and state."""
    tariff, limits, table = data.draw(ladder_tariffs())
    parts = data.draw(st.lists(quantities, min_size=1, max_size=12))
    hours = len(parts)
    at_once = tariff.price_interval(None, CYCLE, CYCLE + timedelta(hours=hours), sum(parts, D(0)))
    check_result(at_once, None)
    state = None
    total = D(0)
    for i, q in enumerate(parts):
        result = tariff.price_interval(
            state, CYCLE + timedelta(hours=i), CYCLE + timedelta(hours=i + 1), q
        )
        check_result(result, state)
        state = result.state
        total += result.amount
    assert total == at_once.amount == state.charged
    assert dict(state.lines).keys() == dict(at_once.state.lines).keys()
    for key, (q, cost, rounded) in state.lines.items():
        assert (q, cost, rounded) == at_once.state.lines[key]
    per_key, expected = oracle([(t.FLAT, q) for q in parts], limits, table)
    assert total == expected
    assert {k: v[0] for k, v in state.lines.items()} == {k: v for k, v in per_key.items() if v}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_ladder_x_tou_stream_cut_any_way_matches_the_oracle(data):
    """Ladder x TOU: consumption in time order, cut into intervals in any way within the
    time-of-use periods, is charged like the oracle charges the stream."""
    tariff, limits, table = data.draw(ladder_tou_tariffs())
    slots = data.draw(
        st.lists(st.lists(quantities, min_size=1, max_size=4), min_size=1, max_size=8)
    )
    stream = []
    state_parts = None
    state_slots = None
    total_parts = D(0)
    total_slots = D(0)
    for index, parts in enumerate(slots):
        slot_start = CYCLE + SLOT * index
        band = BANDS4[index % 4]
        stream.extend((band, q) for q in parts)
        # the whole period at once, as registers
        result = tariff.price_interval(
            state_slots,
            slot_start,
            slot_start + SLOT,
            {b: (sum(parts, D(0)) if b == band else D(0)) for b in BANDS4},
        )
        check_result(result, state_slots)
        state_slots = result.state
        total_slots += result.amount
        # the period cut into random groups of its sub-intervals, as totals
        width = SLOT / len(parts)
        for a, b in partition(data.draw, 3, len(parts)):
            result = tariff.price_interval(
                state_parts, slot_start + width * a, slot_start + width * b, sum(parts[a:b], D(0))
            )
            check_result(result, state_parts)
            state_parts = result.state
            total_parts += result.amount
    per_key, expected = oracle(stream, limits, table)
    assert total_parts == total_slots == expected
    expected_q = {k: v for k, v in per_key.items() if v}
    assert {k: v[0] for k, v in state_parts.lines.items()} == expected_q
    assert {k: v[0] for k, v in state_slots.lines.items()} == expected_q


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_tou_registers_partition_invariance(data):
    """TOU without ladder: any partition of the register deltas gives the same total."""
    table = {band: (data.draw(prices),) for band in BANDS4}
    segments = [t.TouSegment(time(6 * i), time((6 * i + 6) % 24), BANDS4[i]) for i in range(4)]
    version = t.TariffVersion(date(2026, 1, 1), table, tou=t.TouSchedule.daily(segments))
    tariff = t.Tariff("tou", (version,)).compile()
    intervals = data.draw(
        st.lists(st.fixed_dictionaries(dict.fromkeys(BANDS4, quantities)), min_size=1, max_size=10)
    )
    state = None
    total = D(0)
    for i, registers in enumerate(intervals):
        result = tariff.price_interval(
            state, CYCLE + timedelta(hours=i), CYCLE + timedelta(hours=i + 1), registers
        )
        check_result(result, state)
        state, total = result.state, total + result.amount
    sums = {b: sum((r[b] for r in intervals), D(0)) for b in BANDS4}
    at_once = tariff.price_interval(None, CYCLE, CYCLE + timedelta(hours=len(intervals)), sums)
    assert total == at_once.amount
    expected = sum(
        ((sums[b] * table[b][0]).quantize(D("0.0001"), ROUND_HALF_UP) for b in BANDS4), D(0)
    )
    assert total == expected


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    start_minute=st.integers(0, 3 * 24 * 60),
    minutes=st.integers(0, 3 * 24 * 60),
    q=quantities,
    already=st.integers(0, 5000).map(lambda n: D(n).scaleb(-1)),
)
def test_time_split_is_exact_and_agrees_with_the_fast_path(data, start_minute, minutes, q, already):
    tariff, _limits, _table = data.draw(ladder_tou_tariffs())
    first = tariff.price_interval(None, CYCLE, CYCLE, already)
    start = CYCLE + timedelta(minutes=start_minute)
    end = start + timedelta(minutes=minutes)
    result = tariff.price_interval(first.state, start, end, q)
    check_result(result, first.state)
    assert sum((line.quantity for line in result.lines), D(0)) == q
    # the general (time-splitting) path gives the same as the fast path
    with decimal.localcontext(_EXACT):
        general = tariff._price_general(first.state, start, end, q)
    assert general == result
    # registers: the general path agrees too
    registers = {tariff.band_at(start): q}
    with decimal.localcontext(_EXACT):
        general = tariff._price_general(first.state, start, end, registers)
    fast = tariff.price_interval(first.state, start, end, registers)
    assert general.amount == fast.amount and general.state == fast.state


@settings(max_examples=150, deadline=None)
@given(data=st.data(), q=quantities, extra=quantities, already=quantities)
def test_more_consumption_never_costs_less_single_band(data, q, extra, already):
    tariff, _limits, _table = data.draw(ladder_tariffs())
    state = tariff.price_interval(None, CYCLE, CYCLE, already).state
    start, end = CYCLE + timedelta(hours=5), CYCLE + timedelta(hours=11)
    assert (
        tariff.price_interval(state, start, end, q).amount
        <= tariff.price_interval(state, start, end, q + extra).amount
    )


def exact_cost(state):
    return sum((cost for _q, cost, _r in state.lines.values()), D(0))


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    registers=st.fixed_dictionaries(dict.fromkeys(BANDS4, quantities)),
    band=st.sampled_from(BANDS4),
    extra=quantities,
    already=quantities,
)
def test_more_consumption_never_costs_less_ladder_x_tou(data, registers, band, extra, already):
    """With step prices that do not fall from step to step, the exact cost of an interval
    never falls when a register grows. (Rounded amounts may differ by the rounding of
    each (band, step) line, at most 0.00005 per line; see the module docstring.)"""
    tariff, _limits, table = data.draw(ladder_tou_tariffs())
    if any(list(p) != sorted(p) for p in table.values()):
        return  # a falling ladder: moving units to a higher step can make them cheaper
    state = tariff.price_interval(None, CYCLE, CYCLE, already).state
    start, end = CYCLE + timedelta(hours=5), CYCLE + timedelta(hours=11)
    more = dict(registers, **{band: registers[band] + extra})
    small = tariff.price_interval(state, start, end, registers)
    large = tariff.price_interval(state, start, end, more)
    assert exact_cost(small.state) <= exact_cost(large.state)
    lines = len(large.state.lines)
    assert small.amount <= large.amount + D("0.00005") * lines


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    cuts=st.lists(st.integers(1, 60 * 24 * 80), min_size=0, max_size=6),
    q=quantities,
)
def test_cycle_and_version_boundaries_conserve_quantity(data, cuts, q):
    """Across months and a price change: every unit is charged once, in its cycle."""
    limits = data.draw(ladders(max_limit=20))
    steps = len(limits) + 1
    v1 = t.TariffVersion(
        date(2026, 1, 1),
        {t.FLAT: tuple(data.draw(st.lists(prices, min_size=steps, max_size=steps)))},
        step_limits=limits,
    )
    v2 = t.TariffVersion(
        date(2026, 2, 10),
        {t.FLAT: tuple(data.draw(st.lists(prices, min_size=steps, max_size=steps)))},
        step_limits=limits,
    )
    tariff = t.Tariff("two versions", (v1, v2)).compile()
    start = datetime(2026, 1, 20)
    points = [
        start,
        *sorted({start + timedelta(minutes=c) for c in cuts}),
        start + timedelta(days=80),
    ]
    state = None
    charged = D(0)
    consumed = D(0)
    closed = []
    for a, b in itertools.pairwise(points):
        result = tariff.price_interval(state, a, b, q)
        check_result_across_cycles(result, state)
        charged += result.amount
        consumed += sum((line.quantity for line in result.lines), D(0))
        closed.extend(result.closed_cycles)
        state = result.state
    assert consumed == q * (len(points) - 1)
    assert charged == sum((c.charged for c in closed), state.charged)
    assert [c.cycle_start for c in closed] == [
        datetime(2026, 1, 1),
        datetime(2026, 2, 1),
        datetime(2026, 3, 1),
    ]
    assert state.cycle_start == datetime(2026, 4, 1)


def check_result_across_cycles(result, before):
    assert sum((line.amount for line in result.lines), D(0)) == result.amount
    assert all(line.amount >= 0 for line in result.lines)
    cycles = [*result.closed_cycles, result.state]
    gained = sum((c.charged for c in cycles), D(0)) - (before.charged if before else 0)
    if before is not None and before.cycle_start != cycles[0].cycle_start:
        gained += before.charged  # the state given was closed untouched
    assert gained == result.amount
