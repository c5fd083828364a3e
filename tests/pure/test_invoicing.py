"""B9/B14: invoice lines per band, step and charge, cumulative and to the cent; the
quantity and unit price of a line reproduce its amount as the invoice computes it."""

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core.invoicing import Charged, line_price, parts_to_invoice

CENT = D("0.01")
RATES = {("power", "peak", 1): D("0.8123"), ("power", "valley", 1): D("0.3015")}


def test_one_line_per_band_with_quantity_and_tariff_price():
    consumed = {
        ("power", "peak", 1): Charged(D("8.1230"), D("10")),
        ("power", "valley", 1): Charged(D("6.0300"), D("20")),
    }
    parts = parts_to_invoice(consumed, {}, CENT, RATES.get)
    assert [(p.key[1], p.quantity, p.amount, p.unit_price) for p in parts] == [
        ("peak", D("10"), D("8.12"), D("0.8123")),
        ("valley", D("20"), D("6.03"), D("0.3015")),
    ]


def test_cent_left_by_rounding_goes_on_the_largest_line():
    consumed = {
        ("power", "peak", 1): Charged(D("0.0050"), D("1")),
        ("power", "valley", 1): Charged(D("0.0050"), D("2")),
    }
    parts = parts_to_invoice(consumed, {}, CENT)
    assert sum(p.amount for p in parts) == D("0.01")
    assert [p.amount for p in parts] == [D("0.01"), D("0.00")]
    # the line carrying the remainder has the price that gives its amount
    assert parts[0].unit_price * parts[0].shown_quantity == D("0.01")


def test_quantity_shown_to_the_invoice_digits_with_the_price_that_gives_the_amount():
    consumed = {("power", "flat", 1): Charged(D("15.1665"), D("30.333"))}
    [part] = parts_to_invoice(consumed, {}, CENT, lambda key: D("0.5"))
    assert (part.quantity, part.shown_quantity, part.unit_price) == (
        D("30.333"),
        D("30.33"),
        D("0.5"),
    )
    [tiny] = parts_to_invoice({("power", "flat", 1): Charged(D("0.01"), D("0.001"))}, {}, CENT)
    assert (tiny.shown_quantity, tiny.unit_price) == (D("0.00"), D("0.01"))


def test_next_invoice_bills_only_what_is_new():
    consumed = {("power", "flat", 1): Charged(D("15.1665"), D("30.333"))}
    first = parts_to_invoice(consumed, {}, CENT)
    assert [(p.amount, p.quantity) for p in first] == [(D("15.17"), D("30.333"))]
    invoiced = {p.key: Charged(p.amount, p.quantity) for p in first}
    consumed = {("power", "flat", 1): Charged(D("21.3165"), D("42.633"))}
    second = parts_to_invoice(consumed, invoiced, CENT)
    assert [(p.amount, p.quantity) for p in second] == [(D("6.15"), D("12.300"))]
    assert parts_to_invoice(consumed, {**invoiced, first[0].key: Charged(D("21.32"), 0)}, CENT) == (
        []
    )


def test_products_are_billed_apart_and_a_line_without_quantity_is_once():
    consumed = {
        ("power", "flat", 1): Charged(D("5"), D("10")),
        ("water", "flat", 1): Charged(D("4.8"), D("1.5")),
    }
    parts = parts_to_invoice(consumed, {}, CENT)
    assert {p.key[0]: p.amount for p in parts} == {"power": D("5.00"), "water": D("4.80")}
    once = line_price(D("3.00"), D(0))
    assert (once.quantity, once.unit_price) == (D(0), D("3.00"))


def test_lines_of_older_invoices_without_parts_count_for_their_product():
    consumed = {("power", "flat", 1): Charged(D("12"), D("24"))}
    invoiced = {("power", None, None): Charged(D("5.00"), D("10"))}
    [part] = parts_to_invoice(consumed, invoiced, CENT)
    assert part.amount == D("7.00")


parts_strategy = st.dictionaries(
    st.tuples(
        st.sampled_from(["power", "water"]), st.sampled_from(["peak", "flat"]), st.integers(1, 3)
    ),
    st.tuples(st.integers(0, 10**7), st.integers(0, 10**6)),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(first=parts_strategy, more=parts_strategy)
def test_invoices_always_add_up_to_the_rounded_consumption(first, more):
    """However consumption grows between invoices, the invoices of each product add up to
    its consumption rounded to the cent, and each line's price times quantity is its amount."""
    consumed, invoiced = {}, {}
    for step in (first, more):
        for key, (amount, quantity) in step.items():
            old = consumed.get(key, Charged(D(0), D(0)))
            consumed[key] = Charged(
                old.amount + D(amount).scaleb(-4), old.quantity + D(quantity).scaleb(-3)
            )
        for part in parts_to_invoice(consumed, invoiced, CENT):
            old = invoiced.get(part.key, Charged(D(0), D(0)))
            invoiced[part.key] = Charged(old.amount + part.amount, old.quantity + part.quantity)
            shown = part.shown_quantity or 1
            assert (part.unit_price * shown).quantize(CENT, "ROUND_HALF_UP") == part.amount
        for product in {k[0] for k in consumed}:
            charged = sum(c.amount for k, c in consumed.items() if k[0] == product)
            billed = sum(c.amount for k, c in invoiced.items() if k[0] == product)
            assert billed == charged.quantize(CENT, "ROUND_HALF_UP")


def test_charge_parts_each_a_line_once_their_sub_cents_not_drifting():
    """Fixed charges of one product, one part per ledger line (no quantity): each billed
    once; the product's sub-cents carried to the next one, never a line of a cent."""
    may = ("fee", None, None, None, "2026-05")
    june = ("fee", None, None, None, "2026-06")
    consumed = {may: Charged(D("6.7742"), D(0))}
    [first] = parts_to_invoice(consumed, {}, CENT)
    assert (first.key, first.amount, first.shown_quantity, first.unit_price) == (
        may,
        D("6.77"),
        D(0),
        D("6.77"),
    )
    invoiced = {may: Charged(D("6.77"), D(0))}
    assert parts_to_invoice(consumed, invoiced, CENT) == [], "billed once"
    consumed[june] = Charged(D("10.0060"), D(0))
    [second] = parts_to_invoice(consumed, invoiced, CENT)
    assert (second.key, second.amount) == (june, D("10.01")), "16.7802 in all: 16.78"
    # the May invoice credited: May is billed again, on its own line
    again = parts_to_invoice(consumed, {may: Charged(D(0), D(0))}, CENT)
    assert [(p.key, p.amount) for p in again] == [(may, D("6.77")), (june, D("10.01"))]


def test_a_part_billed_already_gets_no_line_for_a_cent():
    peak, valley = ("power", "peak", 1, D("0.5")), ("power", "valley", 1, D("0.3"))
    # the first invoice put the product's cent on the peak: 2.51 instead of 2.505
    invoiced = {peak: Charged(D("2.51"), D("5.01")), valley: Charged(D("1.50"), D("5"))}
    consumed = {peak: Charged(D("2.5050"), D("5.01")), valley: Charged(D("3.0000"), D("10"))}
    [part] = parts_to_invoice(consumed, invoiced, CENT)
    assert (part.key, part.amount, part.shown_quantity) == (valley, D("1.50"), D("5"))
