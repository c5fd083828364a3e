"""The general pricing path (B1, B3): any interval, cut by time and charged in time order.

The interval is cut at time-of-use period ends, midnight, tariff version changes and
settlement cycle boundaries; its consumption is split over the pieces (a total by time, a
register over the periods of its band) and charged piece by piece through the ladder.
Every other path gives what this one gives, for the intervals it prices.
"""

from __future__ import annotations

from decimal import Decimal

from prepaid_core.tariff.book import (
    ZERO_MONEY,
    CycleState,
    PricedInterval,
    charge_pieces,
)
from prepaid_core.tariff.definitions import BAND_RANK, ZERO, _fmt_dt
from prepaid_core.tariff.errors import AlreadyPricedError, IntervalError
from prepaid_core.tariff.quantities import apportion, band_rank, check_quantity, missing_band
from prepaid_core.tariff.versions import MICROSECOND


def price_general(compiled, state, start, end, consumption) -> PricedInterval:
    """Any interval of ``compiled``'s tariff from ``state`` (not ``None``), in the exact
    decimal context: checked, cut by time, charged in time order cycle by cycle."""
    _check_interval(state, start, end)
    timeline = _timeline(compiled, start, end)
    shares = _shares(timeline, consumption)
    lines, closed = [], []
    for cycle_start, cycle_end in dict.fromkeys(piece[4:] for piece in timeline):
        if state.cycle_start != cycle_start:
            closed.append(state._replace(priced_until=state.cycle_end))
            state = CycleState(cycle_start, cycle_end, ZERO, ZERO_MONEY, {}, None)
        pieces = [(s[2], s[3], s[4]) for s in shares if s[5] == cycle_start]
        new_lines, state = _charge_cycle(state, pieces, min(end, cycle_end))
        lines.extend(new_lines)
    state = state._replace(priced_until=end)
    amount = sum((line.amount for line in lines), ZERO_MONEY)
    return PricedInterval(tuple(lines), amount, state, tuple(closed))


def _check_interval(state, start, end) -> None:
    """Refuse an interval that ends before it starts, or starts before the state allows."""
    if end < start:
        raise IntervalError(
            f"The reading of {_fmt_dt(end)} is earlier than the previous one ({_fmt_dt(start)})."
        )
    until = state.priced_until
    if until is not None and start < until:
        raise AlreadyPricedError(
            f"Consumption from {_fmt_dt(start)} to {_fmt_dt(end)} overlaps consumption "
            f"already charged up to {_fmt_dt(until)}; a reading is charged only once."
        )
    if start < state.cycle_start:
        raise IntervalError(
            f"The interval starting {_fmt_dt(start)} is before the settlement cycle "
            f"of the state given ({_fmt_dt(state.cycle_start)})."
        )


def _timeline(compiled, start, end):
    """Pieces ``(t0, t1, version, band, cycle_start, cycle_end)`` covering the interval,
    cut at time-of-use period ends, midnight, version changes and cycle boundaries."""
    pieces = []
    cycle_start, cycle_end = compiled.cycle.bounds(start)
    t = start
    while True:
        if t >= cycle_end:
            cycle_start, cycle_end = compiled.cycle.bounds(t)
        version = compiled._version(t)
        if version.single_band:
            band = version.single_band
            limit = min(end, version.end, cycle_end)
        else:
            _period_start, period_end, band = version.period_at(t)
            limit = min(end, version.end, cycle_end, period_end)
        pieces.append((t, limit, version, band, cycle_start, cycle_end))
        if limit >= end:
            return pieces
        t = limit


def _shares(timeline, consumption):
    """``(t0, band rank, version, band, q, cycle_start)`` of the consumption on each piece
    of the timeline, in time order (then band order): a total split by time, a register
    by time over the pieces of its band (over all of them if none is)."""
    weights = [(t1 - t0) // MICROSECOND for t0, t1, *_rest in timeline]
    shares = []
    if consumption.__class__ is not Decimal:
        for band, q in sorted(consumption.items(), key=lambda i: band_rank(i[0])):
            q = check_quantity(q, band)
            if not q:
                continue
            chosen = [
                i
                for i, (_t0, _t1, version, period_band, *_r) in enumerate(timeline)
                if version.single_band or period_band == band
            ] or list(range(len(timeline)))
            parts = apportion(q, [weights[i] for i in chosen])
            for i, part in zip(chosen, parts, strict=True):
                t0, _t1, version, _band, cycle_start, _end = timeline[i]
                priced = version.single_band or band
                if priced not in version.prices:
                    missing_band(band, version)
                shares.append((t0, BAND_RANK[band], version, priced, part, cycle_start))
    else:
        q = check_quantity(consumption, None)
        if q:
            parts = apportion(q, weights)
            for (t0, _t1, version, band, cycle_start, _end), part in zip(
                timeline, parts, strict=True
            ):
                shares.append((t0, BAND_RANK[band], version, band, part, cycle_start))
    shares.sort(key=lambda s: (s[0], s[1]))
    return shares


def _charge_cycle(state: CycleState, pieces, until):
    """Charge ordered pieces ``(version, band, q)`` of the state's cycle: the new lines and
    the state charged up to ``until``."""
    book = dict(state.lines)
    lines, _amount, total = charge_pieces(book, state.consumption, pieces, state.cycle_start)
    charged = state.charged
    for line in lines:
        charged += line.amount
    return lines, CycleState(state.cycle_start, state.cycle_end, total, charged, book, until)
