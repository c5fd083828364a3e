"""Fixed charges (B14) and the common-area split (B15): which cycle a charge is due for,
how much it is, and how a common meter's cost is divided among units.

A fixed charge (a service fee, a demand charge per kVA/kW of contracted capacity, the fee
of a monthly package) is charged in advance, once per monthly cycle starting on a billing
day; the cycle in which an account opens is prorated by its days. A split gives each unit
its part of a cost by weight (area, fixed share, consumption) with the largest-remainder
rule, so the parts add up to the cost exactly, to 4 decimals.

See docs/tariff_engine.md (Fixed charges, Common areas).
"""

from __future__ import annotations

import decimal
from collections.abc import Hashable, Mapping
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from prepaid_core.balance import MONEY_QUANTUM, ZERO, money
from prepaid_core.errors import PrepaidError
from prepaid_core.exact import exact_decimal

# === CONSTANTS === #

SERVICE_FEE = "service_fee"
DEMAND = "demand"
PACKAGE = "package"
CHARGE_TYPES = (SERVICE_FEE, DEMAND, PACKAGE)
CHARGE_TYPE_LABELS = {
    SERVICE_FEE: "Service fee",
    DEMAND: "Demand charge",
    PACKAGE: "Monthly package",
}

BY_AREA = "area"
BY_SHARE = "share"
BY_CONSUMPTION = "consumption"
SPLIT_METHODS = (BY_AREA, BY_SHARE, BY_CONSUMPTION)
SPLIT_METHOD_LABELS = {
    BY_AREA: "By area",
    BY_SHARE: "By fixed share",
    BY_CONSUMPTION: "By consumption",
}

#: at most this many past cycles are charged in one run (a scheduler down for months)
MAX_DUE_PERIODS = 24


class ChargeError(PrepaidError):
    """A fixed charge or a split cannot be computed from the figures given."""


class Period(NamedTuple):
    """A monthly cycle: ``start`` included, ``end`` excluded (local dates)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


# === CYCLES === #


def _check_billing_day(billing_day: int) -> None:
    if not isinstance(billing_day, int) or not 1 <= billing_day <= 28:
        raise ChargeError(f"The billing day must be between 1 and 28, not {billing_day}.")


def _add_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def monthly_period(billing_day: int, on: date) -> Period:
    """The monthly cycle that contains ``on``: from the billing day on or before it to the
    billing day of the next month."""
    _check_billing_day(billing_day)
    year, month = on.year, on.month
    if on.day < billing_day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    start = date(year, month, billing_day)
    return Period(start, date(*_add_month(year, month), billing_day))


def due_periods(billing_day: int, first_day: date, today: date) -> list[Period]:
    """The cycles due by ``today`` for something charged from ``first_day``: each cycle
    from the one containing ``first_day`` to the one containing ``today`` (the most
    recent :data:`MAX_DUE_PERIODS` of them), oldest first."""
    if first_day > today:
        return []
    period, last = monthly_period(billing_day, first_day), monthly_period(billing_day, today)
    periods = [period]
    while period != last:
        period = monthly_period(billing_day, period.end)
        periods.append(period)
    return periods[-MAX_DUE_PERIODS:]


# === AMOUNTS === #


def _quantity(value: object, what: str) -> Decimal:
    number = exact_decimal(value, what, ChargeError, amount=False)
    if number < 0:
        raise ChargeError(f"{what} cannot be negative ({number}).")
    return number


def cycle_amount(
    charge_type: str,
    price: object,
    period: Period,
    *,
    capacity: object = 0,
    active_from: date | None = None,
) -> Decimal:
    """What a fixed charge of ``price`` costs for ``period``, 4 decimals (half up).

    A demand charge is ``price`` per kVA/kW of the contracted ``capacity``; the others are
    ``price`` each cycle. An account active only from ``active_from`` (inside the period)
    pays for its days of the cycle; one active after the period pays nothing."""
    if charge_type not in CHARGE_TYPES:
        raise ChargeError(f"'{charge_type}' is not a kind of fixed charge.")
    base = money(price, "The price of a fixed charge", signed=True)
    if base < 0:
        raise ChargeError(f"The price of a fixed charge cannot be negative ({base}).")
    if charge_type == DEMAND:
        base *= _quantity(capacity, "The contracted capacity")
    start = max(period.start, active_from or period.start)
    days = max((period.end - start).days, 0)
    amount = base * days / period.days if days != period.days else base
    return amount.quantize(MONEY_QUANTUM, ROUND_HALF_UP)


# === COMMON-AREA SPLIT === #


def split_cost(cost: object, weights: Mapping[Hashable, object]) -> dict[Hashable, Decimal]:
    """``cost`` divided among the keys of ``weights`` in proportion to their weights, each
    part to 4 decimals, the parts adding up to ``cost`` exactly.

    Largest remainder: each key gets its exact share rounded down to 1/10000; the
    1/10000s still missing go one each to the keys with the largest remainders (ties to
    the key given first)."""
    total_cost = money(cost, "The cost to split", signed=True)
    if total_cost < 0:
        raise ChargeError(f"The cost to split cannot be negative ({total_cost}).")
    values = {key: _quantity(weight, "A weight") for key, weight in weights.items()}
    total = sum(values.values(), Decimal(0))
    if not values or total <= 0:
        raise ChargeError("The cost cannot be split: the weights add up to zero.")
    with decimal.localcontext() as context:
        context.prec = 60
        exact = {key: total_cost * weight / total for key, weight in values.items()}
        parts = {key: share.quantize(MONEY_QUANTUM, ROUND_DOWN) for key, share in exact.items()}
        missing = int((total_cost - sum(parts.values(), ZERO)) / MONEY_QUANTUM)
        order = sorted(exact, key=lambda key: exact[key] - parts[key], reverse=True)
    for key in order[:missing]:
        parts[key] += MONEY_QUANTUM
    return parts
