"""Consumption figures: checks, and the exact split of a quantity by time (B3).

A quantity spread over several periods is split in proportion to their durations into
shares of 10^-6 unit (finer if the quantity is finer) that add up exactly to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from prepaid_core.tariff.definitions import BAND_LABELS, BAND_RANK, BANDS, SPLIT_PLACES, ZERO
from prepaid_core.tariff.errors import (
    ConsumptionError,
    NegativeConsumptionError,
    UnknownBandError,
)


def band_rank(band: str) -> int:
    check_band(band)
    return BAND_RANK[band]


def check_band(band: str) -> None:
    if band not in BAND_RANK:
        raise UnknownBandError(
            f"The reading has consumption in '{band}', which is not a time-of-use band; "
            "expected " + ", ".join(BAND_LABELS[b] for b in BANDS) + "."
        )


def missing_band(band: str, version) -> None:
    check_band(band)
    raise UnknownBandError(
        f"The reading has consumption in the {BAND_LABELS[band]} band, which tariff version "
        f"{version.code} does not price."
    )


def register_total(registers: Mapping) -> Decimal:
    """The total of time-of-use registers (to split by time when they cannot be priced)."""
    total = ZERO
    for value in registers.values():
        if value:
            total += value
    return total


def check_quantity(q, band: str | None) -> Decimal:
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


def apportion(q: Decimal, weights: list[int]) -> list[Decimal]:
    """Split ``q`` in proportion to integer ``weights``, exactly (largest remainder).

    Shares are multiples of 10^-6 (or of q's own last digit if finer) and add up to ``q``;
    equal remainders go to the earlier share. All weights zero: the first share takes all.
    """
    own = exponent_of(q)
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


# Quanta of the usual exponents, to find a quantity's exponent without as_tuple().
_QUANTA = tuple((e, Decimal(1).scaleb(e)) for e in (-3, -6, -2, -4, -1, 0, -5))


def exponent_of(q: Decimal) -> int:
    """The exponent of a finite decimal (``q.as_tuple().exponent``), fast for the usual."""
    for exponent, quantum in _QUANTA:
        if q.same_quantum(quantum):
            return exponent
    return q.as_tuple().exponent
