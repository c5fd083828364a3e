"""B3: a meter's new readings as priced intervals, and the day books of a deduction run."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D

from prepaid_core import deduction as d
from prepaid_core import tariff

T0 = datetime(2026, 3, 2, 0, 0)
OPENED = datetime(2026, 3, 1)


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def utc_plus_one(value):
    return value + timedelta(hours=1)


def reading(minutes, consumption="0", chargeable=True, baseline=False, registers=None):
    return d.Reading(at(minutes), D(consumption), chargeable, baseline, registers)


def intervals(readings, cursor=None, opened=OPENED, local=utc_plus_one, multiplier=D(1)):
    cursor = cursor or d.MeterCursor(charged_until=at(0), base_at=at(0))
    return d.new_intervals(readings, cursor, opened, local, multiplier)


def test_chargeable_readings_close_consecutive_intervals_in_local_time():
    new = intervals([reading(60, "10"), reading(120, "4")])
    assert new.intervals == [
        (utc_plus_one(at(0)), utc_plus_one(at(60)), D("10")),
        (utc_plus_one(at(60)), utc_plus_one(at(120)), D("4")),
    ]
    assert new.quantities == [D("10"), D("4")]
    assert (new.charged_until, new.base_at) == (at(120), at(120))


def test_a_flagged_reading_moves_only_the_charged_until_cursor():
    new = intervals([reading(60, "10"), reading(120, chargeable=False), reading(180, "2")])
    assert [i.begin for i in new.intervals] == [utc_plus_one(at(0)), utc_plus_one(at(60))]
    assert new.quantities == [D("10"), D("2")]
    assert new.charged_until == at(180)


def test_a_baseline_starts_the_next_interval_without_charging():
    new = intervals([reading(60, chargeable=False, baseline=True), reading(120, "3")])
    assert new.intervals == [(utc_plus_one(at(60)), utc_plus_one(at(120)), D("3"))]
    assert new.base_at == at(120)


def test_readings_before_the_tenancy_are_not_the_tenants():
    opened = at(90)
    new = intervals([reading(60, "10"), reading(120, "4")], opened=opened)
    assert new.intervals == [(utc_plus_one(at(60)), utc_plus_one(at(120)), D("4"))]
    assert new.quantities == [D("4")]


def test_without_opening_every_reading_is_charged():
    """B7: a meter whose preset credit the account took over is charged from its first
    reading, whenever the account opened."""
    new = intervals([reading(60, "10"), reading(120, "4")], opened=None)
    assert new.quantities == [D("10"), D("4")]
    assert new.intervals[0] == (utc_plus_one(at(0)), utc_plus_one(at(60)), D("10"))


def test_a_first_reading_without_base_is_an_empty_interval_at_its_time():
    new = intervals([reading(60, "5")], cursor=d.MeterCursor(None, None))
    assert new.intervals == [(utc_plus_one(at(60)), utc_plus_one(at(60)), D("5"))]


def test_nothing_is_priced_twice_before_what_the_cycle_state_priced():
    cursor = d.MeterCursor(at(0), at(0), priced_until=utc_plus_one(at(30)))
    new = intervals([reading(60, "10")], cursor=cursor)
    assert new.intervals[0].begin == utc_plus_one(at(30))


def test_registers_price_each_band_from_the_deltas():
    base = {"sharp": None, "peak": "100", "flat": "50", "valley": None}
    current = {"sharp": None, "peak": "106", "flat": "54", "valley": None}
    cursor = d.MeterCursor(at(0), at(0), base_registers=base)
    new = intervals([reading(60, "10", registers=current)], cursor=cursor)
    assert new.intervals[0].consumption == {"peak": D("6"), "flat": D("4")}
    assert new.quantities == [D("10")]


def test_no_readings_leave_the_cursor_as_it_was():
    new = intervals([])
    assert (new.intervals, new.charged_until, new.base_at) == ([], at(0), at(0))


FLAT = tariff.Tariff(
    "Flat",
    (tariff.TariffVersion(datetime(2020, 1, 1), {tariff.FLAT: (D("0.5"),)}),),
).compile()


def priced(readings):
    new = intervals(readings, local=lambda value: value)
    return new, FLAT.price_run(None, new.intervals)


def test_day_books_add_a_runs_intervals_per_account_and_day():
    books = {}
    new, run = priced([reading(60, "10"), reading(120, "4"), reading(24 * 60 + 30, "2")])
    d.book_run(books, 7, 1, 42, new, run, "electricity")
    first, second = books[7, date(2026, 3, 2)], books[7, date(2026, 3, 3)]
    assert (first.amount, first.quantity, first.count) == (D("7.0000"), D("14"), 2)
    assert (first.first, first.last) == (at(0), at(120))
    assert first.meters == {"42": [at(0).isoformat(), at(120).isoformat(), 2]}
    [(key, (quantity, amount, price))] = first.lines.items()
    assert key.endswith("|flat|1|electricity")
    assert (quantity, amount, price) == (D("14"), D("7.0000"), D("0.5"))
    assert (second.amount, second.count) == (D("1.0000"), 1)
    assert d.balance_moves(books) == {7: D("-8.0000")}


def test_a_new_days_line_is_the_negative_of_its_book():
    books = {}
    new, run = priced([reading(60, "10")])
    d.book_run(books, 7, 1, 42, new, run, "water")
    line = books[7, date(2026, 3, 2)].as_line()
    assert (line.amount, line.quantity, line.reading_count) == (D("-5.0000"), D("10"), 1)
    assert (line.reading_from, line.reading_to) == (at(0), at(60))
    [(key, figures)] = line.detail["lines"].items()
    assert key.endswith("|water") and figures == ["10", "5.0000", "0.5"]


def test_a_book_added_to_the_days_line_sums_meters_and_tariff_lines():
    books = {}
    new, run = priced([reading(60, "10")])
    d.book_run(books, 7, 1, 42, new, run, "electricity")
    old = books[7, date(2026, 3, 2)].as_line()
    old.detail = {"meters": dict(old.detail["meters"]), "lines": dict(old.detail["lines"])}
    books = {}
    cursor = d.MeterCursor(at(60), at(60))
    later = d.new_intervals([reading(120, "4")], cursor, OPENED, lambda v: v, D(1))
    d.book_run(books, 7, 1, 42, later, FLAT.price_run(None, later.intervals), "electricity")
    line = books[7, date(2026, 3, 2)].added_to(old)
    assert (line.amount, line.quantity, line.reading_count) == (D("-7.0000"), D("14"), 2)
    assert (line.reading_from, line.reading_to) == (at(0), at(120))
    assert line.detail["meters"]["42"] == [at(0).isoformat(), at(120).isoformat(), 2]
    [figures] = line.detail["lines"].values()
    assert figures == ["14", "7.0000", "0.5"]


def test_a_book_of_nothing_moves_no_balance():
    book = d.DayBook(1, at(0), at(0))
    assert d.balance_moves({(7, date(2026, 3, 2)): book}) == {}
