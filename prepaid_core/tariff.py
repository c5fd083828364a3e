"""Tariff engine (B1) and interval pricing (B3).

Definitions (frozen dataclasses, validated when built, so an invalid tariff cannot exist):

- :class:`Tariff` -- a name, a utility (electricity in kWh or water in m³), a settlement
  :class:`CycleRule` (monthly or annual, with a billing day) and effective-dated
  :class:`TariffVersion` s.
- :class:`TariffVersion` -- from ``valid_from`` (until ``valid_to`` or the next version):
  ladder ``step_limits`` and a price *per band per step*, and optionally a time-of-use
  :class:`TouSchedule` (seasons of up to 14 daily :class:`TouSegment` s). A flat price is a
  version with one band, one step and no schedule (:meth:`TariffVersion.flat`).

The model, ladder x time-of-use
-------------------------------
* A ladder has 1 to 8 steps. ``step_limits=(200, 400)`` means: the first 200 units of the
  settlement cycle are in step 1, the next 200 in step 2, everything above 400 in step 3.
  Steps apply to the cycle's **total** consumption, all bands together (this is how prepaid
  meters with ladder tariffs count).
* Every band that the version uses has one price per step: ``prices={"peak": (p1, p2, p3),
  "valley": (v1, v2, v3)}``. A unit consumed in band *b* while the cycle total is in step
  *s* costs ``prices[b][s]``. Ladder only: one band (``flat``), no schedule. TOU only: one
  step (no limits), several bands.
* Step boundary inside an interval: consumption is charged **in time order**. The step
  boundary falls at one point of the interval and splits the piece of consumption that
  straddles it; everything before it is in the lower step, everything after in the upper one.
  With time-of-use registers the order is that of the bands' periods inside the interval
  (ties, e.g. a zero-length interval, in the order sharp, peak, flat, valley, deep valley).
  Only subtraction is involved, so the split is exact.
* A total given without registers is spread over the interval's time-of-use periods in
  proportion to their duration (wall-clock, see below); a register is spread the same way
  over the periods of its own band when a version change or a cycle boundary cuts the
  interval. Shares are multiples of 10^-6 unit (finer if the quantity itself is finer),
  and add up *exactly* to the quantity: largest remainder, ties to the earlier period.
* A tariff version change inside an interval is split by time at the change; a settlement
  cycle boundary likewise, and accumulation restarts at zero in the new cycle.

Rounding and exactness
----------------------
Arithmetic is exact ``Decimal`` (a precision overflow raises :class:`PrecisionError`, it
never rounds silently). Amounts have 4 decimals, ``ROUND_HALF_UP``, and rounding is defined
on the **cumulative** cost of the cycle per (band, step): the amount of a line is
``round(cost to date after) - round(cost to date before)`` for its (band, step). The lines
of an interval add up to its amount, and the cycle's total is
``sum(round(exact cost of (band, step)))``, the same whether the cycle is charged at once
or in any number of intervals (proved by ``tests/pure/test_tariff_properties.py``).

Calling it from Odoo, cheaply
-----------------------------
Build a :class:`CompiledTariff` once per tariff (``tariff.compile()``; cache it on the
tariff's ``write_date``), keep one :class:`CycleState` per meter (``state.to_json()`` into
a Json field) and for each new reading call::

    result = compiled.price_interval(state, start, end, consumption)
    # result.lines -> deduction lines, result.amount -> ledger, result.state -> store

``consumption`` is a ``Decimal`` total (split by time over the periods) or a mapping
``{band: Decimal}`` of time-of-use register deltas. The state remembers up to when it was
charged (``priced_until``): a reading that overlaps what was already charged raises
:class:`AlreadyPricedError`, so a reading is never charged twice (R11). Store the new state
in the same transaction as the deduction it produced. ``result.closed_cycles`` are the
cycles that ended inside the interval (for monthly/annual consumption reports). When a
meter moves to another tariff, pass its state on if both tariffs settle on the same cycle
(accumulation continues), otherwise start the new tariff with ``state=None``.

A meter's new readings are priced in one call (what the deductions do)::

    run = compiled.price_run(state, [(start, end, consumption), ...])
    # per interval, in order: run.lines[i] -> deduction lines, run.amounts[i] -> ledger
    # (run.closed_cycles[i]); run.state -> store

which gives exactly what ``price_interval`` gives for each interval in turn
(``tests/pure/test_tariff_run.py``), faster from two intervals on.

Speed (``benchmarks/bench_tariff_alarm.py``): the common interval -- one settlement cycle
and one version (the "window" of the previous call), one band or two time-of-use periods,
one ladder step -- is priced inline, in the exact decimal context entered through a
``contextvars.Context`` (two ``setcontext()`` calls cost more than the rest of such an
interval); everything else goes to the general path, which cuts the interval by time. Both
give the same result (``tests/pure/test_tariff_fast_paths.py``). ``price_run`` enters that
context once per run, copies the state once and keeps the window, ladder step and prices
of the run in local variables while its intervals stay in them. A run of one interval (one
new reading per meter, the most common deduction) and ``price_interval`` go through
``_price_one``, which prices that common interval with the fewest operations and builds
the result asked for directly (``tests/pure/test_tariff_one_interval.py``).

Where the time of one interval goes (callgrind, one new reading per meter and call, the
benchmark's loop included): ``price_run`` 27,300 instructions; the same module compiled with
Cython 23,100; the one-interval path compiled with typed locals and all its checks 20,700,
about what this path costs in Python with every check removed (20,450). The rest is
CPython's own work on ``Decimal`` values and on the result, state and book objects, the
same interpreted or compiled: a faster engine would need arithmetic and result records of
its own.

Pricing the meters of a run of the action in one call (a ``price_runs(items)`` sharing
the window, version and time-of-use band of the meters read at the same times, commit
8772c3e, exact by property tests) was measured and dropped: the per-meter work it shares is
a few percent of an interval, while holding every meter's state and result from pricing
to booking takes them out of the processor's caches. In the benchmark, alternated with
``price_run`` per meter, it priced about half as many intervals per second of CPU with one
reading per meter and two thirds as many with 15 or 48 (whose pricing it leaves to
``price_run``'s own code); in chunks of 16 meters, 3-6% fewer.

Times are the tariff's wall-clock time: naive datetimes are taken as local time of the
tariff; aware ones are converted to ``Tariff.timezone``. Durations are wall-clock durations:
on the night of a daylight-saving change a time split is off by the hour that the clock
skips or repeats, but quantities are still conserved exactly.
"""

from __future__ import annotations

import bisect
import contextvars
import decimal
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prepaid_core.errors import PrepaidError

# === CONSTANTS === #

SHARP = "sharp"
PEAK = "peak"
FLAT = "flat"
VALLEY = "valley"
DEEP_VALLEY = "deep_valley"
BANDS = (SHARP, PEAK, FLAT, VALLEY, DEEP_VALLEY)
BAND_LABELS = {
    SHARP: "sharp",
    PEAK: "peak",
    FLAT: "flat",
    VALLEY: "valley",
    DEEP_VALLEY: "deep valley",
}
_BAND_RANK = {band: rank for rank, band in enumerate(BANDS)}
_BAND_SET = frozenset(BANDS)

ELECTRICITY = "electricity"
WATER = "water"
UNITS = {ELECTRICITY: "kWh", WATER: "m³"}

MONTHLY = "monthly"
ANNUAL = "annual"

MAX_STEPS = 8
MAX_SEGMENTS = 14
MONEY_PLACES = 4
SPLIT_PLACES = 6

ZERO = Decimal(0)
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
ZERO_MONEY = Decimal(0).quantize(MONEY_QUANTUM)
_MIDNIGHT = time.max  # end of a period that runs to 24:00
_US = timedelta(microseconds=1)
_END_OF_TIME = datetime.max
_INFINITY = Decimal("Infinity")
_NO_PERIOD = (_END_OF_TIME, _END_OF_TIME, None)  # matches no time: looked up on first use

# Exact arithmetic: any rounding raises (then PrecisionError) instead of losing a digit.
_EXACT = decimal.Context(
    prec=60,
    rounding=ROUND_HALF_UP,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)
# Rounding of money to 4 decimals (passed explicitly to quantize).
_ROUND = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])
_to_money = _ROUND.quantize  # (cost, MONEY_QUANTUM): ROUND_HALF_UP, the context's rounding
_getcontext = decimal.getcontext
# A contextvars.Context in which _EXACT is the current decimal context (see price_interval)
_EXACT_VARS = contextvars.Context()
_EXACT_VARS.run(decimal.setcontext, _EXACT)
_run_exact = _EXACT_VARS.run
_setcontext = decimal.setcontext
_bisect_right = bisect.bisect_right
_copy = dict.copy  # (a state's book is a dict: faster than dict(book))


# === ERRORS === #


class TariffError(PrepaidError):
    """A tariff is defined wrongly or cannot price the interval asked."""


class TooManyStepsError(TariffError):
    """A ladder has more than 8 steps."""


class StepLimitError(TariffError):
    """Ladder step limits are not positive and increasing."""


class PriceError(TariffError):
    """A price is missing, negative or not an exact decimal."""


class UnknownBandError(TariffError):
    """A band name is not one of the five time-of-use bands, or has no price."""


class TouScheduleError(TariffError):
    """A time-of-use schedule or season is wrong."""


class TooManySegmentsError(TouScheduleError):
    """A day has more than 14 time-of-use periods."""


class TouCoverageError(TouScheduleError):
    """Time-of-use periods leave a gap in the day or overlap."""


class CycleRuleError(TariffError):
    """The settlement cycle (monthly/annual, billing day) is wrong."""


class VersionOverlapError(TariffError):
    """Two versions of a tariff are in force at the same time."""


class NoVersionError(TariffError):
    """No version of the tariff is in force at a time that must be priced."""


class ConsumptionError(TariffError):
    """A consumption figure is not an exact, finite decimal."""


class NegativeConsumptionError(ConsumptionError):
    """A consumption figure is negative."""


class IntervalError(TariffError):
    """The interval to price is inconsistent (ends before it starts, before the cycle)."""


class AlreadyPricedError(IntervalError):
    """The interval overlaps consumption that has already been charged."""


class PrecisionError(TariffError):
    """A figure has more digits than can be computed exactly."""


# === HELPERS === #


def _fmt_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _fmt_dt(value: datetime) -> str:
    if value.hour == value.minute == value.second == 0:
        return f"{value:%Y-%m-%d}"
    return f"{value:%Y-%m-%d %H:%M}"


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise TariffError(f"A date or a date and time is expected, not {value!r}.")


def _as_decimal(value: object, what: str, error: type[TariffError] = PriceError) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise error(f"{what} must be an exact decimal number (e.g. '0.58'), not {value!r}.")
    try:
        result = Decimal(value)
    except decimal.InvalidOperation:
        raise error(f"{what} is not a number: {value!r}.") from None
    if not result.is_finite():
        raise error(f"{what} must be a finite number, not {value}.")
    return result


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _local(value: datetime, zone: ZoneInfo) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


# === DEFINITIONS === #


@dataclass(frozen=True)
class TouSegment:
    """One daily time-of-use period ``[start, end)`` priced at ``band``.

    ``end`` equal to ``time(0)`` means midnight at the end of the day. A period may run past
    midnight (``23:00`` to ``07:00``). ``start == end`` is the whole day.
    """

    start: time
    end: time
    band: str

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.band not in _BAND_RANK:
            raise UnknownBandError(
                f"'{self.band}' is not a time-of-use band; use one of: "
                + ", ".join(BAND_LABELS[b] for b in BANDS)
                + "."
            )
        for value in (self.start, self.end):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise TouScheduleError(
                    f"A time-of-use period starts and ends at a time of day, not {value!r}."
                )
            if value.microsecond:
                raise TouScheduleError(
                    f"Time-of-use periods are set to the second, not {value.isoformat()}."
                )

    def spans(self) -> tuple[tuple[int, int], ...]:
        """Seconds of the day covered, as one or two ``[start, end)`` pairs."""
        start, end = _seconds(self.start), _seconds(self.end)
        if end == 0:
            end = 86_400
        if start < end:
            return ((start, end),)
        if start == end:
            return ((0, 86_400),)
        return ((start, 86_400), (0, end))  # runs past midnight


@dataclass(frozen=True)
class TouSeason:
    """The daily periods in force from ``start_month``/``start_day`` until the next season
    starts (the last season of the year runs on into January until the first one starts).
    """

    segments: tuple[TouSegment, ...]
    start_month: int = 1
    start_day: int = 1
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "segments", tuple(self.segments))
        self.validate()

    @property
    def label(self) -> str:
        return self.name or f"from {self.start_month:02d}-{self.start_day:02d}"

    def validate(self) -> None:
        try:
            date(2001, self.start_month, self.start_day)  # 2001: not a leap year
        except (TypeError, ValueError):
            raise TouScheduleError(
                f"Season '{self.label}' starts on an impossible date "
                f"(month {self.start_month}, day {self.start_day}); "
                "use a date that exists every year."
            ) from None
        if not self.segments:
            raise TouCoverageError(f"Season '{self.label}' has no time-of-use periods.")
        if len(self.segments) > MAX_SEGMENTS:
            raise TooManySegmentsError(
                f"A day may have at most {MAX_SEGMENTS} time-of-use periods; "
                f"season '{self.label}' has {len(self.segments)}."
            )
        spans = sorted(span for segment in self.segments for span in segment.spans())
        cursor = 0
        for start, end in spans:
            if start > cursor:
                raise TouCoverageError(
                    f"The time-of-use periods of season '{self.label}' do not cover the whole "
                    f"day: nothing is set from {_fmt_time(cursor)} to {_fmt_time(start)}."
                )
            if start < cursor:
                raise TouCoverageError(
                    f"The time-of-use periods of season '{self.label}' overlap between "
                    f"{_fmt_time(start)} and {_fmt_time(min(cursor, end))}."
                )
            cursor = end
        if cursor < 86_400:
            raise TouCoverageError(
                f"The time-of-use periods of season '{self.label}' do not cover the whole "
                f"day: nothing is set from {_fmt_time(cursor)} to 24:00."
            )

    def day_table(self) -> tuple[tuple[time, ...], tuple[time, ...], tuple[str, ...]]:
        """(starts, ends, bands) of the periods of a day, sorted, covering the day; an end
        at midnight is ``time.max`` (the last instant of the day)."""
        spans = sorted(
            (start, end, segment.band)
            for segment in self.segments
            for start, end in segment.spans()
        )

        def as_time(seconds: int) -> time:
            if seconds == 86_400:
                return _MIDNIGHT
            return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)

        return (
            tuple(as_time(s[0]) for s in spans),
            tuple(as_time(s[1]) for s in spans),
            tuple(s[2] for s in spans),
        )


@dataclass(frozen=True)
class TouSchedule:
    """Time-of-use seasons; one season for a schedule that is the same all year."""

    seasons: tuple[TouSeason, ...]

    def __post_init__(self):
        object.__setattr__(self, "seasons", tuple(self.seasons))
        self.validate()

    @classmethod
    def daily(cls, segments) -> TouSchedule:
        """A schedule with the same periods every day of the year."""
        return cls((TouSeason(tuple(segments)),))

    def validate(self) -> None:
        if not self.seasons:
            raise TouScheduleError("A time-of-use schedule needs at least one season.")
        starts = {}
        for season in self.seasons:
            key = (season.start_month, season.start_day)
            if key in starts:
                raise TouScheduleError(
                    f"Seasons '{starts[key]}' and '{season.label}' start on the same day "
                    f"({key[0]:02d}-{key[1]:02d})."
                )
            starts[key] = season.label

    @property
    def bands(self) -> frozenset[str]:
        return frozenset(seg.band for season in self.seasons for seg in season.segments)


@dataclass(frozen=True)
class CycleRule:
    """Settlement cycle of the ladder: accumulation restarts at 00:00 on the billing day,
    every month (``monthly``) or every year on ``billing_month``/``billing_day`` (``annual``).
    Billing days run from 1 to 28 so that every month has one.
    """

    period: str = MONTHLY
    billing_day: int = 1
    billing_month: int = 1

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if self.period not in (MONTHLY, ANNUAL):
            raise CycleRuleError(
                f"The settlement cycle is '{MONTHLY}' or '{ANNUAL}', not '{self.period}'."
            )
        if not isinstance(self.billing_day, int) or not 1 <= self.billing_day <= 28:
            raise CycleRuleError(
                f"The billing day must be between 1 and 28 (every month has it), "
                f"not {self.billing_day}."
            )
        if not isinstance(self.billing_month, int) or not 1 <= self.billing_month <= 12:
            raise CycleRuleError(
                f"The billing month must be between 1 and 12, not {self.billing_month}."
            )

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """``(start, end)`` of the cycle that contains ``at`` (start included)."""
        day = self.billing_day
        if self.period == MONTHLY:
            year, month = at.year, at.month
            if at < datetime(year, month, day):
                year, month = (year - 1, 12) if month == 1 else (year, month - 1)
            start = datetime(year, month, day)
            end = datetime(year + 1, 1, day) if month == 12 else datetime(year, month + 1, day)
            return start, end
        year = at.year
        if at < datetime(year, self.billing_month, day):
            year -= 1
        return datetime(year, self.billing_month, day), datetime(year + 1, self.billing_month, day)


@dataclass(frozen=True)
class TariffVersion:
    """Prices in force from ``valid_from`` until ``valid_to`` (excluded) or the next version.

    ``prices`` maps each band to its price per ladder step (one price per step, step 1
    first); ``step_limits`` are the cumulative cycle quantities at which steps 2, 3... begin
    (empty for a single step). Without ``tou`` schedule the version has exactly one band,
    which applies at all hours.
    """

    valid_from: datetime
    prices: Mapping[str, tuple[Decimal, ...]]
    step_limits: tuple[Decimal, ...] = ()
    tou: TouSchedule | None = None
    valid_to: datetime | None = None
    code: str = ""

    def __post_init__(self):
        object.__setattr__(self, "valid_from", _as_datetime(self.valid_from))
        if self.valid_to is not None:
            object.__setattr__(self, "valid_to", _as_datetime(self.valid_to))
        if not self.code:
            object.__setattr__(self, "code", _fmt_dt(self.valid_from))
        if not isinstance(self.prices, Mapping):
            raise PriceError(
                f"Prices of tariff version {self.code} must be given per band, "
                "e.g. {'flat': ('0.58',)}."
            )
        prices = {}
        for band, band_prices in self.prices.items():
            if isinstance(band_prices, (Decimal, int, str)):
                band_prices = (band_prices,)
            prices[band] = tuple(
                _as_decimal(p, f"The {BAND_LABELS.get(band, band)} price of step {i}")
                for i, p in enumerate(band_prices, 1)
            )
        object.__setattr__(self, "prices", types.MappingProxyType(prices))
        limits = tuple(
            _as_decimal(v, f"The limit of step {i}", StepLimitError)
            for i, v in enumerate(self.step_limits, 1)
        )
        object.__setattr__(self, "step_limits", limits)
        self.validate()

    @classmethod
    def flat(cls, valid_from, price, **kwargs) -> TariffVersion:
        """One price at all hours, no ladder."""
        return cls(valid_from=valid_from, prices={FLAT: (price,)}, **kwargs)

    @property
    def steps(self) -> int:
        return len(self.step_limits) + 1

    def validate(self) -> None:
        name = f"Tariff version {self.code}"
        if self.steps > MAX_STEPS:
            raise TooManyStepsError(
                f"A ladder may have at most {MAX_STEPS} steps; tariff version {self.code} "
                f"has {self.steps}."
            )
        previous = ZERO
        for i, limit in enumerate(self.step_limits, 1):
            if limit <= previous:
                raise StepLimitError(
                    f"{name}: the limit of step {i} ({limit}) must be higher than "
                    + (f"that of step {i - 1} ({previous})." if i > 1 else "zero.")
                )
            previous = limit
        if not self.prices:
            raise PriceError(f"{name} has no price.")
        for band, band_prices in self.prices.items():
            if band not in _BAND_RANK:
                raise UnknownBandError(
                    f"{name} has a price for '{band}', which is not a time-of-use band; use "
                    + ", ".join(BAND_LABELS[b] for b in BANDS)
                    + "."
                )
            label = BAND_LABELS[band]
            if len(band_prices) != self.steps:
                raise PriceError(
                    f"{name}: the {label} band has {len(band_prices)} price(s) but the ladder "
                    f"has {self.steps} step(s); give one price per step."
                )
            for i, price in enumerate(band_prices, 1):
                if price < 0:
                    raise PriceError(
                        f"{name}: the {label} price of step {i} ({price}) cannot be negative."
                    )
        if self.tou is None:
            if len(self.prices) != 1:
                raise PriceError(
                    f"{name} prices several bands ("
                    + ", ".join(BAND_LABELS[b] for b in self.prices)
                    + ") but has no time-of-use schedule saying when each applies."
                )
        else:
            missing = self.tou.bands - set(self.prices)
            if missing:
                raise UnknownBandError(
                    f"{name}: the time-of-use schedule uses the "
                    + ", ".join(BAND_LABELS[b] for b in BANDS if b in missing)
                    + " band(s), which have no price."
                )
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise TariffError(
                f"{name} ends ({_fmt_dt(self.valid_to)}) before it starts "
                f"({_fmt_dt(self.valid_from)})."
            )


@dataclass(frozen=True)
class Tariff:
    """A tariff and its effective-dated versions."""

    name: str
    versions: tuple[TariffVersion, ...]
    utility: str = ELECTRICITY
    cycle: CycleRule = field(default_factory=CycleRule)
    timezone: str = "UTC"

    def __post_init__(self):
        object.__setattr__(
            self, "versions", tuple(sorted(self.versions, key=lambda v: v.valid_from))
        )
        self.validate()

    @property
    def unit(self) -> str:
        return UNITS[self.utility]

    def validate(self) -> None:
        if self.utility not in UNITS:
            raise TariffError(
                f"Tariff '{self.name}': the utility is '{ELECTRICITY}' or '{WATER}', "
                f"not '{self.utility}'."
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise TariffError(
                f"Tariff '{self.name}': '{self.timezone}' is not a known time zone."
            ) from None
        if not self.versions:
            raise TariffError(f"Tariff '{self.name}' has no version (no prices).")
        codes = set()
        for version in self.versions:
            if version.code in codes:
                raise VersionOverlapError(
                    f"Tariff '{self.name}' has two versions named '{version.code}'."
                )
            codes.add(version.code)
        for first, second in zip(self.versions, self.versions[1:], strict=False):
            if first.valid_from == second.valid_from:
                raise VersionOverlapError(
                    f"Tariff '{self.name}': versions '{first.code}' and '{second.code}' both "
                    f"start on {_fmt_dt(first.valid_from)}."
                )
            if first.valid_to is not None and first.valid_to > second.valid_from:
                raise VersionOverlapError(
                    f"Tariff '{self.name}': versions '{first.code}' and '{second.code}' "
                    f"overlap: '{first.code}' runs until {_fmt_dt(first.valid_to)}, after "
                    f"'{second.code}' starts on {_fmt_dt(second.valid_from)}."
                )

    def compile(self) -> CompiledTariff:
        """The fast pricing object; build it once and reuse it for every meter."""
        return CompiledTariff(self)


# === RESULTS AND STATE === #


class CostLine(NamedTuple):
    """One priced line of an interval: ``quantity`` of ``band`` in ladder ``step``."""

    band: str
    step: int  # 1 to 8
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # 4 decimals, cumulative rounding (see module docstring)
    version: str  # code of the tariff version
    cycle_start: datetime


class CycleState(NamedTuple):
    """What a meter has consumed and been charged in the current settlement cycle.

    The caller stores it (``to_json``) and passes it to the next :meth:`price_interval`;
    it is never modified in place. ``lines`` maps ``(band, step)`` to
    ``(quantity, exact cost, rounded cost)`` accumulated in the cycle.
    """

    cycle_start: datetime
    cycle_end: datetime
    consumption: Decimal
    charged: Decimal
    lines: Mapping[tuple[str, int], tuple[Decimal, Decimal, Decimal]]
    priced_until: datetime | None

    def to_json(self) -> dict:
        """A JSON-serialisable dict (decimals and times as strings)."""
        return {
            "cycle_start": self.cycle_start.isoformat(),
            "cycle_end": self.cycle_end.isoformat(),
            "consumption": str(self.consumption),
            "charged": str(self.charged),
            "lines": [
                [band, step, str(q), str(cost), str(rounded)]
                for (band, step), (q, cost, rounded) in self.lines.items()
            ],
            "priced_until": self.priced_until.isoformat() if self.priced_until else None,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> CycleState:
        until = data.get("priced_until")
        return cls(
            cycle_start=datetime.fromisoformat(data["cycle_start"]),
            cycle_end=datetime.fromisoformat(data["cycle_end"]),
            consumption=Decimal(data["consumption"]),
            charged=Decimal(data["charged"]),
            lines={
                (band, int(step)): (Decimal(q), Decimal(cost), Decimal(rounded))
                for band, step, q, cost, rounded in data["lines"]
            },
            priced_until=datetime.fromisoformat(until) if until else None,
        )

    def consumption_by_band(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = {}
        for (band, _step), (q, _cost, _rounded) in self.lines.items():
            result[band] = result.get(band, ZERO) + q
        return result


class PricedInterval(NamedTuple):
    """Result of :meth:`CompiledTariff.price_interval`."""

    lines: tuple[CostLine, ...]
    amount: Decimal  # sum of the lines' amounts, 4 decimals
    state: CycleState  # the state to store for the next interval
    closed_cycles: tuple[CycleState, ...]  # cycles that ended inside this interval


_new_line = tuple.__new__  # NamedTuple instances without the keyword-parsing __new__


def _charge_bands(book, table, items, code, cycle_start):
    """Charge ``items`` (band, quantity), all within one ladder step, on the cycle's ``book``
    (updated in place): one cost line per band and their amount.  Each band's cost is
    rounded on its cumulative cost in the cycle (B1), so the amounts of any partition of a
    cycle add up to the amount of the whole.  ``table``: the step's (price, book key, step
    number) by band."""
    lines = []
    amount = ZERO_MONEY
    for band, q in items:
        price, key, number = table[band]
        previous = book.get(key)
        if previous is None:
            cost = q * price
            line_amount = paid = _to_money(cost, MONEY_QUANTUM)
            book[key] = (q, cost, paid)
        else:
            cost = previous[1] + q * price
            paid = _to_money(cost, MONEY_QUANTUM)
            book[key] = (previous[0] + q, cost, paid)
            line_amount = paid - previous[2]
        amount += line_amount
        lines.append(_new_line(CostLine, (band, number, q, price, line_amount, code, cycle_start)))
    return lines, amount


class PricedRun(NamedTuple):
    """Result of :meth:`CompiledTariff.price_run`: what :class:`PricedInterval` gives for
    each interval, by column (entry ``i`` of ``lines``, ``amounts`` and ``closed_cycles``
    is interval ``i``), without the state after each one: only the run's last state."""

    lines: tuple[tuple[CostLine, ...], ...]  # the lines of each interval
    amounts: tuple[Decimal, ...]  # the amount of each interval, 4 decimals
    closed_cycles: tuple[tuple[CycleState, ...], ...]  # cycles that ended in each interval
    amount: Decimal  # sum of the intervals' amounts, 4 decimals
    state: CycleState | None  # the state after the last interval (to store)

    def intervals(self):
        """``(lines, amount, closed_cycles)`` of each interval, in order."""
        return zip(self.lines, self.amounts, self.closed_cycles, strict=True)


def _one_run(result: PricedInterval) -> PricedRun:
    """The run of one interval priced as ``result``."""
    amount = result.amount
    return _new_line(
        PricedRun, ((result.lines,), (amount,), (result.closed_cycles,), amount, result.state)
    )


# === COMPILED TARIFF === #


class _Version:
    """A tariff version prepared for pricing (plain attributes, precomputed tables)."""

    __slots__ = (
        "code",
        "days",
        "end",
        "limits",
        "period",
        "prices",
        "seasons",
        "single_band",
        "start",
        "table",
    )

    def __init__(self, version: TariffVersion, end: datetime):
        self.code = version.code
        self.start = version.valid_from
        self.end = end
        self.limits = (*version.step_limits, _INFINITY)  # the last step has no end
        self.prices = dict(version.prices)
        # Per step (0-based): {band: (price, book key, step number)}.
        self.table = tuple(
            {
                band: (prices[step], (band, step + 1), step + 1)
                for band, prices in self.prices.items()
            }
            for step in range(len(self.limits))
        )
        self.single_band = next(iter(self.prices)) if version.tou is None else None
        if version.tou is None:
            self.seasons = ()
        else:
            ordered = sorted(version.tou.seasons, key=lambda s: (s.start_month, s.start_day))
            self.seasons = (
                tuple(s.start_month * 100 + s.start_day for s in ordered),
                tuple(s.day_table() for s in ordered),
            )
        self.days: dict[date, tuple] = {}
        # the period of the last lookup (shared by the meters priced one after the other)
        self.period: tuple[datetime, datetime, str | None] = _NO_PERIOD

    def period_at(self, at: datetime) -> tuple[datetime, datetime, str]:
        """``(start, end, band)`` of the time-of-use period around ``at`` (cached)."""
        day = at.date()
        table = self.days.get(day)
        if table is None:
            table = self._periods(day)
        starts, periods = table
        self.period = period = periods[_bisect_right(starts, at) - 1]
        return period

    def _periods(self, day: date) -> tuple:
        """(starts, periods) of ``day``: the periods ``(start, end, band)`` as datetimes."""
        keys, tables = self.seasons
        index = _bisect_right(keys, day.month * 100 + day.day) - 1
        starts, ends, bands = tables[index]  # index -1: the last season, over the new year
        midnight = datetime.combine(day, time())
        periods = tuple(
            (
                datetime.combine(day, period_start),
                midnight + timedelta(days=1)
                if period_end is _MIDNIGHT
                else datetime.combine(day, period_end),
                band,
            )
            for period_start, period_end, band in zip(starts, ends, bands, strict=True)
        )
        if len(self.days) > 4096:
            self.days.clear()
        self.days[day] = table = (tuple(p[0] for p in periods), periods)
        return table


class CompiledTariff:
    """Prices intervals of consumption for one :class:`Tariff` (see the module docstring).

    Not thread-safe for construction, safe to share for pricing (only caches are written).
    """

    def __init__(self, tariff: Tariff):
        tariff.validate()
        self.tariff = tariff
        self.cycle = tariff.cycle
        self.zone = ZoneInfo(tariff.timezone)
        versions = tariff.versions
        self.versions = tuple(
            _Version(
                v,
                v.valid_to
                or (versions[i + 1].valid_from if i + 1 < len(versions) else _END_OF_TIME),
            )
            for i, v in enumerate(versions)
        )
        self._starts = tuple(v.start for v in self.versions)
        # (cycle start, cycle end, version, from, until) of the inline case of
        # price_interval: the cycle and version of the last interval priced (a cache)
        self._window = (_END_OF_TIME, _END_OF_TIME, self.versions[-1], _END_OF_TIME, _END_OF_TIME)

    # --- lookups --- #

    def _version(self, at: datetime) -> _Version:
        index = bisect.bisect_right(self._starts, at) - 1
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
        # Run in the exact decimal context, entered cheaply: a contextvars.Context in
        # which it is current (setcontext() twice per interval costs more than the rest
        # of a common interval). That Context can be entered by one thread at a time:
        # another thread, meanwhile, switches the decimal context itself.
        try:
            return _run_exact(_price_one, self, state, start, end, consumption, None)
        except RuntimeError:  # the Context is in use; (or an error of _price: raised again)
            saved = _getcontext()
            _setcontext(_EXACT)
            try:
                return self._price(state, start, end, consumption)
            finally:
                _setcontext(saved)

    def _price_one(self, state, start, end, consumption, run):
        """:meth:`price_interval` (``run`` is ``None``) or :meth:`price_run` of one
        interval (``run`` is its ``split_unpriced``; ``None`` is returned when registers
        must be split by time), in the exact decimal context: the common interval with
        the fewest operations, any other by :meth:`_price`.

        The common interval (most intervals of a meter read every 15 or 30 minutes): the
        state is in the window's settlement cycle and charged up to ``start`` at most, the
        interval is inside the window (one cycle, one version) and its consumption is in
        one band -- a ``Decimal`` total inside one time-of-use period (or a version with
        one band), or registers of which one has moved -- within one ladder step; or it
        has no consumption. :meth:`_price` charges such an interval inline: one line
        ``q x price`` of that (band, step), rounded on the cost to date of the (band,
        step). The same operations, in the same order, on the same operands are done
        here, so the lines, amount and state are the same to the last digit and exponent
        (``tests/pure/test_tariff_one_interval.py``). What is saved: the result is built
        directly (no :class:`PricedInterval` for :meth:`price_run` to unpack), a register
        that did not move costs one test (is it a band), the one that moved is checked
        once, and the state's book is copied with ``dict.copy``.

        Registers of several bands and a total over two periods go straight to the paths
        of :meth:`_price` that price them (:meth:`_price_bands`, :meth:`_price_split`)
        once their values are known to be good. Anything else -- no state yet, an aware
        time, a value to check, an unknown or unpriced band, a step, version or cycle
        boundary inside the interval -- goes to :meth:`_price` from the start, which
        raises the errors it always raised.
        """
        if state is None:
            return self._price_other(state, start, end, consumption, run)
        cycle_start, cycle_end, total, charged, book, until = state
        lo, hi, version, first, last = self._window
        try:
            common = (
                (cycle_start is lo or cycle_start == lo)
                and (until is None or until <= start)
                and first <= start <= end <= last
                and start < last
                and (cycle_end is hi or cycle_end == hi)
                and book.__class__ is dict
            )
        except TypeError:  # an aware time (_price converts it)
            common = False
        if not common:
            return self._price_other(state, start, end, consumption, run)
        try:
            kind = consumption.__class__
            if kind is dict:
                q = items = None
                for name, value in consumption.items():
                    if value:
                        if q is None:
                            band, q = name, value
                        elif items is None:
                            items = [(band, q), (name, value)]
                        else:
                            items.append((name, value))
                    elif name not in _BAND_RANK:  # (an unknown band: _price says so)
                        return self._price_other(state, start, end, consumption, run)
                if items is not None:
                    return self._price_several(state, version, start, end, consumption, items, run)
                if q is None:  # no register moved
                    q = added = ZERO
                else:
                    if (
                        q.__class__ is not Decimal
                        or not q.is_finite()
                        or q.is_signed()
                        or band not in (_BAND_RANK if version.single_band else version.prices)
                    ):
                        return self._price_other(state, start, end, consumption, run)
                    band = version.single_band or band  # (one band: any register is it)
                    added = ZERO + q  # (as _price sums the registers)
            elif kind is Decimal:
                q = added = consumption
                if not q.is_finite() or q.is_signed():
                    return self._price_other(state, start, end, consumption, run)
                band = version.single_band
                if band is None:
                    period = version.period
                    if not period[0] <= start < period[1]:
                        period = version.period_at(start)
                    if end > period[1]:  # several time-of-use periods: split by time
                        result = self._price_split(state, version, start, end, q, period)
                        return result if run is None else _one_run(result)
                    band = period[2]
            else:
                return self._price_other(state, start, end, consumption, run)
            if not q:  # as _price_nothing
                new_state = _new_line(
                    CycleState,
                    (cycle_start, cycle_end, total + added, charged + ZERO_MONEY, _copy(book), end),
                )
                if run is None:
                    return _new_line(PricedInterval, ((), ZERO_MONEY, new_state, ()))
                return _new_line(PricedRun, (((),), (ZERO_MONEY,), ((),), ZERO_MONEY, new_state))
            limits = version.limits  # (with +Infinity after the last limit)
            step = _bisect_right(limits, total)
            new_total = total + added
            if new_total > limits[step]:  # a step boundary inside the interval
                return self._price_other(state, start, end, consumption, run)
            price, key, number = version.table[step][band]
            book = _copy(book)
            previous = book.get(key)
            if previous is None:
                cost = q * price
                amount = paid = _to_money(cost, MONEY_QUANTUM)
                book[key] = (q, cost, paid)
            else:
                cost = previous[1] + q * price
                paid = _to_money(cost, MONEY_QUANTUM)
                amount = paid - previous[2]
                book[key] = (previous[0] + q, cost, paid)
            line = _new_line(CostLine, (band, number, q, price, amount, version.code, lo))
            if not amount:  # the interval's amount is ZERO_MONEY + the line's (sign of 0)
                amount = ZERO_MONEY + amount
            new_state = _new_line(CycleState, (lo, hi, new_total, charged + amount, book, end))
            if run is None:
                return _new_line(PricedInterval, ((line,), amount, new_state, ()))
            return _new_line(PricedRun, (((line,),), (amount,), ((),), amount, new_state))
        except (decimal.Inexact, decimal.Overflow):
            raise PrecisionError(
                "The consumption or the prices have too many digits to be charged exactly."
            ) from None

    def _price_several(self, state, version, start, end, consumption, items, run):
        """Registers of several bands (:meth:`_price_one`): by :meth:`_price_bands` when
        their values are good and priced, as :meth:`_price` would, else by :meth:`_price`."""
        prices = version.prices
        if version.single_band:  # (_price adds them up into the one band)
            return self._price_other(state, start, end, consumption, run)
        for name, value in items:
            if (
                value.__class__ is not Decimal
                or not value.is_finite()
                or value.is_signed()
                or name not in prices
            ):
                return self._price_other(state, start, end, consumption, run)
        try:
            result = self._price_bands(state, version, start, end, consumption, items)
        except (decimal.Inexact, decimal.Overflow):
            raise PrecisionError(
                "The consumption or the prices have too many digits to be charged exactly."
            ) from None
        return result if run is None else _one_run(result)

    def _price_other(self, state, start, end, consumption, run):
        """An interval that is not the common one (:meth:`_price_one`), by :meth:`_price`."""
        if run is None:
            return self._price(state, start, end, consumption)
        try:
            result = self._price(state, start, end, consumption)
        except UnknownBandError:
            if not run or consumption.__class__ is Decimal:
                raise
            return None  # (price_run splits the registers' total, as it always did)
        return _one_run(result)

    def _price(self, state, start, end, consumption) -> PricedInterval:
        """:meth:`price_interval` in the exact decimal context."""
        # The common case is inline (the "window"): one cycle and one version, known from
        # the previous call, nothing charged after ``start``, one band, one ladder step.
        # Anything else goes to the paths that split by time; the results are the same
        # (tests/pure/test_tariff_fast_paths.py).
        if state is None:
            state = self.new_state(start)
        kind = consumption.__class__
        if kind is not Decimal and kind is not dict and not hasattr(consumption, "items"):
            consumption = _check_quantity(consumption, None)  # an int total, or refused
            kind = Decimal
        try:
            cycle_start, cycle_end, total, charged, book, until = state
            lo, hi, version, first, last = self._window
            try:
                inside = first <= start <= end <= last and start < last
            except TypeError:  # an aware time (a naive one cannot be compared with it)
                start, end = _local(start, self.zone), _local(end, self.zone)
                inside = first <= start <= end <= last and start < last
            if not (
                inside
                and (until is None or until <= start)
                and (cycle_start is lo or cycle_start == lo)
                and (cycle_end is hi or cycle_end == hi)
            ):
                if not self._fast_window(state, start, end):
                    return self._price_general(state, start, end, consumption)
                lo, hi, version, first, last = self._window
            if kind is Decimal:
                q = added = consumption
                if not q.is_finite() or q.is_signed():
                    q = added = _check_quantity(q, None)
                band = version.single_band
                if band is None:
                    period = version.period
                    if not period[0] <= start < period[1]:
                        period = version.period_at(start)
                    if end > period[1]:  # several time-of-use periods: split by time
                        return self._price_split(state, version, start, end, q, period)
                    band = period[2]
                if not q:
                    return self._price_nothing(state, end, added)
            else:
                prices = version.prices
                single = version.single_band
                band = q = items = None
                added = ZERO
                for name, value in consumption.items():
                    if not value:  # most registers do not move in a 30-minute interval
                        if name not in _BAND_RANK:
                            _check_band(name)
                        continue
                    priced = name in prices
                    if not priced and name not in _BAND_RANK:
                        _check_band(name)
                    if value.__class__ is not Decimal or not value.is_finite() or value.is_signed():
                        value = _check_quantity(value, name)
                    if single:
                        name = single
                    elif not priced:
                        _missing_band(name, version)
                    if band is None:
                        band, q = name, value
                    elif items is None:
                        items = [(band, q), (name, value)]
                    else:
                        items.append((name, value))
                    added += value
                if items is not None:
                    if not single:
                        return self._price_bands(state, version, start, end, consumption, items)
                    q = added
                elif band is None:
                    return self._price_nothing(state, end, added)
            # One band: one line, unless a ladder step ends inside the interval.
            limits = version.limits  # (with +Infinity after the last limit)
            step = _bisect_right(limits, total)
            new_total = total + added
            if new_total > limits[step]:
                lines, new_state = self._charge(state, [(version, band, q)], end)
                return _new_line(
                    PricedInterval, (lines, new_state.charged - charged, new_state, ())
                )
            price, key, number = version.table[step][band]
            previous = book.get(key)
            if previous is None:
                cost = q * price
                amount = paid = _to_money(cost, MONEY_QUANTUM)
                entry = (q, cost, paid)
            else:
                cost = previous[1] + q * price
                paid = _to_money(cost, MONEY_QUANTUM)
                amount = paid - previous[2]
                entry = (previous[0] + q, cost, paid)
            book = dict(book)
            book[key] = entry
            line = _new_line(CostLine, (band, number, q, price, amount, version.code, lo))
            if not amount:  # the interval's amount is ZERO_MONEY + the line's (sign of 0)
                amount = ZERO_MONEY + amount
            return _new_line(
                PricedInterval,
                (
                    (line,),
                    amount,
                    _new_line(CycleState, (lo, hi, new_total, charged + amount, book, end)),
                    (),
                ),
            )
        except (decimal.Inexact, decimal.Overflow):
            raise PrecisionError(
                "The consumption or the prices have too many digits to be charged exactly."
            ) from None

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
        each interval in turn with the state of the previous one, and the same last state
        (``tests/pure/test_tariff_run.py``). Faster from two intervals on (one interval
        is priced by the one-interval path): the exact decimal context is entered once,
        the state is copied once and updated in place, only the last state is built, and
        the cycle and version window, its ladder step and prices are looked up once for as
        long as the intervals stay in them. An error in any interval raises and prices
        nothing (the state given is left as it was).
        """
        if intervals.__class__ is not list and intervals.__class__ is not tuple:
            intervals = list(intervals)  # (an iterator could not be priced again below)
        if len(intervals) == 1:  # the most common run: priced by the one-interval path
            start, end, consumption = intervals[0]
            try:
                run = _run_exact(_price_one, self, state, start, end, consumption, split_unpriced)
            except RuntimeError:  # the Context is in use: priced below
                pass
            else:
                if run is not None:
                    return run
                # registers in a band that the version does not price: their total
                total = _register_total(consumption)
                return _one_run(self.price_interval(state, start, end, total))
        try:
            return _run_exact(_price_run, self, state, intervals, split_unpriced)
        except RuntimeError:  # the Context is in use; (or an error of _run: raised again)
            saved = _getcontext()
            _setcontext(_EXACT)
            try:
                return self._run(state, intervals, split_unpriced)
            finally:
                _setcontext(saved)

    def _run(self, state, intervals, split_unpriced) -> PricedRun:
        """:meth:`price_run` in the exact decimal context.

        The common interval (the inline case of :meth:`_price`: inside the window of one
        cycle and one version, one band, one ladder step, nothing charged after its start)
        is charged here, into a book of the run's own; any other goes through :meth:`_price`
        with the state so far, and the run goes on from the state it returns.
        """
        if not intervals:
            return _new_line(PricedRun, ((), (), (), ZERO_MONEY, state))
        if state is None:
            state = self.new_state(intervals[0][0])
        cycle_start, cycle_end, total, charged, book, until = state
        charged_before = charged
        book = dict(book)  # the run's own: changed in place, handed out in the last state
        lines_out, amounts, closed_out = [], [], []  # (the columns of the result)
        add_lines, add_amount, add_closed = lines_out.append, amounts.append, closed_out.append
        closed = False
        window = None  # the window (cycle, version) that the locals below come from
        lo = hi = first = last = floor = limit = period = None
        version = limits = tables = table = code = single = prices = None
        fits = stale = True  # stale: fits, step, limit and table to compute from the state
        try:
            for start, end, consumption in intervals:
                if self._window is not window:  # the cycle or version changed
                    window = self._window
                    lo, hi, version, first, last = window
                    limits = version.limits
                    tables = version.table
                    code = version.code
                    single = version.single_band
                    prices = version.prices
                    period = version.period  # (the run's own from now on)
                    stale = True
                if stale:
                    fits = (cycle_start is lo or cycle_start == lo) and (
                        cycle_end is hi or cycle_end == hi
                    )
                    try:  # an interval starts at floor or later: in the window, not charged
                        floor = first if until is None or until < first else until
                    except TypeError:  # (an aware time: _price converts it)
                        floor = None
                    step = _bisect_right(limits, total)
                    limit = limits[step]
                    table = tables[step]
                    stale = False
                band = None  # the one band of an inline interval; None: _price prices it
                items = None  # [(band, q)] of the registers of several bands
                try:
                    inline = fits and floor <= start <= end <= last and start < last
                except TypeError:  # an aware time: _price converts it
                    inline = False
                if inline:
                    kind = consumption.__class__
                    if kind is Decimal:
                        q = added = consumption
                        if q.is_finite() and not q.is_signed():
                            band = single
                            if band is None:
                                if not period[0] <= start < period[1]:
                                    period = version.period_at(start)
                                if end <= period[1]:  # else several periods: a split
                                    band = period[2]
                    elif kind is dict:
                        q = None
                        for name, value in consumption.items():
                            if not value:
                                if name in _BAND_RANK:
                                    continue  # (most registers do not move in an interval)
                            elif (
                                value.__class__ is Decimal
                                and value.is_finite()
                                and not value.is_signed()
                                and (single or name in prices)
                            ):
                                if q is None:
                                    band, q = single or name, value
                                    continue
                                if not single:  # registers of several bands
                                    if items is None:
                                        items = [(band, q), (name, value)]
                                    else:
                                        items.append((name, value))
                                    continue
                            # an unknown or unpriced band, a value to check, or several
                            # registers of a one-band version: for _price
                            band = None
                            break
                        else:
                            if q is None:  # no consumption at all (band: any but None)
                                band = single or FLAT
                                q = added = ZERO
                            elif items is None:
                                added = ZERO + q
                            else:
                                added = ZERO
                                for _band, value in items:
                                    added += value
                if band is not None:
                    if not q:
                        total = total + added
                        charged = charged + ZERO_MONEY
                        until = floor = end
                        add_lines(())
                        add_amount(ZERO_MONEY)
                        add_closed(())
                        continue
                    new_total = total + added
                    if items is not None and not new_total > limit:
                        # several bands in one ladder step: one line per band, as _price_bands
                        lines, amount = _charge_bands(book, table, items, code, cycle_start)
                        charged = charged + amount
                        total = new_total
                        until = floor = end
                        add_lines(tuple(lines))
                        add_amount(amount)
                        add_closed(())
                        if new_total == limit:  # the next step begins
                            stale = True
                        continue
                    if items is None and not new_total > limit:
                        price, key, number = table[band]
                        previous = book.get(key)
                        if previous is None:
                            cost = q * price
                            amount = paid = _to_money(cost, MONEY_QUANTUM)
                            book[key] = (q, cost, paid)
                        else:
                            cost = previous[1] + q * price
                            paid = _to_money(cost, MONEY_QUANTUM)
                            amount = paid - previous[2]
                            book[key] = (previous[0] + q, cost, paid)
                        line = _new_line(CostLine, (band, number, q, price, amount, code, lo))
                        if not amount:  # (the sign of 0, as price_interval gives it)
                            amount = ZERO_MONEY + amount
                        charged = charged + amount
                        total = new_total
                        until = floor = end
                        add_lines((line,))
                        add_amount(amount)
                        add_closed(())
                        if new_total == limit:  # the next step begins
                            stale = True
                        continue
                # anything else: the one-interval path, from the state so far
                state = _new_line(CycleState, (cycle_start, cycle_end, total, charged, book, until))
                try:
                    result = _price(self, state, start, end, consumption)
                except UnknownBandError:
                    if not split_unpriced or consumption.__class__ is Decimal:
                        raise
                    result = _price(self, state, start, end, _register_total(consumption))
                add_lines(result.lines)
                add_amount(result.amount)
                add_closed(result.closed_cycles)
                if result.closed_cycles:
                    closed = True
                # its book is a new dict (every pricing path copies it): the run's own
                cycle_start, cycle_end, total, charged, book, until = result.state
                stale = True
            state = _new_line(CycleState, (cycle_start, cycle_end, total, charged, book, until))
        except (decimal.Inexact, decimal.Overflow):
            raise PrecisionError(
                "The consumption or the prices have too many digits to be charged exactly."
            ) from None
        if closed:
            amount = ZERO_MONEY
            for value in amounts:
                amount += value
        else:  # the same: every interval added a 4-decimal amount to charged
            amount = charged - charged_before
        return _new_line(
            PricedRun, (tuple(lines_out), tuple(amounts), tuple(closed_out), amount, state)
        )

    def _fast_window(self, state, start, end) -> bool:
        """Point the window of :meth:`price_interval` at the cycle and version in force at
        ``start``; whether the interval and the state fit in it (the inline case)."""
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

    def _price_nothing(self, state, end, added) -> PricedInterval:
        """No consumption (inline case): no line, the state moves on to ``end``."""
        cycle_start, cycle_end, total, charged, book, _until = state
        new_state = CycleState(
            cycle_start, cycle_end, total + added, charged + ZERO_MONEY, dict(book), end
        )
        return PricedInterval((), ZERO_MONEY, new_state, ())

    def _price_bands(self, state, version, start, end, consumption, items) -> PricedInterval:
        """Registers of several bands (inline case): one line per band in one ladder step,
        else in time order by the general path."""
        cycle_start, cycle_end, total, charged, book, _until = state
        added = ZERO
        for _band, q in items:
            added += q
        limits = version.limits
        step = _bisect_right(limits, total)
        new_total = total + added
        if new_total > limits[step]:
            # a step boundary between bands: time order needed
            return self._price_general(state, start, end, consumption)
        book = dict(book)
        table = version.table[step]
        code = version.code
        lines, amount = _charge_bands(book, table, items, code, cycle_start)
        new_state = _new_line(
            CycleState, (cycle_start, cycle_end, new_total, charged + amount, book, end)
        )
        return _new_line(PricedInterval, (tuple(lines), amount, new_state, ()))

    def _price_split(self, state, version, start, end, q, period) -> PricedInterval:
        """A total over several time-of-use periods of one version and one cycle (``period``
        is the one around ``start``): split by time as :meth:`_price_general` does, without
        its checks (done by the caller) and its cycle and version lookups."""
        bands = []  # cut at the ends of the periods, like _timeline
        weights = []
        first = period
        t = start
        while True:
            period_end = period[1]
            if end <= period_end:
                bands.append(period[2])
                weights.append((end - t) // _US)
                break
            bands.append(period[2])
            weights.append((period_end - t) // _US)
            t = period_end
            period = version.period_at(t)
        version.period = first  # the next meter's interval most likely starts in it too
        if not q:
            lines, new_state = self._charge(state, (), end)
            return _new_line(PricedInterval, (lines, ZERO_MONEY, new_state, ()))
        if len(bands) == 2 and bands[0] != bands[1]:
            result = self._price_two(state, version, end, q, bands, weights)
            if result is not None:
                return result
        parts = _apportion(q, weights)
        pieces = [(version, band, part) for band, part in zip(bands, parts, strict=True)]
        lines, new_state = self._charge(state, pieces, end)
        amount = ZERO_MONEY
        for line in lines:
            amount += line.amount
        return _new_line(PricedInterval, (lines, amount, new_state, ()))

    def _price_two(self, state, version, end, q, bands, weights) -> PricedInterval | None:
        """Two periods of different bands in one ladder step: the result of
        :meth:`_charge` with the shares of :func:`_apportion`, computed directly (``None``
        when they are not that case)."""
        own = _exponent(q)
        if own > 0:
            return None  # (_charge would write the shares 0 + share: "20", not "2E+1")
        w1, w2 = weights
        first, second = _apportion2(q, own, w1, w2)
        cycle_start, cycle_end, total, charged, book, _until = state
        limits = version.limits
        step = _bisect_right(limits, total)
        new_total = total + first + second
        if new_total > limits[step]:
            return None  # a step boundary inside the interval
        table = version.table[step]
        code = version.code
        book = dict(book)
        lines = []
        amount = ZERO_MONEY
        for band, part in ((bands[0], first), (bands[1], second)):
            if not part:
                continue
            price, key, number = table[band]
            previous = book.get(key)
            if previous is None:
                cost = part * price
                line_amount = paid = _to_money(cost, MONEY_QUANTUM)
                book[key] = (part, cost, paid)
            else:
                cost = previous[1] + part * price
                paid = _to_money(cost, MONEY_QUANTUM)
                line_amount = paid - previous[2]
                book[key] = (previous[0] + part, cost, paid)
            amount += line_amount
            charged += line_amount
            lines.append(
                _new_line(CostLine, (band, number, part, price, line_amount, code, cycle_start))
            )
        new_state = _new_line(CycleState, (cycle_start, cycle_end, new_total, charged, book, end))
        return _new_line(PricedInterval, (tuple(lines), amount, new_state, ()))

    def _charge(self, state: CycleState, pieces, until: datetime):
        """Charge ordered pieces ``(version, band, q)`` of one cycle; new lines and state."""
        total = state.consumption
        quantities: dict[tuple, Decimal] = {}
        for version, band, q in pieces:
            limits = version.limits
            step = _bisect_right(limits, total)
            last = len(limits) - 1  # (the last limit is +Infinity)
            while step < last:
                room = limits[step] - total
                if q <= room:
                    break
                key = (version, band, step)
                quantities[key] = quantities.get(key, ZERO) + room
                total += room
                q -= room
                step += 1
            key = (version, band, step)
            quantities[key] = quantities.get(key, ZERO) + q
            total += q
        cycle_start = state.cycle_start
        book = dict(state.lines)
        charged = state.charged
        lines = []
        for (version, band, step), q in quantities.items():
            if not q:
                continue
            price, key, number = version.table[step][band]
            previous = book.get(key)
            if previous is None:
                cost = q * price
                rounded = _to_money(cost, MONEY_QUANTUM)
                amount = rounded
                book[key] = (q, cost, rounded)
            else:
                cost = previous[1] + q * price
                rounded = _to_money(cost, MONEY_QUANTUM)
                amount = rounded - previous[2]
                book[key] = (previous[0] + q, cost, rounded)
            charged += amount
            lines.append(
                _new_line(CostLine, (band, number, q, price, amount, version.code, cycle_start))
            )
        new_state = _new_line(
            CycleState, (cycle_start, state.cycle_end, total, charged, book, until)
        )
        return tuple(lines), new_state

    # --- general path: splits by time --- #

    def _timeline(self, start: datetime, end: datetime):
        """Periods ``[t0, t1, version, band, cycle_start, cycle_end]`` covering the interval,
        cut at time-of-use period ends, midnight, version changes and cycle boundaries."""
        pieces = []
        cycle_start, cycle_end = self.cycle.bounds(start)
        t = start
        while True:
            if t >= cycle_end:
                cycle_start, cycle_end = self.cycle.bounds(t)
            version = self._version(t)
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

    def _price_general(self, state, start, end, consumption) -> PricedInterval:
        """Any interval: checks it, cuts it by time and charges the pieces in time order."""
        if end < start:
            raise IntervalError(
                f"The reading of {_fmt_dt(end)} is earlier than the previous one "
                f"({_fmt_dt(start)})."
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
        registers = consumption.__class__ is not Decimal
        timeline = self._timeline(start, end)
        weights = [(t1 - t0) // _US for t0, t1, *_rest in timeline]
        shares = []  # (t0, band rank, version, band, q, cycle_start)
        if registers:
            for band, q in sorted(consumption.items(), key=lambda i: _band_rank(i[0])):
                q = _check_quantity(q, band)
                if not q:
                    continue
                chosen = [
                    i
                    for i, (_t0, _t1, version, period_band, *_r) in enumerate(timeline)
                    if version.single_band or period_band == band
                ] or list(range(len(timeline)))
                parts = _apportion(q, [weights[i] for i in chosen])
                for i, part in zip(chosen, parts, strict=True):
                    t0, _t1, version, _band, cycle_start, _end = timeline[i]
                    priced = version.single_band or band
                    if priced not in version.prices:
                        _missing_band(band, version)
                    shares.append((t0, _BAND_RANK[band], version, priced, part, cycle_start))
        else:
            q = _check_quantity(consumption, None)
            if q:
                parts = _apportion(q, weights)
                for (t0, _t1, version, band, cycle_start, _end), part in zip(
                    timeline, parts, strict=True
                ):
                    shares.append((t0, _BAND_RANK[band], version, band, part, cycle_start))
        shares.sort(key=lambda s: (s[0], s[1]))
        lines = []
        closed = []
        cycles = []
        for *_head, cycle_start, cycle_end in timeline:
            if not cycles or cycles[-1][0] != cycle_start:
                cycles.append((cycle_start, cycle_end))
        for cycle_start, cycle_end in cycles:
            if state.cycle_start != cycle_start:
                closed.append(state._replace(priced_until=state.cycle_end))
                state = CycleState(cycle_start, cycle_end, ZERO, ZERO_MONEY, {}, None)
            pieces = [(s[2], s[3], s[4]) for s in shares if s[5] == cycle_start]
            new_lines, state = self._charge(state, pieces, min(end, cycle_end))
            lines.extend(new_lines)
        state = state._replace(priced_until=end)
        amount = sum((line.amount for line in lines), ZERO_MONEY)
        return PricedInterval(tuple(lines), amount, state, tuple(closed))


_price = CompiledTariff._price
_price_one = CompiledTariff._price_one
_price_run = CompiledTariff._run


# === MODULE-LEVEL API === #


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


# === INTERNALS === #


def _band_rank(band: str) -> int:
    _check_band(band)
    return _BAND_RANK[band]


def _check_band(band: str) -> None:
    if band not in _BAND_RANK:
        raise UnknownBandError(
            f"The reading has consumption in '{band}', which is not a time-of-use band; "
            "expected " + ", ".join(BAND_LABELS[b] for b in BANDS) + "."
        )


def _missing_band(band: str, version: _Version):
    _check_band(band)
    raise UnknownBandError(
        f"The reading has consumption in the {BAND_LABELS[band]} band, which tariff version "
        f"{version.code} does not price."
    )


def _register_total(registers: Mapping) -> Decimal:
    """The total of time-of-use registers (to split by time when they cannot be priced)."""
    total = ZERO
    for value in registers.values():
        if value:
            total += value
    return total


def _check_quantity(q, band: str | None) -> Decimal:
    what = f"Consumption in the {BAND_LABELS.get(band, band)} band" if band else "Consumption"
    if isinstance(q, bool) or not isinstance(q, (Decimal, int)):
        raise ConsumptionError(f"{what} must be an exact decimal number, not {q!r}.")
    q = Decimal(q)
    if not q.is_finite():
        raise ConsumptionError(f"{what} must be a finite number, not {q}.")
    if q < 0:
        raise NegativeConsumptionError(
            f"{what} cannot be negative ({q}); check the meter readings for a rollback or "
            "a register rollover."
        )
    return q


def _apportion(q: Decimal, weights: list[int]) -> list[Decimal]:
    """Split ``q`` in proportion to integer ``weights``, exactly (largest remainder).

    Shares are multiples of 10^-6 (or of q's own last digit if finer) and add up to ``q``;
    equal remainders go to the earlier share. All weights zero: the first share takes all.
    """
    own = _exponent(q)
    exponent = min(own, -SPLIT_PLACES)
    units = int(q.scaleb(-exponent))
    whole = sum(weights)
    if whole == 0:
        weights = [1] + [0] * (len(weights) - 1)
        whole = 1
    base = [units * w // whole for w in weights]
    left = units - sum(base)
    if left:
        by_remainder = sorted(range(len(weights)), key=lambda i: (-(units * weights[i] % whole), i))
        for i in by_remainder[:left]:
            base[i] += 1
    step = 10 ** (own - exponent)  # shares that fit q's own digits keep them ("1.50", not
    return [  # "1.500000")
        Decimal(b // step).scaleb(own) if b % step == 0 else Decimal(b).scaleb(exponent)
        for b in base
    ]


def _apportion2(q: Decimal, own: int, w1: int, w2: int) -> tuple[Decimal, Decimal]:
    """``_apportion(q, [w1, w2])`` (``own``: q's exponent, at most 0; ``w1`` > 0)."""
    if own >= -SPLIT_PLACES:
        exponent = -SPLIT_PLACES
        units = int(q * _MICRO)
    else:
        exponent = own
        units = int(q.scaleb(-own))
    whole = w1 + w2
    b1 = units * w1 // whole
    b2 = units * w2 // whole
    if b1 + b2 != units:  # one unit left: to the larger remainder, the first if equal
        if units * w1 % whole >= units * w2 % whole:
            b1 += 1
        else:
            b2 += 1
    if exponent == own:
        return Decimal(b1).scaleb(own), Decimal(b2).scaleb(own)
    step = 10 ** (own - exponent)
    quantum = _QUANTUM[own]
    micro = _QUANTUM[exponent]
    return (
        Decimal(b1 // step) * quantum if b1 % step == 0 else Decimal(b1) * micro,
        Decimal(b2 // step) * quantum if b2 % step == 0 else Decimal(b2) * micro,
    )


_MICRO = Decimal(10**SPLIT_PLACES)
_QUANTUM = {e: Decimal(1).scaleb(e) for e in range(-SPLIT_PLACES, 1)}  # 1E-6 ... 1

# Quanta of the usual exponents, to find a quantity's exponent without as_tuple().
_QUANTA = tuple((e, Decimal(1).scaleb(e)) for e in (-3, -6, -2, -4, -1, 0, -5))


def _exponent(q: Decimal) -> int:
    """The exponent of a finite decimal (``q.as_tuple().exponent``), fast for the usual."""
    for exponent, quantum in _QUANTA:
        if q.same_quantum(quantum):
            return exponent
    return q.as_tuple().exponent
