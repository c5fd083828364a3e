"""B9/B14: the quantity and unit price of an invoice line reproduce the amount charged as
the invoice computes the line (price x quantity rounded to the cent, a percent tax
included in the price or added to it, rounded per line or per tax), and an invoice's total
(which rounds the sum of its lines before rounding) is the sum of its lines."""

import random
from decimal import ROUND_HALF_UP
from decimal import Decimal as D

import pytest

from prepaid_core.invoicing import (
    MAX_PRICE_DIGITS,
    LineRule,
    LineToPrice,
    Tax,
    line_price,
    price_lines,
)

CENT = D("0.01")


def _r(value):
    return value.quantize(CENT, ROUND_HALF_UP)


def invoice_line(price, quantity, rate, included, per_line, with_taxes):
    """Odoo's subtotal and total of one line with one percent tax, written out apart from
    the code under test: what the line bills of the amount charged."""
    base = price * quantity
    if included:
        if per_line:
            total = _r(base)
            subtotal = total - _r(total * rate / (1 + rate))
        else:
            subtotal = _r(base / (1 + rate))
            total = subtotal + _r(base * rate / (1 + rate))
        return total
    subtotal = _r(base)
    tax = _r(subtotal * rate) if per_line else _r(base * rate)
    return subtotal + tax if with_taxes else subtotal


def _case(rnd):
    amount = D(rnd.choice([rnd.randint(1, 999), rnd.randint(1, 10**7)])).scaleb(-2)
    quantity = D(rnd.choice([rnd.randint(1, 999), rnd.randint(1, 999999)])).scaleb(-2)
    rate = D(rnd.choice([0, 3, 6, 9, 10, 13, 15, 17, 20, 21, 25]))
    included = rnd.random() < 0.5
    rule = LineRule(
        CENT,
        price_digits=rnd.choice([2, 3, 4, 6]),
        taxes=(Tax(rate / 100, included),) if rate else (),
        per_line=rnd.random() < 0.5,
        with_taxes=not included and rnd.random() < 0.3,
    )
    return amount, quantity, rate / 100, included, rule


@pytest.mark.parametrize("seed", range(4))
def test_random_lines_bill_the_amount_charged(seed):
    rnd = random.Random(seed)
    kept = 0
    for _ in range(2500):
        amount, quantity, rate, included, rule = _case(rnd)
        found = line_price(amount, quantity, rule)
        units = found.quantity or D(1)
        assert -found.unit_price.as_tuple().exponent <= MAX_PRICE_DIGITS
        assert found.quantity in (quantity, 0)
        billed = invoice_line(
            found.unit_price, units, rate, included, rule.per_line, rule.with_taxes
        )
        if billed != amount:  # no price bills it: only a tax rounding that skips it
            assert rule.with_taxes or (included and not rule.per_line)
            assert not _reachable(amount, rate, included, rule.per_line)
            continue
        # what the invoice shows: price x quantity rounds to the amount before added taxes
        before_taxes = amount if included or not rule.taxes else _r(found.unit_price * units)
        assert _r(found.unit_price * units) == before_taxes
        kept += bool(found.quantity)
        if not rule.taxes or (included and rule.per_line) or not rule.with_taxes:
            if quantity < 10**4 and not (included and not rule.per_line):
                assert found.quantity == quantity, "a price with 6 digits always exists"
    assert kept > 2500 * 0.9


def _reachable(amount, rate, included, per_line):
    """Whether some 6-digit price near it bills ``amount`` once, no tax rounded per tax
    lying on a half cent (where an invoice computing in floats may round either way)."""
    step = D(1).scaleb(-MAX_PRICE_DIGITS)
    centre = amount if included else amount / (1 + rate)
    start = centre.quantize(step)
    for n in range(-20000, 20001):
        price = start + n * step
        if invoice_line(price, D(1), rate, included, per_line, True) == amount:
            taxes = [price * rate / (1 + rate), price / (1 + rate)] if included else [price * rate]
            if per_line or all((t * 100) % 1 != D("0.5") for t in taxes):
                return True
    return False


def test_tariff_price_first_when_it_bills_the_amount():
    rule = LineRule(CENT, taxes=(Tax(D("0.15"), True),))
    # 30.33 kWh at 0.50 = 15.165: half up 15.17, as the invoice rounds it
    assert line_price(D("15.17"), D("30.33"), rule, D("0.5")).unit_price == D("0.5")
    # 3548.64 at 0.55 = 1951.752: its taxed parts round to 1951.76, not the 1951.75 charged
    found = line_price(D("1951.75"), D("3548.64"), rule, D("0.55"))
    assert found.unit_price == D("0.549999")
    assert invoice_line(found.unit_price, D("3548.64"), D("0.15"), True, False, False) == D(
        "1951.75"
    )


def test_fewest_digits_from_the_invoices_price_digits():
    assert line_price(D("8.10"), D("10"), LineRule(CENT, price_digits=2)).unit_price == D("0.81")
    assert line_price(D("8.13"), D("10"), LineRule(CENT, price_digits=2)).unit_price == D("0.813")
    assert line_price(D("8.13"), D("3"), LineRule(CENT, price_digits=4)).unit_price == D("2.71")
    assert line_price(D("2.70"), D("3.33")).unit_price == D("0.81")


def test_quantity_to_the_description_when_no_price_gives_the_amount():
    # 123456.78 kWh: a 6-digit price moves the line by 0.12 at least
    found = line_price(D("1000.01"), D("123456.78"))
    assert (found.quantity, found.unit_price) == (D(0), D("1000.01"))


def test_fixed_charge_with_tax_added_bills_its_price_with_taxes():
    rule = LineRule(CENT, taxes=(Tax(D("0.10"), False),), with_taxes=True, per_line=True)
    found = line_price(D("99.00"), D(0), rule)
    assert (found.quantity, found.unit_price, found.amounts.total) == (D(0), D("90.00"), D(99))
    # 4.55 + 0.46 and 4.54 + 0.45: nothing gives 5.00 rounded per line; once, for a
    # rounding line to settle
    assert line_price(D("5.00"), D(0), rule).amounts.total != D("5.00")


@pytest.mark.parametrize("seed", range(3))
def test_an_invoice_total_is_the_sum_of_its_lines(seed):
    """Lines priced each to bill its amount may still leave the sum of their unrounded
    amounts a cent off their sum; the invoice's total rounds that sum."""
    rnd = random.Random(seed)
    for _ in range(400):
        rate = D(rnd.choice([0, 9, 15]))
        rule = LineRule(
            CENT,
            taxes=(Tax(rate / 100, True),) if rate else (),
            per_line=rnd.random() < 0.5,
        )
        lines = [
            LineToPrice(
                D(rnd.randint(-500, 10**5)).scaleb(-2),
                D(rnd.randint(1, 10**5)).scaleb(-2),
                rule,
                D(rnd.choice([5, 55, 85, 8123, 3017])).scaleb(-rnd.choice([1, 2, 4])),
            )
            for _ in range(rnd.randint(1, 6))
        ]
        priced = price_lines(lines)
        bases = sum(p.unit_price * (p.quantity or 1) for p in priced)
        assert _r(bases) == sum(line.amount for line in lines)
        for line, price in zip(lines, priced, strict=True):
            assert (price.unit_price < 0) == (line.amount < 0) or not line.amount
            assert _r(abs(price.unit_price) * (price.quantity or 1)) == abs(line.amount)
