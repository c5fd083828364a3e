"""The compiled tariff: prices intervals of consumption for one tariff (B1, B3).

One :class:`CompiledTariff` per tariff, shared by every meter; each meter keeps its own
:class:`CycleState`. The common interval is priced by :func:`charge_common`, any other by
the general path; both read the same version tables and the same book rule.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from prepaid_core.tariff.book import (
    ZERO_MONEY,
    CycleState,
    PricedInterval,
    PricedRun,
    _new_line,
    _run_exact,
    exactly,
    one_run,
)
from prepaid_core.tariff.common import charge_common, charge_one_band, checked_consumption
from prepaid_core.tariff.definitions import ZERO, Tariff, TariffVersion, _fmt_dt
from prepaid_core.tariff.errors import NoVersionError, UnknownBandError
from prepaid_core.tariff.general import price_general
from prepaid_core.tariff.quantities import check_quantity, register_total
from prepaid_core.tariff.versions import END_OF_TIME, PricingVersion, _bisect_right

_copy = dict.copy  # (a state's book is a dict: faster than dict(book))
# Errors after which pricing is done again by exactly(), which handles them (pricing
# changes nothing that it was given: doing it again gives the same)
_RETRY = (RuntimeError, decimal.Inexact, decimal.Overflow)


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    """A time as the tariff's wall-clock time (naive times already are)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


class CompiledTariff:
    """Prices intervals of consumption for one :class:`Tariff` (see ``docs/tariff_engine.md``).

    Not thread-safe for construction, safe to share for pricing (only caches are written).
    """

    def __init__(self, tariff: Tariff):
        tariff.validate()
        self.tariff = tariff
        self.cycle = tariff.cycle
        self.zone = ZoneInfo(tariff.timezone)
        versions = tariff.versions
        self.versions = tuple(
            PricingVersion(
                v,
                v.valid_to
                or (versions[i + 1].valid_from if i + 1 < len(versions) else END_OF_TIME),
            )
            for i, v in enumerate(versions)
        )
        self._starts = tuple(v.start for v in self.versions)
        # (cycle start, cycle end, version, from, until): the cycle and version of the last
        # interval priced, where the common interval is looked for (a cache)
        self._window = (END_OF_TIME, END_OF_TIME, self.versions[-1], END_OF_TIME, END_OF_TIME)

    # --- lookups --- #

    def _version(self, at: datetime) -> PricingVersion:
        index = _bisect_right(self._starts, at) - 1
        if index >= 0:
            version = self.versions[index]
            if at < version.end:
                return version
        raise NoVersionError(
            f"Tariff '{self.tariff.name}' has no version in force on {_fmt_dt(at)}."
        )

    def version_at(self, at: datetime) -> TariffVersion:
        """The tariff version in force at ``at``."""
        at = _local(at, self.zone)
        return self.tariff.versions[self.versions.index(self._version(at))]

    def band_at(self, at: datetime) -> str:
        """The time-of-use band in force at ``at``."""
        at = _local(at, self.zone)
        version = self._version(at)
        if version.single_band:
            return version.single_band
        return version.period_at(at)[2]

    def new_state(self, at: datetime) -> CycleState:
        """An empty state for the settlement cycle that contains ``at``."""
        start, end = self.cycle.bounds(_local(at, self.zone))
        return CycleState(start, end, ZERO, ZERO_MONEY, {}, None)

    # --- pricing --- #

    def price_interval(
        self,
        state: CycleState | None,
        start: datetime,
        end: datetime,
        consumption: Decimal | Mapping[str, Decimal],
    ) -> PricedInterval:
        """Price the consumption between two readings.

        :param state: the meter's cycle state after the previous interval (``None`` for
            the first one: a new cycle is started at ``start``).
        :param start: time of the previous reading.
        :param end: time of this reading.
        :param consumption: a ``Decimal`` total, split over the time-of-use periods by time,
            or ``{band: Decimal}`` deltas of the meter's time-of-use registers.
        """
        try:
            return _run_exact(_price_one, self, state, start, end, consumption, None)
        except _RETRY:  # the exact context in use, or digits lost: see exactly()
            return exactly(_price_one, self, state, start, end, consumption, None)

    def price_run(
        self,
        state: CycleState | None,
        intervals,
        split_unpriced: bool = False,
    ) -> PricedRun:
        """Price a meter's consecutive intervals in one call (the deductions, B3).

        :param state: the meter's state before the first interval (``None``: a new cycle
            is started at the first interval's start).
        :param intervals: ``(start, end, consumption)`` of each interval, in time order,
            as :meth:`price_interval` takes them.
        :param split_unpriced: registers with consumption in a band that the version in
            force does not price (a meter with a sharp register on a peak/valley tariff)
            are priced as their total split by time, instead of raising
            :class:`UnknownBandError`.

        The same lines, amounts and closed cycles as calling :meth:`price_interval` for
        each interval in turn with the state of the previous one, and the same last state.
        An error in any interval raises and prices nothing (the state given is left as it
        was).
        """
        if intervals.__class__ is not list and intervals.__class__ is not tuple:
            intervals = list(intervals)  # (an iterator could not be priced again below)
        if len(intervals) == 1:  # the most common run: one new reading
            start, end, consumption = intervals[0]
            args = (_price_one, self, state, start, end, consumption, split_unpriced)
        else:
            args = (_price_run, self, state, intervals, split_unpriced)
        try:
            return _run_exact(*args)
        except _RETRY:  # the exact context in use, or digits lost: see exactly()
            return exactly(*args)

    def _price_one(self, state, start, end, consumption, run, checked=False):
        """One interval in the exact decimal context: a :class:`PricedInterval` (``run`` is
        ``None``) or the :class:`PricedRun` of it (``run`` is ``split_unpriced``).

        The common interval -- the state in the window's cycle and charged up to ``start``
        at most, the interval inside the window -- by :func:`charge_common`; any other by
        :meth:`_price_other`, or (``checked``: its figures checked, the window pointed at
        it) by the general path.
        """
        if state is not None:
            cycle_start, cycle_end, total, charged, book, until = state
            window = self._window
            lo, hi, version, first, last = window
            try:
                floor = first if until is None or until < first else until
                common = (
                    (cycle_start is lo or cycle_start == lo)
                    and (cycle_end is hi or cycle_end == hi)
                    and book.__class__ is dict
                )
                inside = common and floor <= start <= end <= last and start < last
            except TypeError:  # an aware time (converted by _price_other)
                common = inside = False
            if common:
                book = _copy(book)
                priced = inside and charge_one_band(
                    version, book, total, start, end, consumption, lo
                )
                if priced:
                    lines, amount, total = priced
                    charged = charged + amount
                    done = 1
                else:
                    interval = ((start, end, consumption),)
                    done, total, charged, lines, amount = charge_common(
                        window, book, total, charged, interval, 0, floor, None, None
                    )
                if done:
                    state = _new_line(CycleState, (lo, hi, total, charged, book, end))
                    if run is None:
                        return _new_line(PricedInterval, (lines, amount, state, ()))
                    return _new_line(PricedRun, ((lines,), (amount,), ((),), amount, state))
        if checked:
            return price_general(self, state, start, end, consumption)
        result = self._price_other(state, start, end, consumption, run)
        return result if run is None else one_run(result)

    def _price_other(self, state, start, end, consumption, split_unpriced) -> PricedInterval:
        """An interval that is not the common one as given (:meth:`_price_one`); with
        ``split_unpriced``, registers in a band that the version does not price are priced
        as their total split by time."""
        try:
            return self._price_checked(state, start, end, consumption)
        except UnknownBandError:
            if not split_unpriced or consumption.__class__ is Decimal:
                raise
            return self._price_checked(state, start, end, register_total(consumption))

    def _price_checked(self, state, start, end, consumption) -> PricedInterval:
        """An interval made the common one if it can be (a new state, local times, the
        window pointed at it, its figures checked and converted), else by the general
        path (which says what is wrong with it)."""
        if state is None:
            state = self.new_state(start)
        start, end = _local(start, self.zone), _local(end, self.zone)
        if consumption.__class__ is not Decimal and not hasattr(consumption, "items"):
            consumption = check_quantity(consumption, None)  # an int total, or refused
        if not self._move_window(state, start, end):
            return price_general(self, state, start, end, consumption)
        consumption = checked_consumption(consumption, self._window[2])
        if state.lines.__class__ is not dict:
            state = state._replace(lines=dict(state.lines))
        return self._price_one(state, start, end, consumption, None, checked=True)

    def _move_window(self, state, start, end) -> bool:
        """Point the window at the cycle and version in force at ``start``; whether the
        interval and the state fit in it (the common interval's conditions)."""
        cycle_start, cycle_end = self.cycle.bounds(start)
        index = _bisect_right(self._starts, start) - 1
        if index < 0 or start >= self.versions[index].end:
            return False  # no version: the general path says so, after its own checks
        version = self.versions[index]
        last = min(cycle_end, version.end)
        self._window = (cycle_start, cycle_end, version, max(cycle_start, version.start), last)
        until = state.priced_until
        return (
            start <= end <= last
            and start < last
            and (until is None or until <= start)
            and state.cycle_start == cycle_start
            and state.cycle_end == cycle_end
        )

    def _price_general(self, state, start, end, consumption) -> PricedInterval:
        """Any interval by the general path (``state`` not ``None``, exact context)."""
        return price_general(self, state, start, end, consumption)


def _price_run(compiled, state, intervals, split_unpriced) -> PricedRun:
    """:meth:`CompiledTariff.price_run` of several intervals, in the exact decimal context.

    The run's book is copied once and charged in place: the intervals by
    :func:`charge_common` for as long as they are the common one, the first that is not
    by :meth:`CompiledTariff._price_other` from the state so far, and so on.
    """
    if not intervals:
        return _new_line(PricedRun, ((), (), (), ZERO_MONEY, state))
    if state is None:
        state = compiled.new_state(intervals[0][0])
    cycle_start, cycle_end, total, charged, book, until = state
    charged_before = charged
    book = dict(book)  # the run's own: changed in place, handed out in the last state
    lines_out, amounts, closed_out = [], [], []  # (the columns of the result)
    index, closed = 0, False  # closed: a cycle closed inside the run
    while index < len(intervals):
        window = compiled._window
        lo, hi, _version, first, _last = window
        try:
            floor = first if until is None or until < first else until
            fits = (cycle_start is lo or cycle_start == lo) and (cycle_end is hi or cycle_end == hi)
        except TypeError:  # an aware time (converted by _price_other)
            fits = False
        if fits:
            done, total, charged, _lines, _amount = charge_common(
                window, book, total, charged, intervals, index, floor, lines_out, amounts
            )
            if done > index:
                until = intervals[done - 1][1]
                closed_out.extend([()] * (done - index))
                index = done
                continue
        state = _new_line(CycleState, (cycle_start, cycle_end, total, charged, book, until))
        start, end, consumption = intervals[index]
        result = compiled._price_other(state, start, end, consumption, split_unpriced)
        lines_out.append(result.lines)
        amounts.append(result.amount)
        closed_out.append(result.closed_cycles)
        closed = closed or bool(result.closed_cycles)
        # (its book is a new dict: the run's own from now on)
        cycle_start, cycle_end, total, charged, book, until = result.state
        index += 1
    state = _new_line(CycleState, (cycle_start, cycle_end, total, charged, book, until))
    amount = _run_amount(amounts, closed, charged - charged_before)
    return _new_line(
        PricedRun, (tuple(lines_out), tuple(amounts), tuple(closed_out), amount, state)
    )


def _run_amount(amounts, closed, charged):
    """The amount of a run: ``charged`` (what its intervals added to the state's charged)
    unless a cycle ``closed`` inside it, then the sum of its intervals' amounts."""
    if not closed:
        return charged
    amount = ZERO_MONEY
    for value in amounts:
        amount += value
    return amount


_price_one = CompiledTariff._price_one


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Same as ``tariff.compile()``."""
    return CompiledTariff(tariff)


def price_interval(
    tariff: CompiledTariff,
    state: CycleState | None,
    start: datetime,
    end: datetime,
    consumption: Decimal | Mapping[str, Decimal],
) -> PricedInterval:
    """Same as ``tariff.price_interval(state, start, end, consumption)``."""
    return tariff.price_interval(state, start, end, consumption)
