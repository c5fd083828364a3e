"""Exact decimal input: the one check every money and price figure passes before use.

A float or a bool is refused (it may already have lost a digit); text and ints become a
``Decimal``, which must be finite. Each caller raises its own error type."""

from __future__ import annotations

import decimal
from decimal import Decimal


def exact_decimal(value: object, what: str, error: type[Exception], *, amount: bool) -> Decimal:
    """``value`` as a finite ``Decimal``, else ``error`` naming ``what``; ``amount`` says
    whether it is money (messages speak of an amount) or a number such as a price."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        example = (
            "an exact amount such as '10.00'"
            if amount
            else ("an exact decimal number (e.g. '0.58')")
        )
        raise error(f"{what} must be {example}, not {value!r}.")
    try:
        result = Decimal(value)
    except decimal.InvalidOperation:
        raise error(f"{what} is not a number: {value!r}.") from None
    if not result.is_finite():
        raise error(f"{what} must be a finite {'amount' if amount else 'number'}, not {value}.")
    return result
