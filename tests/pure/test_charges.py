"""B14/B15: fixed charges per monthly cycle (due cycles, demand, proration) and the
common-area split (largest remainder: the parts add up to the cost exactly)."""

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import charges as c


def test_monthly_period_starts_on_the_billing_day():
    assert c.monthly_period(1, date(2026, 3, 1)) == (date(2026, 3, 1), date(2026, 4, 1))
    assert c.monthly_period(15, date(2026, 3, 14)) == (date(2026, 2, 15), date(2026, 3, 15))
    assert c.monthly_period(15, date(2026, 3, 15)) == (date(2026, 3, 15), date(2026, 4, 15))
    assert c.monthly_period(5, date(2026, 1, 4)) == (date(2025, 12, 5), date(2026, 1, 5))
    assert c.monthly_period(28, date(2026, 12, 31)).end == date(2027, 1, 28)
    assert c.monthly_period(1, date(2026, 2, 10)).days == 28


def test_billing_day_outside_1_to_28_is_refused():
    with pytest.raises(c.ChargeError, match="between 1 and 28"):
        c.monthly_period(31, date(2026, 1, 1))


def test_due_periods_run_from_the_first_day_to_today():
    periods = c.due_periods(10, date(2026, 1, 20), date(2026, 3, 10))
    assert [p.start for p in periods] == [date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10)]
    # the day before the billing day: the new cycle is not due yet
    assert c.due_periods(10, date(2026, 1, 20), date(2026, 3, 9))[-1].start == date(2026, 2, 10)
    assert c.due_periods(10, date(2026, 4, 1), date(2026, 3, 9)) == []


def test_due_periods_are_capped():
    periods = c.due_periods(1, date(2000, 1, 1), date(2026, 6, 1))
    assert len(periods) == c.MAX_DUE_PERIODS
    assert periods[-1].start == date(2026, 6, 1)


def test_service_fee_is_the_price_each_full_cycle():
    period = c.monthly_period(1, date(2026, 4, 1))
    assert c.cycle_amount(c.SERVICE_FEE, "25", period) == D("25.0000")
    assert c.cycle_amount(c.SERVICE_FEE, "25", period, active_from=date(2026, 3, 1)) == D("25")


def test_first_cycle_is_prorated_by_days():
    period = c.monthly_period(1, date(2026, 4, 1))  # 30 days
    assert c.cycle_amount(c.SERVICE_FEE, "30", period, active_from=date(2026, 4, 11)) == D("20")
    # 10 days of 30 of 10.00: 3.3333... half up
    assert c.cycle_amount(c.PACKAGE, "10", period, active_from=date(2026, 4, 21)) == D("3.3333")
    assert c.cycle_amount(c.SERVICE_FEE, "10", period, active_from=date(2026, 5, 2)) == D("0")


def test_demand_charge_is_price_times_contracted_capacity():
    period = c.monthly_period(1, date(2026, 4, 1))
    assert c.cycle_amount(c.DEMAND, "12.5", period, capacity="7.5") == D("93.7500")
    assert c.cycle_amount(c.DEMAND, "12.5", period, capacity=0) == D("0")
    with pytest.raises(c.ChargeError, match="capacity cannot be negative"):
        c.cycle_amount(c.DEMAND, "12.5", period, capacity="-1")


def test_bad_figures_are_refused():
    period = c.monthly_period(1, date(2026, 4, 1))
    with pytest.raises(c.ChargeError, match="not a kind"):
        c.cycle_amount("rent", "1", period)
    with pytest.raises(c.ChargeError, match="negative"):
        c.cycle_amount(c.SERVICE_FEE, "-1", period)
    with pytest.raises(Exception, match="more than 4 decimals"):
        c.cycle_amount(c.SERVICE_FEE, "1.00001", period)
    with pytest.raises(c.ChargeError):
        c.cycle_amount(c.DEMAND, "1", period, capacity=1.5)  # a float


# === SPLIT === #


def test_split_by_area_adds_up_exactly():
    parts = c.split_cost(D("100"), {"A": D("50"), "B": D("30"), "C": D("20")})
    assert parts == {"A": D("50"), "B": D("30"), "C": D("20")}
    parts = c.split_cost(D("100"), {"A": 1, "B": 1, "C": 1})
    assert parts == {"A": D("33.3334"), "B": D("33.3333"), "C": D("33.3333")}
    assert sum(parts.values()) == D("100")


def test_split_gives_the_missing_units_to_the_largest_remainders():
    # exact: 0.00285714..., 0.00571428..., 0.01142857... -> floors 0.0028, 0.0057, 0.0114
    parts = c.split_cost(D("0.02"), {"small": 1, "middle": 2, "large": 4})
    assert parts == {"small": D("0.0029"), "middle": D("0.0057"), "large": D("0.0114")}


def test_split_with_a_zero_weight_gives_it_nothing():
    parts = c.split_cost(D("10"), {"let": D("12.5"), "empty": 0})
    assert parts == {"let": D("10"), "empty": D("0")}


def test_split_needs_weights_and_a_cost():
    with pytest.raises(c.ChargeError, match="add up to zero"):
        c.split_cost(D("10"), {"A": 0})
    with pytest.raises(c.ChargeError, match="add up to zero"):
        c.split_cost(D("10"), {})
    with pytest.raises(c.ChargeError, match="negative"):
        c.split_cost(D("10"), {"A": -1, "B": 2})
    with pytest.raises(c.ChargeError, match="negative"):
        c.split_cost(D("-10"), {"A": 1})


costs = st.integers(0, 10**9).map(lambda n: D(n).scaleb(-4))
weights = st.lists(
    st.integers(0, 10**6).map(lambda n: D(n).scaleb(-2)), min_size=1, max_size=40
).filter(lambda ws: sum(ws) > 0)


@settings(max_examples=300, deadline=None)
@given(costs, weights)
def test_split_always_adds_up_and_stays_within_a_unit_of_the_exact_share(cost, ws):
    parts = c.split_cost(cost, dict(enumerate(ws)))
    assert sum(parts.values()) == cost
    total = sum(ws)
    for key, weight in enumerate(ws):
        assert parts[key] == parts[key].quantize(D("0.0001"))
        assert abs(parts[key] - cost * weight / total) < D("0.0001")
