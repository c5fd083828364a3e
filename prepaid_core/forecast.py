"""T8: how long a prepaid credit lasts at the tenant's recent daily use.

The daily use is the money charged a day over the last full days (today is not over yet),
days without consumption counting as zero, except the days before the account was opened:
a tenant who moved in two days ago is forecast from those two days. The credit that lasts
is the one that keeps the supply on: the available credit plus the overdraft allowed.
Pure functions on :class:`~decimal.Decimal`; the add-ons read the ledger and word the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import NamedTuple

#: full days the daily use is averaged over
WINDOW_DAYS = 7
#: fewer full days of history than this: no forecast (one day says too little)
MIN_DAYS = 2
MONEY = Decimal("0.0001")
TENTH = Decimal("0.1")
ZERO = Decimal(0)


class Forecast(NamedTuple):
    """``daily_use``: money charged a day on average (4 decimals); ``days_left``: days the
    credit lasts at that rate, to a tenth, rounded down (0 when the credit is used up);
    both ``None`` when there is no recent use to forecast from."""

    daily_use: Decimal | None
    days_left: Decimal | None


NO_FORECAST = Forecast(None, None)


def daily_use(
    spent_by_day: Mapping[date, Decimal],
    today: date,
    opened: date | None = None,
    window: int = WINDOW_DAYS,
) -> Decimal | None:
    """The average money charged a day over the ``window`` full days before ``today``,
    not counting the days before ``opened``; ``None`` with fewer than :data:`MIN_DAYS`
    such days or no use at all in them."""
    first = today - timedelta(days=window)
    if opened is not None and opened > first:
        first = opened
    days = (today - first).days
    if days < MIN_DAYS:
        return None
    spent = sum(
        (Decimal(amount) for day, amount in spent_by_day.items() if first <= day < today), ZERO
    )
    if spent <= 0:
        return None
    return (spent / days).quantize(MONEY, ROUND_HALF_UP)


def days_left(credit: Decimal, use: Decimal | None) -> Decimal | None:
    """Days ``credit`` lasts at ``use`` a day, to a tenth and rounded down (a forecast that
    errs early); 0 when no credit is left, ``None`` without a daily use."""
    if use is None or use <= 0:
        return None
    if credit <= 0:
        return ZERO
    return (credit / use).quantize(TENTH, ROUND_DOWN)


def forecast(
    credit: Decimal,
    spent_by_day: Mapping[date, Decimal],
    today: date,
    opened: date | None = None,
    window: int = WINDOW_DAYS,
) -> Forecast:
    """The daily use and the days ``credit`` lasts at it (see :func:`daily_use`)."""
    use = daily_use(spent_by_day, today, opened, window)
    if use is None:
        return NO_FORECAST
    return Forecast(use, days_left(credit, use))


def notice_due(days: Decimal | None, notice_days: int, credit: Decimal, alarm1: Decimal) -> bool:
    """True when the tenant should be told the credit lasts about ``days`` more days: at or
    under ``notice_days`` (0 turns the notice off), while the credit is still above the
    first alarm's threshold (below it the alarm notices speak)."""
    if not notice_days or days is None:
        return False
    return days <= notice_days and credit > alarm1


def whole_days(days: Decimal) -> int:
    """The days a tenant is told: whole days, rounded down ("about 3 days" for 3.7)."""
    return int(days.to_integral_value(ROUND_DOWN))
