"""Invoice lines of what is charged (B9, B14, B15): what a new invoice bills, line by line,
and the quantity and unit price that make each line bill exactly that.

What is charged is billed cumulatively: for each product, a new invoice bills what was
charged so far, rounded to the currency, less what earlier invoices billed, so a late
charge lands on the next invoice and sub-cent remainders never drift. Within a product
there is one line per *part* (a time-of-use band, ladder step and unit price of
consumption, or one fixed charge or common-area ledger line), each with its quantity and
unit price; the product's rounded amount is the truth and any cent the parts' own rounding
leaves is put on its largest part, so the lines add up to the ledger.

A line's unit price is chosen so that the line as the invoice computes it (price times
quantity, rounded to the currency; percent taxes included in it or added to it, rounded per
line or per tax) bills that amount: the tariff's price when it does, else the price with
the fewest digits (from the invoice's price digits up to :data:`MAX_PRICE_DIGITS`, all of
which an invoice shows) that does. When none does, the line bills the amount once
(quantity 1, its quantity named in the description). The invoice's own total rounds the
sum of its lines' unrounded amounts, so lines are priced closer to their amount until
that sum rounds to what they bill. See docs/design.md (Invoicing).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

ZERO = Decimal(0)
#: digits of a tariff unit price kept on an invoice line's part
PRICE_QUANTUM = Decimal("0.000001")
#: most digits of an invoice line's unit price (what the invoice shows of it)
MAX_PRICE_DIGITS = 6
#: a tax share this close to a half cent is not trusted to round as computed here
_TIE_MARGIN = Decimal("1e-9")


class Charged(NamedTuple):
    """Money (4 decimals or cents) and quantity (kWh, m³) of one part."""

    amount: Decimal
    quantity: Decimal


class Tax(NamedTuple):
    """A percent tax of an invoice line: ``rate`` 0.15 for 15 %, included in the price or
    added to it."""

    rate: Decimal
    included: bool


class LineRule(NamedTuple):
    """How the invoice computes a line: the currency's ``quantum``, the digits of a unit
    price the invoice prefers (``price_digits``), the line's percent ``taxes``, whether
    taxes are rounded ``per_line`` (else per tax, Odoo's *round globally*), and whether
    the amount charged includes the taxes the line adds (``with_taxes``: a fixed charge
    whose ledger line is its price with taxes; consumption bills its price before them)."""

    quantum: Decimal = Decimal("0.01")
    price_digits: int = 2
    taxes: tuple[Tax, ...] = ()
    per_line: bool = False
    with_taxes: bool = False


#: a line without taxes, in cents, prices from 2 digits
NO_TAXES = LineRule()


class LineAmounts(NamedTuple):
    """A line as the invoice computes it: ``base`` price x quantity (not rounded),
    ``subtotal`` and ``total`` (rounded), ``billed`` what it bills of the charge,
    ``deviation`` how far its base is from what it bills before taxes are added (the
    invoice total rounds the sum of the bases), ``sure`` when no tax share lay on a half
    cent."""

    base: Decimal
    subtotal: Decimal
    total: Decimal
    billed: Decimal
    deviation: Decimal
    sure: bool


class LinePrice(NamedTuple):
    """What an invoice line bills ``amount`` with: ``quantity`` (0: once, quantity 1, the
    quantity named in the description) and ``unit_price``."""

    quantity: Decimal
    unit_price: Decimal
    amounts: LineAmounts


class InvoicePart(NamedTuple):
    """One invoice line to create: ``key`` is the caller's (product first), ``amount`` in
    whole currency units, ``quantity`` what it bills (exact), ``shown_quantity`` that
    quantity to the invoice's digits and ``unit_price`` the price that gives the amount for
    it (a shown quantity of 0: the amount once)."""

    key: tuple
    quantity: Decimal
    amount: Decimal
    unit_price: Decimal
    shown_quantity: Decimal


def _round(amount: Decimal, quantum: Decimal) -> Decimal:
    return amount.quantize(quantum, ROUND_HALF_UP)


def _near_half(value: Decimal, quantum: Decimal) -> bool:
    """Whether ``value`` lies on or next to a half ``quantum`` (where a computation in
    floats may round either way)."""
    return abs(abs(value / quantum) % 1 - Decimal("0.5")) * quantum <= _TIE_MARGIN


# === ONE LINE === #


def line_amounts(price: Decimal, quantity: Decimal, rule: LineRule) -> LineAmounts:
    """The line ``price`` x ``quantity`` as the invoice computes it (Odoo's percent taxes,
    each without effect on the others' base). A product of decimals is rounded half up (a
    half cent too, as the invoice does); the line is not ``sure`` when what it bills
    depends on rounding a quotient (a tax included in the price, the net of it) or, taxes
    rounded per tax, a tax added to it, that lies on a half cent."""
    q = rule.quantum
    base = price * quantity
    gross = _round(base, q) if rule.per_line else base
    included = sum((t.rate for t in rule.taxes if t.included), ZERO)
    shares = [gross * t.rate / (1 + included) for t in rule.taxes if t.included]
    net = gross - sum(shares, ZERO)
    added = [net * t.rate for t in rule.taxes if not t.included]
    adds = bool(added)
    bills_total = rule.with_taxes or not adds
    if rule.per_line:
        rounded = [_round(share, q) for share in shares]
        subtotal = gross - sum(rounded, ZERO)
        fragile = [] if bills_total else shares
    else:
        subtotal = _round(net, q)
        fragile = ([net] + (shares if bills_total else [])) if shares else []
        fragile += added if rule.with_taxes else []
    total = subtotal + sum((_round(tax, q) for tax in shares + added), ZERO)
    sure = not any(_near_half(value, q) for value in fragile)
    deviation = base - (subtotal if adds else total)
    return LineAmounts(base, subtotal, total, total if bills_total else subtotal, deviation, sure)


def _candidates(amount, quantity, rule, rate, tight):
    """Unit prices to try, best first: the tariff's ``rate``, then the price giving the
    amount to ``price_digits`` digits, one more, ... up to :data:`MAX_PRICE_DIGITS`
    (``tight``: to that many only), then its neighbours."""
    added = sum((t.rate for t in rule.taxes if not t.included), ZERO)
    base = amount / (1 + added) if rule.with_taxes else amount
    estimate = base / quantity
    if rate is not None and not tight:
        yield rate
    first = MAX_PRICE_DIGITS if tight else min(rule.price_digits, MAX_PRICE_DIGITS)
    for digits in range(first, MAX_PRICE_DIGITS + 1):
        yield _round(estimate, Decimal(1).scaleb(-digits))
    step = Decimal(1).scaleb(-MAX_PRICE_DIGITS)
    nearest = _round(estimate, step)
    for n in range(1, 4):
        yield nearest + n * step
        yield nearest - n * step


def line_price(
    amount: Decimal,
    quantity: Decimal,
    rule: LineRule = NO_TAXES,
    rate: Decimal | None = None,
    tight: bool = False,
) -> LinePrice:
    """The quantity and unit price of a line billing ``amount`` (>= 0, whole currency
    units) for ``quantity`` (to the invoice's digits): the first candidate price
    (:func:`_candidates`) whose line bills the amount, surely; else the amount once
    (quantity 0). Price x quantity must round to the amount before added taxes. The
    amount once that no price reproduces (a tax rounding that skips it) is left to the
    caller to settle."""
    for shown in (quantity, ZERO) if quantity else (ZERO,):
        units = shown or Decimal(1)
        for price in _candidates(amount, units, rule, rate if shown else None, tight):
            found = line_amounts(price, units, rule)
            if found.billed == amount and found.sure and _shows(found, rule.quantum):
                return LinePrice(shown, price, found)
    return LinePrice(ZERO, amount, line_amounts(amount, Decimal(1), rule))


def _shows(found: LineAmounts, quantum: Decimal) -> bool:
    """Whether price x quantity rounds to what the line bills before added taxes (what
    the invoice shows beside them)."""
    return _round(found.base, quantum) == found.base - found.deviation


class LineToPrice(NamedTuple):
    """A line of an invoice to price: ``amount`` (signed), ``quantity`` (to the invoice's
    digits), its ``rule`` and its tariff ``rate`` (or None)."""

    amount: Decimal
    quantity: Decimal
    rule: LineRule
    rate: Decimal | None = None


def price_lines(lines: Sequence[LineToPrice]) -> list[LinePrice]:
    """The quantity and unit price of each line of an invoice (:func:`line_price`, the
    unit price signed as the amount), such that the invoice's total, which rounds the sum
    of the lines' unrounded amounts, is the sum of what they bill: lines furthest from
    their amount are priced tighter until it is."""
    priced = [_signed(line, tight=False) for line in lines]
    order = sorted(range(len(lines)), key=lambda i: -abs(priced[i].amounts.deviation))
    for index in order:
        if _total_rounds_right(priced, lines):
            break
        priced[index] = _signed(lines[index], tight=True)
    return priced


def _signed(line: LineToPrice, tight: bool) -> LinePrice:
    found = line_price(abs(line.amount), line.quantity, line.rule, line.rate, tight)
    if line.amount >= 0:
        return found
    amounts = found.amounts._replace(deviation=-found.amounts.deviation)
    return LinePrice(found.quantity, -found.unit_price, amounts)


def _total_rounds_right(priced: Sequence[LinePrice], lines: Sequence[LineToPrice]) -> bool:
    """Whether the lines' deviations add up to less than half a cent (exactly half a cent
    below for a single line, which rounds half up like the line itself)."""
    if not lines:
        return True
    half = lines[0].rule.quantum / 2
    deviation = sum((p.amounts.deviation for p in priced), ZERO)
    return abs(deviation) < half or (len(lines) == 1 and abs(deviation) == half)


# === CUMULATIVE PARTS === #


def parts_to_invoice(
    consumed: Mapping[tuple, Charged],
    invoiced: Mapping[tuple, Charged],
    quantum: Decimal,
    rate_of: Callable[[tuple], Decimal | None] = lambda key: None,
    quantity_quantum: Decimal = Decimal("0.01"),
    rule_of: Callable[[tuple], LineRule] | None = None,
) -> list[InvoicePart]:
    """The lines of the next invoice.

    :param consumed: charged so far per part key ``(product, ...)`` (4 decimals).
    :param invoiced: billed so far per part key (whole currency units); keys no longer
        charged (lines of older invoices without parts) count for their product only.
    :param quantum: the currency's smallest unit (``Decimal("0.01")``).
    :param rate_of: the tariff's unit price of a key, or None.
    :param quantity_quantum: the digits of an invoice line's quantity.
    :param rule_of: how the invoice computes the line of a key (default: no taxes).
    """
    rule_of = rule_of or (lambda key: LineRule(quantum))
    products: dict[Hashable, list[tuple]] = {}
    for key in sorted(set(consumed) | set(invoiced), key=repr):
        products.setdefault(key[0], []).append(key)
    billed = []
    for keys in products.values():
        for key, (amount, quantity) in _product_parts(keys, consumed, invoiced, quantum).items():
            billed.append((key, amount, quantity, _round(quantity, quantity_quantum)))
    lines = [LineToPrice(a, abs(shown), rule_of(k), rate_of(k)) for k, a, _q, shown in billed]
    priced = price_lines(lines)
    return [
        InvoicePart(key, quantity, amount, price.unit_price, shown if price.quantity else ZERO)
        for (key, amount, quantity, shown), price in zip(billed, priced, strict=True)
    ]


def _product_parts(keys, consumed, invoiced, quantum) -> dict:
    """``{key: [amount, quantity]}`` of one product's lines: none when its rounded total
    has nothing left to bill. A part gets a line when it bills a new quantity or nothing
    of it is billed (new, or its invoice credited); what the others' billed amounts differ
    by (a cent an earlier invoice put on them) goes, with the cents the parts' own
    rounding leaves, on the largest part billing a quantity now."""
    none = Charged(ZERO, ZERO)
    total = _round(sum((consumed.get(k, none).amount for k in keys), ZERO), quantum) - sum(
        (invoiced.get(k, none).amount for k in keys), ZERO
    )
    if not total:
        return {}
    billed = {}
    for key in keys:
        if key in consumed:
            done = invoiced.get(key, none)
            quantity = consumed[key].quantity - done.quantity
            if quantity or not done.amount:
                billed[key] = [_round(consumed[key].amount, quantum) - done.amount, quantity]
    if not billed:  # nothing new: the difference on the largest part
        largest = max(keys, key=lambda k: (abs(consumed.get(k, none).amount), repr(k)))
        billed[largest] = [ZERO, ZERO]
    rest = total - sum((amount for amount, _q in billed.values()), ZERO)
    if rest:
        largest = max(
            billed,
            key=lambda k: (bool(billed[k][1]), abs(consumed.get(k, none).amount), repr(k)),
        )
        billed[largest][0] += rest
    return {key: value for key, value in billed.items() if value[0] or value[1]}
