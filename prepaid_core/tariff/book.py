"""Money, the cycle's book and the records pricing returns (B1 rounding, B3 lines).

The book of a settlement cycle maps ``(band, step)`` to ``(quantity, exact cost, rounded
cost)``; :func:`charge_line` is the one place where its cumulative rounding rule is
applied. Pricing runs in an exact decimal context (:func:`exactly`): a digit that would be
lost raises :class:`PrecisionError` instead.
"""

from __future__ import annotations

import bisect
import contextvars
import decimal
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from prepaid_core.tariff.definitions import MONEY_PLACES, ZERO
from prepaid_core.tariff.errors import PrecisionError

MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
ZERO_MONEY = Decimal(0).quantize(MONEY_QUANTUM)

# Exact arithmetic: any rounding raises (then PrecisionError) instead of losing a digit.
_EXACT = decimal.Context(
    prec=60,
    rounding=ROUND_HALF_UP,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)
# Rounding of money to 4 decimals (passed explicitly to quantize).
_ROUND = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])
_to_money = _ROUND.quantize  # (cost, MONEY_QUANTUM): ROUND_HALF_UP, the context's rounding
# A contextvars.Context in which _EXACT is the current decimal context (see exactly)
_EXACT_VARS = contextvars.Context()
_EXACT_VARS.run(decimal.setcontext, _EXACT)
_run_exact = _EXACT_VARS.run
_bisect_right = bisect.bisect_right
_new_line = tuple.__new__  # NamedTuple instances without the keyword-parsing __new__


def exactly(function, *args):
    """``function(*args)`` in the exact decimal context; inexact results raise
    :class:`PrecisionError`.

    The context is entered through a ``contextvars.Context`` in which it is current (cheaper
    than two ``setcontext()`` calls). One thread at a time can enter that Context: pricing
    inside pricing, or another thread meanwhile, switches the decimal context instead.
    """
    try:
        try:
            return _run_exact(function, *args)
        except RuntimeError:  # the Context is in use; (or an error of function: raised again)
            saved = decimal.getcontext()
            decimal.setcontext(_EXACT)
            try:
                return function(*args)
            finally:
                decimal.setcontext(saved)
    except (decimal.Inexact, decimal.Overflow):
        raise PrecisionError(
            "The consumption or the prices have too many digits to be charged exactly."
        ) from None


class CostLine(NamedTuple):
    """One priced line of an interval: ``quantity`` of ``band`` in ladder ``step``."""

    band: str
    step: int  # 1 to 8
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # 4 decimals, cumulative rounding (see charge_line)
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


def one_run(result: PricedInterval) -> PricedRun:
    """The run of one interval priced as ``result``."""
    amount = result.amount
    return _new_line(
        PricedRun, ((result.lines,), (amount,), (result.closed_cycles,), amount, result.state)
    )


class PriceEntry:
    """The price of a band in a ladder step of a tariff version, and where the cycle's book
    keeps what was charged at it (read on every line charged: plain slots)."""

    __slots__ = ("band", "key", "price", "step", "version")

    def __init__(self, price: Decimal, key: tuple[str, int], step: int, band: str, version: str):
        self.price = price
        self.key = key  # (band, step number): the book's key
        self.step = step  # 1 to 8
        self.band = band
        self.version = version  # the version's code

    def __repr__(self) -> str:
        fields = (self.price, self.key, self.step, self.band, self.version)
        return f"PriceEntry{fields!r}"


def charge_line(book, entry, q, cycle_start):
    """Charge ``q`` at ``entry`` on the cycle's ``book`` (updated in place): the cost line
    and its amount.

    The rounding rule (B1): the amount of a line is the rounded cost to date of its (band,
    step) less what was rounded before, so the amounts of any partition of a cycle add up
    to the sum of the rounded exact costs of its (band, step)s.
    """
    price, key = entry.price, entry.key
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
    line = (entry.band, entry.step, q, price, amount, entry.version, cycle_start)
    return _new_line(CostLine, line), amount


def charge_lines(book, charges, cycle_start):
    """Charge ``charges`` ``(entry, quantity)`` on ``book``, one line each: the lines and the
    sum of their amounts."""
    lines = []
    amount = ZERO_MONEY
    for entry, q in charges:
        line, line_amount = charge_line(book, entry, q, cycle_start)
        amount += line_amount
        lines.append(line)
    return tuple(lines), amount


def charge_pieces(book, total, pieces, cycle_start):
    """Charge ordered pieces ``(version, band, q)`` of one cycle on ``book``, ``total``
    being the cycle's consumption before them: each piece goes through the ladder steps in
    turn, the quantities of a (version, band, step) are added up into one line. The lines,
    the sum of their amounts and the new total."""
    quantities = {}  # (version, band, step index): quantity, in the order first charged
    for version, band, q in pieces:
        limits = version.limits  # (with +Infinity after the last limit)
        step = _bisect_right(limits, total)
        while q > limits[step] - total:  # a step boundary inside the piece
            room = limits[step] - total
            key = (version, band, step)
            quantities[key] = quantities.get(key, ZERO) + room
            total += room
            q -= room
            step += 1
        key = (version, band, step)
        quantities[key] = quantities.get(key, ZERO) + q
        total += q
    charges = [(version.table[s][band], q) for (version, band, s), q in quantities.items() if q]
    lines, amount = charge_lines(book, charges, cycle_start)
    return lines, amount, total
