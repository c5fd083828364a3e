"""Reconciliation of a meter that keeps its own balance (B13, M10): what the meter should
report (credit sold to it minus the consumption the server charged for it, from a base) and
the verdict on what it did report.

The base is where counting starts: the preset credit on board of a new meter, or a balance
a manager accepted; it remembers the credit, the credit not carried by tokens and the
consumption counted at that moment, so that only what came after is added. A difference is
either within the tolerance, explained by tokens not entered yet, or a mismatch (a tampered
meter, a token never entered, a price change the meter missed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from prepaid_core.balance import ZERO

OK = "ok"
PENDING = "pending"
MISMATCH = "mismatch"

#: pending credits beyond this many are compared by their total range, not one by one
MAX_PENDING_SUBSETS = 12


@dataclass(frozen=True, slots=True)
class Base:
    """Where counting starts: the meter's balance then (``amount``) and the running totals
    already in it: credit sold, credit not carried by tokens, consumption charged."""

    amount: Decimal = ZERO
    credited: Decimal = ZERO
    not_carried: Decimal = ZERO
    charged: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Figures:
    """A meter's running totals now: credit sold to it (not cancelled), credit not carried by
    tokens, consumption charged, and the amounts of the credits not on the meter yet when it
    reported (tokens to issue, issued, or applied after the reading)."""

    credited: Decimal
    not_carried: Decimal
    charged: Decimal
    pending: tuple[Decimal, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison: ``state`` (:data:`OK`, :data:`PENDING`,
    :data:`MISMATCH`), the expected balance and ``difference`` = reported - expected."""

    state: str
    expected: Decimal
    reported: Decimal
    difference: Decimal
    pending: Decimal


def expected_balance(base: Base, figures: Figures) -> Decimal:
    """Base + credit sold since - credit not carried since - consumption charged since."""
    return (
        base.amount
        + (figures.credited - base.credited)
        - (figures.not_carried - base.not_carried)
        - (figures.charged - base.charged)
    )


def pending_sums(pending: Iterable[Decimal]) -> set[Decimal]:
    """Every total some of the ``pending`` credits make (the empty choice excluded): tokens
    may be entered in any order, so any of them may still be missing."""
    sums: set[Decimal] = set()
    for amount in pending:
        sums |= {total + amount for total in sums} | {amount}
    return sums


def explained_by_pending(difference: Decimal, pending: tuple, tolerance: Decimal) -> bool:
    """True when the meter is short of the expected balance by what some of the ``pending``
    credits make (within ``tolerance``): tokens not entered yet, no alarm."""
    if not pending or difference >= 0:
        return False
    missing = -difference
    if len(pending) > MAX_PENDING_SUBSETS:
        return min(pending) - tolerance <= missing <= sum(pending) + tolerance
    return any(abs(missing - total) <= tolerance for total in pending_sums(pending))


def reconcile(reported: Decimal, base: Base, figures: Figures, tolerance: Decimal) -> Verdict:
    """The verdict on a meter reporting ``reported`` while the server expects
    :func:`expected_balance`."""
    expected = expected_balance(base, figures)
    difference = reported - expected
    pending_total = sum(figures.pending, ZERO)
    if abs(difference) <= tolerance:
        state = OK
    elif explained_by_pending(difference, figures.pending, tolerance):
        state = PENDING
    else:
        state = MISMATCH
    return Verdict(state, expected, reported, difference, pending_total)


def accepted_base(reported: Decimal, figures: Figures) -> Base:
    """The base after a manager accepts ``reported``: counting starts again from it; the
    credits still pending are not in it, so they still count when they arrive."""
    return Base(
        reported,
        figures.credited - sum(figures.pending, ZERO),
        figures.not_carried,
        figures.charged,
    )
