"""A tariff version prepared for pricing: its ladder and prices as tables, and its
time-of-use periods as datetimes, looked up by day and cached."""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from prepaid_core.tariff.book import PriceEntry
from prepaid_core.tariff.definitions import _MIDNIGHT, TariffVersion

END_OF_TIME = datetime.max
MICROSECOND = timedelta(microseconds=1)  # the unit of a split by time
_INFINITY = Decimal("Infinity")
_NO_PERIOD = (END_OF_TIME, END_OF_TIME, None)  # matches no time: looked up on first use
_bisect_right = bisect.bisect_right


class PricingVersion:
    """A tariff version prepared for pricing (plain attributes, precomputed tables).

    ``table[step]`` maps each band to its :class:`PriceEntry` in that ladder step: the one
    table from which every pricing path takes prices and book keys.
    """

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
        self.table = tuple(  # per step (0-based): {band: its PriceEntry}
            {
                band: PriceEntry(prices[step], (band, step + 1), step + 1, band, self.code)
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
