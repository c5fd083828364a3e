"""T8: the credit forecast on known consumption series."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from prepaid_core import forecast

TODAY = date(2026, 3, 10)


def series(*amounts, end=TODAY):
    """Money charged on the days before ``end``, the last amount the day before it."""
    return {end - timedelta(days=len(amounts) - i): D(a) for i, a in enumerate(amounts)}


def test_a_steady_week_gives_its_daily_use_and_the_days_the_credit_lasts():
    spent = series("10", "10", "10", "10", "10", "10", "10")
    result = forecast.forecast(D("35"), spent, TODAY)
    assert result == forecast.Forecast(D("10.0000"), D("3.5"))


def test_today_is_not_counted_it_is_not_over():
    spent = series("7", "7", "7", "7", "7", "7", "7")
    spent[TODAY] = D("100")
    assert forecast.daily_use(spent, TODAY) == D("7.0000")


def test_days_without_use_count_as_zero_within_the_window():
    # 14 over 7 days: 2 a day; older days are outside the window
    spent = series("50", "0", "0", "7", "0", "0", "7", "0")
    assert forecast.daily_use(spent, TODAY) == D("2.0000")
    assert forecast.forecast(D("9"), spent, TODAY).days_left == D("4.5")


def test_a_new_tenant_is_forecast_from_the_days_since_opening():
    spent = series("6", "4")
    assert forecast.daily_use(spent, TODAY, opened=TODAY - timedelta(days=2)) == D("5.0000")
    # without the opening date the two days are spread over the whole week
    assert forecast.daily_use(spent, TODAY) == D("1.4286")


def test_one_day_of_history_or_no_use_gives_no_forecast():
    assert forecast.forecast(D("50"), series("9"), TODAY, opened=TODAY - timedelta(days=1)) == (
        forecast.NO_FORECAST
    )
    assert forecast.forecast(D("50"), series("0", "0", "0"), TODAY) == forecast.NO_FORECAST
    assert forecast.forecast(D("50"), {}, TODAY) == forecast.NO_FORECAST


def test_days_are_rounded_down_to_a_tenth_and_zero_when_credit_is_used_up():
    assert forecast.days_left(D("10"), D("3")) == D("3.3")
    assert forecast.days_left(D("0"), D("3")) == D("0")
    assert forecast.days_left(D("-4"), D("3")) == D("0")
    assert forecast.days_left(D("10"), None) is None


def test_whole_days_told_to_the_tenant_round_down():
    assert forecast.whole_days(D("3.9")) == 3
    assert forecast.whole_days(D("0.4")) == 0


@pytest.mark.parametrize(
    ("days", "notice_days", "credit", "alarm1", "due"),
    [
        (D("2.9"), 3, D("30"), D("20"), True),
        (D("3"), 3, D("30"), D("20"), True),
        (D("3.1"), 3, D("30"), D("20"), False),
        (D("1"), 0, D("30"), D("20"), False),  # notice turned off
        (D("1"), 3, D("20"), D("20"), False),  # alarm 1 reached: its notice speaks
        (None, 3, D("30"), D("20"), False),  # no forecast
    ],
)
def test_the_early_notice_comes_before_the_alarms(days, notice_days, credit, alarm1, due):
    assert forecast.notice_due(days, notice_days, credit, alarm1) is due
