"""Tariff definitions (B1): bands, time-of-use schedules, settlement cycles, versions.

Frozen dataclasses validated when built, so that an invalid tariff cannot exist; the
pricing objects are compiled from them (:meth:`Tariff.compile`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prepaid_core.exact import exact_decimal
from prepaid_core.tariff.errors import (
    CycleRuleError,
    PriceError,
    StepLimitError,
    TariffError,
    TooManySegmentsError,
    TooManyStepsError,
    TouCoverageError,
    TouScheduleError,
    UnknownBandError,
    VersionOverlapError,
)

if TYPE_CHECKING:
    from prepaid_core.tariff.compiled import CompiledTariff

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
BAND_RANK = {band: rank for rank, band in enumerate(BANDS)}
BAND_SET = frozenset(BANDS)

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
_MIDNIGHT = time.max  # end of a period that runs to 24:00


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
    return exact_decimal(value, what, error, amount=False)


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


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
        if self.band not in BAND_RANK:
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
                "use a date that exists every year.",
                code="tariff.season_start",
                values={"season": self.label, "month": self.start_month, "day": self.start_day},
            ) from None
        if not self.segments:
            raise TouCoverageError(
                f"Season '{self.label}' has no time-of-use periods.",
                code="tariff.season_empty",
                values={"season": self.label},
            )
        if len(self.segments) > MAX_SEGMENTS:
            raise TooManySegmentsError(
                f"A day may have at most {MAX_SEGMENTS} time-of-use periods; "
                f"season '{self.label}' has {len(self.segments)}.",
                code="tariff.too_many_periods",
                values={"season": self.label, "max": MAX_SEGMENTS, "count": len(self.segments)},
            )
        self._validate_coverage()

    def _validate_coverage(self) -> None:
        """The periods cover the day from 00:00 to 24:00, without gap or overlap."""
        spans = sorted(span for segment in self.segments for span in segment.spans())
        cursor = 0
        for start, end in spans:
            if start > cursor:
                raise TouCoverageError(
                    f"The time-of-use periods of season '{self.label}' do not cover the whole "
                    f"day: nothing is set from {_fmt_time(cursor)} to {_fmt_time(start)}.",
                    code="tariff.gap",
                    values={
                        "season": self.label,
                        "start": _fmt_time(cursor),
                        "end": _fmt_time(start),
                    },
                )
            if start < cursor:
                raise TouCoverageError(
                    f"The time-of-use periods of season '{self.label}' overlap between "
                    f"{_fmt_time(start)} and {_fmt_time(min(cursor, end))}.",
                    code="tariff.periods_overlap",
                    values={
                        "season": self.label,
                        "start": _fmt_time(start),
                        "end": _fmt_time(min(cursor, end)),
                    },
                )
            cursor = end
        if cursor < 86_400:
            raise TouCoverageError(
                f"The time-of-use periods of season '{self.label}' do not cover the whole "
                f"day: nothing is set from {_fmt_time(cursor)} to 24:00.",
                code="tariff.gap",
                values={"season": self.label, "start": _fmt_time(cursor), "end": "24:00"},
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
            raise TouScheduleError(
                "A time-of-use schedule needs at least one season.", code="tariff.no_season"
            )
        starts = {}
        for season in self.seasons:
            key = (season.start_month, season.start_day)
            if key in starts:
                raise TouScheduleError(
                    f"Seasons '{starts[key]}' and '{season.label}' start on the same day "
                    f"({key[0]:02d}-{key[1]:02d}).",
                    code="tariff.seasons_same_start",
                    values={"first": starts[key], "second": season.label},
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
                f"not {self.billing_day}.",
                code="tariff.billing_day",
                values={"day": self.billing_day},
            )
        if not isinstance(self.billing_month, int) or not 1 <= self.billing_month <= 12:
            raise CycleRuleError(
                f"The billing month must be between 1 and 12, not {self.billing_month}.",
                code="tariff.billing_month",
                values={"month": self.billing_month},
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
        self._validate_steps(name)
        self._validate_prices(name)
        self._validate_bands(name)
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise TariffError(
                f"{name} ends ({_fmt_dt(self.valid_to)}) before it starts "
                f"({_fmt_dt(self.valid_from)}).",
                code="tariff.version_dates",
                values={"version": self.code, "start": self.valid_from, "end": self.valid_to},
            )

    def _validate_steps(self, name: str) -> None:
        if self.steps > MAX_STEPS:
            raise TooManyStepsError(
                f"A ladder may have at most {MAX_STEPS} steps; tariff version {self.code} "
                f"has {self.steps}.",
                code="tariff.too_many_steps",
                values={"version": self.code, "max": MAX_STEPS, "count": self.steps},
            )
        previous = ZERO
        for i, limit in enumerate(self.step_limits, 1):
            if limit <= previous:
                raise StepLimitError(
                    f"{name}: the limit of step {i} ({limit}) must be higher than "
                    + (f"that of step {i - 1} ({previous})." if i > 1 else "zero."),
                    code="tariff.step_limit" if i > 1 else "tariff.first_step_limit",
                    values={"version": self.code, "step": i, "limit": limit, "previous": previous},
                )
            previous = limit

    def _validate_prices(self, name: str) -> None:
        if not self.prices:
            raise PriceError(
                f"{name} has no price.", code="tariff.no_price", values={"version": self.code}
            )
        for band, band_prices in self.prices.items():
            if band not in BAND_RANK:
                raise UnknownBandError(
                    f"{name} has a price for '{band}', which is not a time-of-use band; use "
                    + ", ".join(BAND_LABELS[b] for b in BANDS)
                    + "."
                )
            label = BAND_LABELS[band]
            if len(band_prices) != self.steps:
                raise PriceError(
                    f"{name}: the {label} band has {len(band_prices)} price(s) but the ladder "
                    f"has {self.steps} step(s); give one price per step.",
                    code="tariff.price_count",
                    values={
                        "version": self.code,
                        "band": band,
                        "count": len(band_prices),
                        "steps": self.steps,
                    },
                )
            for i, price in enumerate(band_prices, 1):
                if price < 0:
                    raise PriceError(
                        f"{name}: the {label} price of step {i} ({price}) cannot be negative.",
                        code="tariff.price_negative",
                        values={"version": self.code, "band": band, "step": i, "price": price},
                    )

    def _validate_bands(self, name: str) -> None:
        """Every band priced has a time in the schedule, and every band of the schedule a price."""
        if self.tou is None:
            if len(self.prices) != 1:
                raise PriceError(
                    f"{name} prices several bands ("
                    + ", ".join(BAND_LABELS[b] for b in self.prices)
                    + ") but has no time-of-use schedule saying when each applies.",
                    code="tariff.bands_without_schedule",
                    values={"version": self.code, "bands": tuple(self.prices)},
                )
        else:
            missing = self.tou.bands - set(self.prices)
            if missing:
                raise UnknownBandError(
                    f"{name}: the time-of-use schedule uses the "
                    + ", ".join(BAND_LABELS[b] for b in BANDS if b in missing)
                    + " band(s), which have no price.",
                    code="tariff.bands_without_price",
                    values={"version": self.code, "bands": tuple(b for b in BANDS if b in missing)},
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
                f"Tariff '{self.name}': '{self.timezone}' is not a known time zone.",
                code="tariff.timezone",
                values={"timezone": self.timezone},
            ) from None
        if not self.versions:
            raise TariffError(
                f"Tariff '{self.name}' has no version (no prices).", code="tariff.no_version"
            )
        self._validate_versions()

    def _validate_versions(self) -> None:
        """Version codes are unique and versions follow each other without overlapping."""
        codes = set()
        for version in self.versions:
            if version.code in codes:
                raise VersionOverlapError(
                    f"Tariff '{self.name}' has two versions named '{version.code}'.",
                    code="tariff.version_twice",
                    values={"version": version.code},
                )
            codes.add(version.code)
        for first, second in zip(self.versions, self.versions[1:], strict=False):
            if first.valid_from == second.valid_from:
                raise VersionOverlapError(
                    f"Tariff '{self.name}': versions '{first.code}' and '{second.code}' both "
                    f"start on {_fmt_dt(first.valid_from)}.",
                    code="tariff.versions_same_start",
                    values={"first": first.code, "second": second.code, "start": first.valid_from},
                )
            if first.valid_to is not None and first.valid_to > second.valid_from:
                raise VersionOverlapError(
                    f"Tariff '{self.name}': versions '{first.code}' and '{second.code}' "
                    f"overlap: '{first.code}' runs until {_fmt_dt(first.valid_to)}, after "
                    f"'{second.code}' starts on {_fmt_dt(second.valid_from)}.",
                    code="tariff.versions_overlap",
                    values={
                        "first": first.code,
                        "second": second.code,
                        "end": first.valid_to,
                        "start": second.valid_from,
                    },
                )

    def compile(self) -> CompiledTariff:
        """The fast pricing object; build it once and reuse it for every meter."""
        from prepaid_core.tariff.compiled import CompiledTariff  # noqa: PLC0415 (a cycle)

        return CompiledTariff(self)
