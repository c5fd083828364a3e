"""Invoice lines of charged consumption (B9, B14): what a new invoice bills, line by line.

Consumption is billed cumulatively: for each product, a new invoice bills the consumption
charged so far, rounded to the currency, less what earlier invoices billed, so late
consumption lands on the next invoice and sub-cent remainders never drift. Within a product
there is one line per *part* (time-of-use band, ladder step and unit price), each with its
quantity and unit price; the product's rounded amount is the truth and any cent the parts'
own rounding leaves is put on its largest part, so the lines add up to the ledger.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

ZERO = Decimal(0)
#: digits of a unit price shown on an invoice line
PRICE_QUANTUM = Decimal("0.000001")


class Charged(NamedTuple):
    """Money (4 decimals or cents) and quantity (kWh, m³) of one part."""

    amount: Decimal
    quantity: Decimal


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


def unit_price(amount: Decimal, quantity: Decimal, rate: Decimal | None, quantum) -> Decimal:
    """The unit price of a line billing ``amount`` for ``quantity``: the tariff's ``rate``
    when it gives that amount to the cent, else the amount divided by the quantity (a line
    carrying a remainder); a line without quantity bills its amount once."""
    if not quantity:
        return amount
    if rate is not None and _round(rate * quantity, quantum) == amount:
        return rate
    return (amount / quantity).quantize(Decimal("1e-12"))


def parts_to_invoice(
    consumed: Mapping[tuple, Charged],
    invoiced: Mapping[tuple, Charged],
    quantum: Decimal,
    rate_of=lambda key: None,
    quantity_quantum: Decimal = Decimal("0.01"),
) -> list[InvoicePart]:
    """The lines of the next invoice.

    :param consumed: charged so far per part key ``(product, ...)`` (4 decimals).
    :param invoiced: billed so far per part key (whole currency units); keys no longer
        charged (lines of older invoices without parts) count for their product only.
    :param quantum: the currency's smallest unit (``Decimal("0.01")``).
    :param rate_of: the tariff's unit price of a key, or None.
    :param quantity_quantum: the digits of an invoice line's quantity.
    """
    products: dict[Hashable, list[tuple]] = {}
    for key in sorted(set(consumed) | set(invoiced), key=repr):
        products.setdefault(key[0], []).append(key)
    parts = []
    for keys in products.values():
        billed = _product_parts(keys, consumed, invoiced, quantum)
        for key, (amount, quantity) in billed.items():
            shown = _round(quantity, quantity_quantum)
            price = unit_price(amount, shown, rate_of(key), quantum)
            parts.append(InvoicePart(key, quantity, amount, price, shown))
    return parts


def _product_parts(keys, consumed, invoiced, quantum) -> dict:
    """``{key: [amount, quantity]}`` of one product's lines: none when its rounded total
    has nothing left to bill."""
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
            billed[key] = [
                _round(consumed[key].amount, quantum) - done.amount,
                consumed[key].quantity - done.quantity,
            ]
    if not billed:  # only older invoices' lines left: the difference on the first
        billed[keys[0]] = [ZERO, ZERO]
    rest = total - sum((amount for amount, _q in billed.values()), ZERO)
    if rest:
        largest = max(billed, key=lambda k: (abs(consumed.get(k, none).amount), repr(k)))
        billed[largest][0] += rest
    return {key: value for key, value in billed.items() if value[0] or value[1]}
