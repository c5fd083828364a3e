"""Deductions (B3): a meter's new readings as the intervals the tariff prices, and the day
book that adds the priced intervals up into one consumption line per account and day.

The billing add-on loads the readings and cursors, prices the intervals with
:meth:`prepaid_core.tariff.CompiledTariff.price_run` and stores what :class:`DayBook` and
:class:`ChargedMeter` say; the rules of what is charged from when live here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from prepaid_core.balance import ZERO
from prepaid_core.readings import register_consumption


class Reading(NamedTuple):
    """A stored reading as the deduction sees it (times in UTC, as stored)."""

    read_at: datetime
    consumption: Decimal  # validated consumption since the previous reading (0 if none)
    chargeable: bool  # validated and to be charged
    baseline: bool  # the meter's counting starts again here (nothing charged)
    registers: dict | None  # TOU register values by band, when the tariff prices them


class Interval(NamedTuple):
    """An interval as the tariff engine prices it: local times and the consumption, a
    total or ``{band: quantity}`` from the meter's registers."""

    begin: datetime
    end: datetime
    consumption: Decimal | dict


@dataclass(slots=True)
class MeterCursor:
    """Where a meter's charging stands: readings up to ``charged_until`` are charged, the
    next interval starts at the reading of ``base_at`` (whose registers are
    ``base_registers``), the tariff's cycle state is priced up to ``priced_until`` (local)."""

    charged_until: datetime | None
    base_at: datetime | None
    priced_until: datetime | None = None
    base_registers: dict | None = None


@dataclass(slots=True)
class NewIntervals:
    """The intervals to price for a meter, their total consumption each, and the cursor
    after them."""

    intervals: list[Interval]
    quantities: list[Decimal]
    charged_until: datetime | None
    base_at: datetime | None


def new_intervals(
    readings: Iterable[Reading],
    cursor: MeterCursor,
    opened: datetime | None,
    local: Callable[[datetime], datetime],
    multiplier: Decimal,
) -> NewIntervals:
    """The intervals of ``readings`` (after the cursor, in time order) to charge.

    A reading before the tenancy ``opened`` is not the tenant's: the next interval starts
    there (``opened`` None: every reading is, as for a meter whose preset credit the account
    took over, B7). A chargeable reading closes an interval from the base reading (never
    from before what the cycle state has priced); a baseline reading moves the base; any
    other reading (flagged, not charged) only moves the charged-until cursor. With
    registers, an interval is priced per band from the register deltas
    (:func:`register_consumption`)."""
    until, base = cursor.charged_until, cursor.base_at
    priced, previous = cursor.priced_until, cursor.base_registers
    intervals, quantities = [], []
    for reading in readings:
        current = reading.registers
        if opened is not None and reading.read_at < opened:
            base = until = reading.read_at
            previous = current
            continue
        if reading.chargeable:
            end = local(reading.read_at)
            begin = local(base) if base else end
            if priced and begin < priced:
                begin = min(priced, end)
            quantity = reading.consumption
            bands = (
                register_consumption(previous, current, quantity, multiplier)
                if current is not None
                else None
            )
            intervals.append(Interval(begin, end, quantity if bands is None else bands))
            quantities.append(quantity)
            priced, base, previous = end, reading.read_at, current
        elif reading.baseline:
            base = reading.read_at
            previous = current
        until = reading.read_at
    return NewIntervals(intervals, quantities, until, base)


@dataclass(slots=True)
class ConsumptionLine:
    """The figures of an account's consumption (ledger) line of one day; ``amount`` is
    negative (a deduction), ``detail`` traces meters and tariff lines (JSON)."""

    amount: Decimal
    quantity: Decimal
    reading_from: datetime | None
    reading_to: datetime | None
    reading_count: int
    detail: dict

    def figures(self) -> tuple:
        """``(amount, quantity, reading_from, reading_to, reading_count, detail as JSON)``."""
        return (
            self.amount,
            self.quantity,
            self.reading_from,
            self.reading_to,
            self.reading_count,
            json.dumps(self.detail),
        )


def line_key(line, utility: str) -> str:
    """Key of a priced tariff line in a day's detail: version, band, ladder step and the
    utility (water and power are invoiced apart, B9)."""
    return f"{line.version}|{line.band}|{line.step}|{utility}"


@dataclass(slots=True)
class DayBook:
    """What one account consumed on one day, from the intervals priced in a run: it becomes
    the account's consumption line of that day, or is added to it."""

    company_id: int
    first: datetime  # begin of the earliest interval (local)
    last: datetime  # end of the latest interval (local)
    amount: Decimal = ZERO
    quantity: Decimal = ZERO
    count: int = 0
    #: meter id (text) -> [first begin, last end (ISO), number of intervals]
    meters: dict = field(default_factory=dict)
    #: :func:`line_key` -> [quantity, amount, unit price]
    lines: dict = field(default_factory=dict)

    def add(self, meter_id: int, interval: Interval, quantity, amount, priced_lines, utility):
        """Book one priced interval of ``meter_id`` (its tariff lines ``priced_lines``)."""
        begin, end = interval.begin, interval.end
        self.amount += amount
        self.quantity += quantity
        self.first = min(self.first, begin)
        self.last = max(self.last, end)
        self.count += 1
        trace = self.meters.setdefault(str(meter_id), [begin.isoformat(), None, 0])
        trace[1] = end.isoformat()
        trace[2] += 1
        for line in priced_lines:
            key = line_key(line, utility)
            booked = self.lines.get(key)
            if booked is None:
                self.lines[key] = [line.quantity, line.amount, line.unit_price]
            else:
                booked[0] += line.quantity
                booked[1] += line.amount

    def as_line(self) -> ConsumptionLine:
        """The new consumption line of this day."""
        lines = {key: [str(q), str(a), str(price)] for key, (q, a, price) in self.lines.items()}
        detail = {"meters": self.meters, "lines": lines}
        return ConsumptionLine(
            -self.amount, self.quantity, self.first, self.last, self.count, detail
        )

    def added_to(self, line: ConsumptionLine) -> ConsumptionLine:
        """The day's existing consumption ``line`` with this book added (its detail is
        updated in place)."""
        detail = line.detail or {"meters": {}, "lines": {}}
        meters = detail["meters"]
        for meter, (begin, end, count) in self.meters.items():
            before = meters.get(meter)
            meters[meter] = [before[0], end, before[2] + count] if before else [begin, end, count]
        lines = detail["lines"]
        for key, (quantity, amount, price) in self.lines.items():
            before = lines.get(key)
            if before:
                quantity, amount = Decimal(before[0]) + quantity, Decimal(before[1]) + amount
            lines[key] = [str(quantity), str(amount), str(price)]
        return ConsumptionLine(
            line.amount - self.amount,
            line.quantity + self.quantity,
            min(line.reading_from, self.first) if line.reading_from else self.first,
            self.last,
            line.reading_count + self.count,
            detail,
        )


#: the day books of a run: ``(account id, day) -> DayBook``
DayBooks = dict[tuple[int, date], DayBook]


def book_run(
    books: DayBooks,
    account_id: int,
    company_id: int,
    meter_id: int,
    new: NewIntervals,
    run,
    utility: str,
) -> None:
    """Book a meter's priced ``run`` (a :class:`~prepaid_core.tariff.PricedRun` of
    ``new.intervals``) in the day of each interval's end."""
    for interval, quantity, lines, amount in zip(
        new.intervals, new.quantities, run.lines, run.amounts, strict=True
    ):
        key = (account_id, interval.end.date())
        book = books.get(key)
        if book is None:
            book = books[key] = DayBook(company_id, interval.begin, interval.end)
        book.add(meter_id, interval, quantity, amount, lines, utility)


def balance_moves(books: DayBooks) -> dict[int, Decimal]:
    """How much each account's balance moves (down) for the booked consumption; accounts
    that do not move are left out."""
    moves: dict[int, Decimal] = {}
    for (account_id, _day), book in books.items():
        moves[account_id] = moves.get(account_id, ZERO) - book.amount
    return {account_id: delta for account_id, delta in moves.items() if delta}
