"""B1/B3: tariff definitions, validation messages and hand-computed interval prices."""

import decimal
import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal as D

import pytest

from prepaid_core import tariff as t
from prepaid_core.tariff.book import _EXACT

T0 = datetime(2026, 3, 1)


def day_tou():
    """valley 23:00-07:00, flat 07:00-10:00, peak 10:00-12:00, flat 12:00-23:00."""
    return t.TouSchedule.daily(
        [
            t.TouSegment(time(23), time(7), t.VALLEY),
            t.TouSegment(time(7), time(10), t.FLAT),
            t.TouSegment(time(10), time(12), t.PEAK),
            t.TouSegment(time(12), time(23), t.FLAT),
        ]
    )


def compile_(*versions, **kwargs):
    return t.Tariff("Residential", tuple(versions), **kwargs).compile()


FLAT = compile_(t.TariffVersion.flat(date(2026, 1, 1), "0.60"))
LADDER = compile_(
    t.TariffVersion(date(2026, 1, 1), {t.FLAT: ("0.50", "0.60", "0.80")}, step_limits=(100, 200))
)
TOU = compile_(
    t.TariffVersion(
        date(2026, 1, 1), {t.VALLEY: ("0.30",), t.FLAT: ("0.60",), t.PEAK: ("1.00",)}, tou=day_tou()
    )
)
LADDER_TOU = compile_(
    t.TariffVersion(
        date(2026, 1, 1),
        {t.VALLEY: ("0.30", "0.40"), t.FLAT: ("0.60", "0.70"), t.PEAK: ("1.00", "1.20")},
        step_limits=(100,),
        tou=day_tou(),
    )
)


def at(hour, minute=0, day=1):
    return datetime(2026, 3, day, hour, minute)


def summary(result):
    return [(ln.band, ln.step, ln.quantity, ln.unit_price, ln.amount) for ln in result.lines]


def state_with(tariff, consumption, when=T0):
    """A state that has already consumed ``consumption`` (charged in one interval)."""
    start = tariff.new_state(when).cycle_start
    return tariff.price_interval(None, start, start, D(consumption)).state


# === FLAT, LADDER === #


def test_flat_price():
    r = FLAT.price_interval(None, at(8), at(9), D("12.5"))
    assert summary(r) == [(t.FLAT, 1, D("12.5"), D("0.60"), D("7.5000"))]
    assert r.amount == D("7.5000") and str(r.amount) == "7.5000"
    assert r.state.consumption == D("12.5") and r.state.charged == D("7.5")
    assert r.state.priced_until == at(9) and r.closed_cycles == ()
    assert r.lines[0].version == "2026-01-01" and r.lines[0].cycle_start == T0


def test_ladder_step_boundary_inside_interval_is_split_exactly():
    state = state_with(LADDER, "90")
    r = LADDER.price_interval(state, at(8), at(9), D("25"))
    # 10 kWh left in step 1 at 0.50, 15 kWh in step 2 at 0.60
    assert summary(r) == [
        (t.FLAT, 1, D("10"), D("0.50"), D("5.0000")),
        (t.FLAT, 2, D("15"), D("0.60"), D("9.0000")),
    ]
    assert r.amount == D("14.0000") and r.state.consumption == D("115")


def test_ladder_two_boundaries_in_one_interval():
    r = LADDER.price_interval(None, at(0), at(1), D("250"))
    assert [(ln.step, ln.quantity, ln.amount) for ln in r.lines] == [
        (1, D("100"), D("50.0000")),
        (2, D("100"), D("60.0000")),
        (3, D("50"), D("40.0000")),
    ]
    assert r.amount == D("150.0000")


def test_ladder_limit_reached_exactly_then_next_step():
    r1 = LADDER.price_interval(None, at(0), at(1), D("100"))
    assert [(ln.step, ln.quantity) for ln in r1.lines] == [(1, D("100"))]
    r2 = LADDER.price_interval(r1.state, at(1), at(2), D("1"))
    assert [(ln.step, ln.quantity, ln.amount) for ln in r2.lines] == [(2, D("1"), D("0.6000"))]


def test_cumulative_rounding_does_not_drift():
    tariff = compile_(t.TariffVersion.flat(date(2026, 1, 1), "0.12345"))
    r1 = tariff.price_interval(None, at(0), at(1), D("0.5"))
    r2 = tariff.price_interval(r1.state, at(1), at(2), D("0.5"))
    # 0.061725 -> 0.0617; cycle to date 0.12345 -> 0.1235, so the second interval is 0.0618
    assert (r1.amount, r2.amount) == (D("0.0617"), D("0.0618"))
    at_once = tariff.price_interval(None, at(0), at(2), D("1"))
    assert r1.amount + r2.amount == at_once.amount == D("0.1235")
    assert r2.state.lines[(t.FLAT, 1)] == (D("1.0"), D("0.123450"), D("0.1235"))


def test_zero_consumption_and_zero_length_interval():
    r = LADDER.price_interval(None, at(8), at(8), D("0"))
    assert r.lines == () and r.amount == D("0.0000") and r.state.priced_until == at(8)
    r2 = TOU.price_interval(None, at(11), at(11), D("2"))
    assert summary(r2) == [(t.PEAK, 1, D("2"), D("1.00"), D("2.0000"))]


# === TIME OF USE === #


def test_total_is_split_by_time_across_periods():
    r = TOU.price_interval(None, at(6), at(8), D("3"))
    assert summary(r) == [
        (t.VALLEY, 1, D("1.5"), D("0.30"), D("0.4500")),
        (t.FLAT, 1, D("1.5"), D("0.60"), D("0.9000")),
    ]


def test_time_split_is_exact_with_largest_remainder():
    # 06:00-09:00: valley 1 h, flat 2 h; 1 kWh does not divide by 3
    r = TOU.price_interval(None, at(6), at(9), D("1"))
    quantities = [ln.quantity for ln in r.lines]
    assert quantities == [D("0.333333"), D("0.666667")]
    assert sum(quantities) == D("1")


def test_registers_priced_per_band():
    r = TOU.price_interval(None, at(6), at(8), {t.VALLEY: D("1"), t.FLAT: D("2"), t.PEAK: D(0)})
    assert summary(r) == [
        (t.VALLEY, 1, D("1"), D("0.30"), D("0.3000")),
        (t.FLAT, 1, D("2"), D("0.60"), D("1.2000")),
    ]


def test_interval_over_midnight_and_a_whole_day():
    r = TOU.price_interval(None, at(22), at(22, day=2), D("24"))
    by_band = {}
    for ln in r.lines:
        by_band[ln.band] = by_band.get(ln.band, 0) + ln.quantity
    # 24 h: valley 8 h, flat 14 h, peak 2 h; 1 kWh an hour
    assert by_band == {t.FLAT: D("14"), t.VALLEY: D("8"), t.PEAK: D("2")}
    assert r.amount == D("14") * D("0.6") + D("8") * D("0.3") + D("2") * D("1")


def test_ladder_x_tou_step_boundary_split_in_time_order():
    state = state_with(LADDER_TOU, "99")
    # 06:30-07:30: valley then flat, 2 kWh each; the 100 kWh limit falls after 1 kWh valley
    r = LADDER_TOU.price_interval(state, at(6, 30), at(7, 30), D("4"))
    assert summary(r) == [
        (t.VALLEY, 1, D("1"), D("0.30"), D("0.3000")),
        (t.VALLEY, 2, D("1"), D("0.40"), D("0.4000")),
        (t.FLAT, 2, D("2"), D("0.70"), D("1.4000")),
    ]
    # the same with registers: the valley period comes first in the interval
    r2 = LADDER_TOU.price_interval(state, at(6, 30), at(7, 30), {t.FLAT: D(2), t.VALLEY: D(2)})
    assert summary(r2) == summary(r)
    # 22:30-23:30: flat comes first
    r3 = LADDER_TOU.price_interval(state, at(22, 30), at(23, 30), {t.VALLEY: D(2), t.FLAT: D(2)})
    assert summary(r3) == [
        (t.FLAT, 1, D("1"), D("0.60"), D("0.6000")),
        (t.FLAT, 2, D("1"), D("0.70"), D("0.7000")),
        (t.VALLEY, 2, D("2"), D("0.40"), D("0.8000")),
    ]


def test_registers_without_their_period_in_the_interval_follow_time_order_then_band_order():
    state = state_with(LADDER_TOU, "99")
    # 08:00-09:00 is all flat; a peak register (clock drift) is spread over the interval
    r = LADDER_TOU.price_interval(state, at(8), at(9), {t.PEAK: D(1), t.FLAT: D(1)})
    assert summary(r) == [
        (t.PEAK, 1, D("1"), D("1.00"), D("1.0000")),
        (t.FLAT, 2, D("1"), D("0.70"), D("0.7000")),
    ]


def test_seasons():
    summer = t.TouSeason(
        [t.TouSegment(time(0), time(12), t.VALLEY), t.TouSegment(time(12), time(0), t.PEAK)],
        start_month=6,
        start_day=1,
        name="Summer",
    )
    winter = t.TouSeason([t.TouSegment(time(0), time(0), t.FLAT)], start_month=10, name="Winter")
    tariff = compile_(
        t.TariffVersion(
            date(2026, 1, 1),
            {t.VALLEY: "0.3", t.PEAK: "1.0", t.FLAT: "0.6"},
            tou=t.TouSchedule((summer, winter)),
        )
    )
    assert tariff.band_at(datetime(2026, 3, 1, 13)) == t.FLAT  # winter carried over new year
    assert tariff.band_at(datetime(2026, 6, 1, 13)) == t.PEAK
    assert tariff.band_at(datetime(2026, 6, 1, 11)) == t.VALLEY
    assert tariff.band_at(datetime(2026, 10, 1, 11)) == t.FLAT
    r = tariff.price_interval(None, datetime(2026, 5, 31, 12), datetime(2026, 6, 1, 12), D("24"))
    assert summary(r) == [
        (t.FLAT, 1, D("12"), D("0.6"), D("7.2000")),
        (t.VALLEY, 1, D("12"), D("0.3"), D("3.6000")),
    ]


def test_flat_tariff_sums_tou_registers():
    r = FLAT.price_interval(None, at(8), at(9), {t.PEAK: D("1"), t.VALLEY: D("2")})
    assert summary(r) == [(t.FLAT, 1, D("3"), D("0.60"), D("1.8000"))]


def test_water_tariff():
    tariff = t.Tariff("Water", (t.TariffVersion.flat(date(2026, 1, 1), "3.20"),), utility=t.WATER)
    assert tariff.unit == "m³"
    r = tariff.compile().price_interval(None, at(0), at(1), D("0.125"))
    assert r.amount == D("0.4000")


# === VERSIONS AND CYCLES === #


def test_version_change_inside_interval_split_by_time():
    tariff = compile_(
        t.TariffVersion.flat(date(2026, 1, 1), "0.50", code="2026"),
        t.TariffVersion.flat(date(2026, 3, 15), "0.70", code="2026-03"),
    )
    r = tariff.price_interval(None, datetime(2026, 3, 14, 12), datetime(2026, 3, 15, 12), D(10))
    assert [(ln.version, ln.quantity, ln.amount) for ln in r.lines] == [
        ("2026", D("5"), D("2.5000")),
        ("2026-03", D("5"), D("3.5000")),
    ]
    assert tariff.version_at(datetime(2026, 3, 15)).code == "2026-03"
    # the next interval (fast path) uses the new version
    r2 = tariff.price_interval(r.state, datetime(2026, 3, 15, 12), datetime(2026, 3, 15, 13), D(1))
    assert r2.lines[0].version == "2026-03" and r2.amount == D("0.7000")


def test_version_change_keeps_the_cycle_accumulation():
    tariff = compile_(
        t.TariffVersion(date(2026, 1, 1), {t.FLAT: ("0.5", "0.6")}, step_limits=(100,)),
        t.TariffVersion(date(2026, 3, 10), {t.FLAT: ("0.55", "0.65")}, step_limits=(100,)),
    )
    r1 = tariff.price_interval(None, at(0), at(0, day=9), D(90))
    r2 = tariff.price_interval(r1.state, at(0, day=9), at(0, day=11), D(20))
    assert [(ln.version, ln.step, ln.quantity) for ln in r2.lines] == [
        ("2026-01-01", 1, D("10")),
        ("2026-03-10", 2, D("10")),
    ]


def test_cycle_boundary_resets_accumulation():
    state = state_with(LADDER, "150", datetime(2026, 2, 10))
    r = LADDER.price_interval(state, datetime(2026, 2, 28, 12), datetime(2026, 3, 1, 12), D(20))
    assert [(ln.cycle_start, ln.step, ln.quantity, ln.amount) for ln in r.lines] == [
        (datetime(2026, 2, 1), 2, D("10"), D("6.0000")),
        (datetime(2026, 3, 1), 1, D("10"), D("5.0000")),
    ]
    (closed,) = r.closed_cycles
    assert closed.cycle_start == datetime(2026, 2, 1) and closed.consumption == D("160")
    assert closed.charged == D("50") + D("36") and closed.priced_until == datetime(2026, 3, 1)
    assert r.state.cycle_start == datetime(2026, 3, 1) and r.state.consumption == D("10")
    assert r.state.charged == D("5.0000") and r.amount == D("11.0000")


def test_state_of_an_old_cycle_is_closed_on_the_next_reading():
    state = state_with(LADDER, "150", datetime(2026, 1, 10))
    r = LADDER.price_interval(state, datetime(2026, 3, 2), datetime(2026, 3, 3), D(1))
    assert [c.cycle_start for c in r.closed_cycles] == [datetime(2026, 1, 1)]
    assert r.state.cycle_start == datetime(2026, 3, 1) and r.lines[0].step == 1


@pytest.mark.parametrize(
    ("rule", "when", "bounds"),
    [
        (t.CycleRule(), datetime(2026, 3, 31, 23), (datetime(2026, 3, 1), datetime(2026, 4, 1))),
        (
            t.CycleRule(billing_day=15),
            datetime(2026, 1, 3),
            (datetime(2025, 12, 15), datetime(2026, 1, 15)),
        ),
        (
            t.CycleRule(billing_day=15),
            datetime(2026, 12, 15),
            (datetime(2026, 12, 15), datetime(2027, 1, 15)),
        ),
        (
            t.CycleRule(t.ANNUAL, billing_day=1, billing_month=7),
            datetime(2026, 3, 1),
            (datetime(2025, 7, 1), datetime(2026, 7, 1)),
        ),
        (
            t.CycleRule(t.ANNUAL),
            datetime(2026, 1, 1),
            (datetime(2026, 1, 1), datetime(2027, 1, 1)),
        ),
    ],
)
def test_cycle_bounds(rule, when, bounds):
    assert rule.bounds(when) == bounds


def test_annual_cycle_accumulates_across_months():
    tariff = compile_(
        t.TariffVersion(date(2026, 1, 1), {t.FLAT: ("0.5", "0.6")}, step_limits=(100,)),
        cycle=t.CycleRule(t.ANNUAL),
    )
    r1 = tariff.price_interval(None, datetime(2026, 1, 5), datetime(2026, 2, 5), D(80))
    r2 = tariff.price_interval(r1.state, datetime(2026, 2, 5), datetime(2026, 5, 5), D(40))
    assert [(ln.step, ln.quantity) for ln in r2.lines] == [(1, D("20")), (2, D("20"))]
    assert r2.closed_cycles == ()


# === CALLER CONTRACT === #


def test_a_reading_is_charged_only_once():
    r = FLAT.price_interval(None, at(8), at(9), D(1))
    with pytest.raises(t.AlreadyPricedError, match="charged only once"):
        FLAT.price_interval(r.state, at(8), at(9), D(1))
    with pytest.raises(t.AlreadyPricedError):
        FLAT.price_interval(r.state, at(8, 30), at(10), D(1))
    assert FLAT.price_interval(r.state, at(9), at(10), D(1)).amount == D("0.6")
    assert FLAT.price_interval(r.state, at(11), at(12), D(1)).amount == D("0.6")  # a gap is fine


def test_state_round_trips_through_json():
    r = LADDER_TOU.price_interval(None, at(6), at(8, day=2), D("123.457"))
    data = json.loads(json.dumps(r.state.to_json()))
    restored = t.CycleState.from_json(data)
    assert restored == r.state
    nxt = LADDER_TOU.price_interval(restored, at(8, day=2), at(9, day=2), D(1))
    assert nxt == LADDER_TOU.price_interval(r.state, at(8, day=2), at(9, day=2), D(1))
    # 26 h: 7 periods (valley 1+1+7 h, flat 3+11+1 h, peak 2 h), 4.748346153.. kWh an hour;
    # the 2 micro-kWh left by rounding down go to the largest remainders (flat 11 h, flat 3 h)
    assert r.state.consumption_by_band() == {
        t.VALLEY: D("42.735115"),
        t.FLAT: D("71.225193"),
        t.PEAK: D("9.496692"),
    }
    assert sum(r.state.consumption_by_band().values()) == D("123.457")


def test_aware_datetimes_are_converted_to_the_tariff_time_zone():
    tariff = compile_(
        t.TariffVersion(
            date(2026, 1, 1),
            {t.VALLEY: ("0.30",), t.FLAT: ("0.60",), t.PEAK: ("1.00",)},
            tou=day_tou(),
        ),
        timezone="Asia/Shanghai",
    )
    # 02:00 UTC is 10:00 in Shanghai: peak
    start = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)
    r = tariff.price_interval(None, start, start + timedelta(hours=1), D(1))
    assert summary(r) == [(t.PEAK, 1, D("1"), D("1.00"), D("1.0000"))]
    assert r.state.priced_until == datetime(2026, 3, 1, 11)


def test_module_level_functions():
    compiled = t.compile_tariff(t.Tariff("x", (t.TariffVersion.flat(date(2026, 1, 1), 1),)))
    assert t.price_interval(compiled, None, at(0), at(1), D(2)).amount == D("2.0000")


# === BAD INPUT === #


@pytest.mark.parametrize(
    ("consumption", "error", "message"),
    [
        (D("-1.2"), t.NegativeConsumptionError, r"cannot be negative \(-1.2\).*rollback"),
        ({t.PEAK: D("-1")}, t.NegativeConsumptionError, "peak band cannot be negative"),
        (1.5, t.ConsumptionError, "exact decimal"),
        ({t.PEAK: 1.5}, t.ConsumptionError, "exact decimal"),
        (D("NaN"), t.ConsumptionError, "finite"),
        ({t.PEAK: D("Infinity")}, t.ConsumptionError, "finite"),
        ({"night": D(1)}, t.UnknownBandError, "'night', which is not a time-of-use band"),
        ({t.SHARP: D(1)}, t.UnknownBandError, "sharp band, which tariff version 2026-01-01"),
    ],
)
def test_bad_consumption(consumption, error, message):
    with pytest.raises(error, match=message):
        TOU.price_interval(None, at(8), at(9), consumption)
    with pytest.raises(error, match=message):  # also through the general path
        TOU.price_interval(None, at(6), at(9), consumption)


def test_bad_intervals():
    with pytest.raises(t.IntervalError, match="earlier than the previous one"):
        FLAT.price_interval(None, at(9), at(8), D(1))
    state = FLAT.new_state(at(9))
    with pytest.raises(t.IntervalError, match="before the settlement cycle"):
        FLAT.price_interval(state, datetime(2026, 2, 27), datetime(2026, 2, 28), D(1))
    tariff = compile_(
        t.TariffVersion.flat(date(2026, 1, 1), "1", valid_to=date(2026, 2, 1)),
        t.TariffVersion.flat(date(2026, 3, 1), "1"),
    )
    with pytest.raises(t.NoVersionError, match="no version in force on 2026-02-01"):
        tariff.price_interval(None, datetime(2026, 1, 31), datetime(2026, 2, 2), D(1))
    with pytest.raises(t.NoVersionError):
        tariff.price_interval(None, datetime(2025, 12, 1), datetime(2025, 12, 2), D(1))


def test_precision_overflow_is_refused_not_rounded():
    with pytest.raises(t.PrecisionError, match="too many digits"):
        FLAT.price_interval(None, at(0), at(1), D("1." + "1" * 70))


def step_prices(n):
    return {t.FLAT: tuple(D(i) for i in range(1, n + 1))}


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: t.TariffVersion(T0, step_prices(9), step_limits=range(10, 90, 10)),
            t.TooManyStepsError,
            "A ladder may have at most 8 steps; tariff version 2026-03-01 has 9.",
        ),
        (
            lambda: t.TariffVersion(T0, step_prices(3), step_limits=(100, 100)),
            t.StepLimitError,
            r"the limit of step 2 \(100\) must be higher than that of step 1 \(100\)",
        ),
        (
            lambda: t.TariffVersion(T0, step_prices(2), step_limits=(0,)),
            t.StepLimitError,
            "must be higher than zero",
        ),
        (
            lambda: t.TariffVersion(T0, step_prices(2), step_limits=()),
            t.PriceError,
            r"the flat band has 2 price\(s\) but the ladder has 1 step\(s\)",
        ),
        (
            lambda: t.TariffVersion(T0, {t.FLAT: ("-0.1",)}),
            t.PriceError,
            r"the flat price of step 1 \(-0.1\) cannot be negative",
        ),
        (
            lambda: t.TariffVersion(T0, {t.FLAT: (0.6,)}),
            t.PriceError,
            "must be an exact decimal number",
        ),
        (
            lambda: t.TariffVersion(T0, {t.FLAT: ("abc",)}),
            t.PriceError,
            "is not a number",
        ),
        (
            lambda: t.TariffVersion(T0, {"night": ("0.1",)}),
            t.UnknownBandError,
            "'night', which is not a time-of-use band",
        ),
        (
            lambda: t.TariffVersion(T0, {t.FLAT: "0.1", t.PEAK: "0.2"}),
            t.PriceError,
            "prices several bands .* but has no time-of-use schedule",
        ),
        (
            lambda: t.TariffVersion(T0, {t.FLAT: "0.1", t.PEAK: "0.2"}, tou=day_tou()),
            t.UnknownBandError,
            r"uses the valley band\(s\), which have no price",
        ),
        (
            lambda: t.TariffVersion(T0, {}),
            t.PriceError,
            "has no price",
        ),
        (
            lambda: t.TariffVersion.flat(T0, "1", valid_to=T0),
            t.TariffError,
            "ends .* before it starts",
        ),
        (
            lambda: t.TouSeason(
                [t.TouSegment(time(0), time(11), t.FLAT), t.TouSegment(time(12), time(0), t.PEAK)],
                name="Summer",
            ),
            t.TouCoverageError,
            "season 'Summer' do not cover the whole day: nothing is set from 11:00 to 12:00",
        ),
        (
            lambda: t.TouSeason([t.TouSegment(time(6), time(0), t.FLAT)]),
            t.TouCoverageError,
            "nothing is set from 00:00 to 06:00",
        ),
        (
            lambda: t.TouSeason([t.TouSegment(time(0), time(18), t.FLAT)]),
            t.TouCoverageError,
            "nothing is set from 18:00 to 24:00",
        ),
        (
            lambda: t.TouSeason(
                [t.TouSegment(time(22), time(8), t.VALLEY), t.TouSegment(time(7), time(22), t.PEAK)]
            ),
            t.TouCoverageError,
            "overlap between 07:00 and 08:00",
        ),
        (
            lambda: t.TouSeason(
                [t.TouSegment(time(h), time(h + 1), t.FLAT) for h in range(15)]
                + [t.TouSegment(time(15), time(0), t.PEAK)]
            ),
            t.TooManySegmentsError,
            "at most 14 time-of-use periods; season 'from 01-01' has 16",
        ),
        (
            lambda: t.TouSeason([], name="Empty"),
            t.TouCoverageError,
            "no time-of-use periods",
        ),
        (
            lambda: t.TouSegment(time(0), time(0), "night"),
            t.UnknownBandError,
            "'night' is not a time-of-use band",
        ),
        (
            lambda: t.TouSegment(time(0), time(0, 0, 0, 5), t.FLAT),
            t.TouScheduleError,
            "set to the second",
        ),
        (
            lambda: t.TouSeason([t.TouSegment(time(0), time(0), t.FLAT)], 2, 29),
            t.TouScheduleError,
            "impossible date",
        ),
        (
            lambda: t.TouSchedule(()),
            t.TouScheduleError,
            "at least one season",
        ),
        (
            lambda: t.TouSchedule(
                (
                    t.TouSeason([t.TouSegment(time(0), time(0), t.FLAT)], name="A"),
                    t.TouSeason([t.TouSegment(time(0), time(0), t.PEAK)], name="B"),
                )
            ),
            t.TouScheduleError,
            "Seasons 'A' and 'B' start on the same day",
        ),
        (lambda: t.CycleRule(billing_day=29), t.CycleRuleError, "between 1 and 28"),
        (lambda: t.CycleRule("weekly"), t.CycleRuleError, "not 'weekly'"),
        (lambda: t.CycleRule(t.ANNUAL, billing_month=13), t.CycleRuleError, "between 1 and 12"),
        (
            lambda: t.Tariff(
                "Shop",
                (
                    t.TariffVersion.flat(date(2026, 1, 1), "1", valid_to=date(2026, 7, 1)),
                    t.TariffVersion.flat(date(2026, 6, 1), "2"),
                ),
            ),
            t.VersionOverlapError,
            "Tariff 'Shop': versions '2026-01-01' and '2026-06-01' overlap: '2026-01-01' runs "
            "until 2026-07-01, after '2026-06-01' starts on 2026-06-01.",
        ),
        (
            lambda: t.Tariff(
                "Shop",
                (
                    t.TariffVersion.flat(date(2026, 1, 1), "1", code="A"),
                    t.TariffVersion.flat(date(2026, 1, 1), "2", code="B"),
                ),
            ),
            t.VersionOverlapError,
            "versions 'A' and 'B' both start on 2026-01-01",
        ),
        (
            lambda: t.Tariff(
                "Shop",
                (
                    t.TariffVersion.flat(date(2026, 1, 1), "1", code="A"),
                    t.TariffVersion.flat(date(2026, 2, 1), "2", code="A"),
                ),
            ),
            t.VersionOverlapError,
            "two versions named 'A'",
        ),
        (lambda: t.Tariff("Shop", ()), t.TariffError, "has no version"),
        (
            lambda: t.Tariff("Shop", (t.TariffVersion.flat(T0, 1),), utility="gas"),
            t.TariffError,
            "not 'gas'",
        ),
        (
            lambda: t.Tariff("Shop", (t.TariffVersion.flat(T0, 1),), timezone="Mars/Base"),
            t.TariffError,
            "not a known time zone",
        ),
    ],
)
def test_bad_definitions_raise_typed_errors_with_clear_messages(build, error, message):
    with pytest.raises(error, match=message) as info:
        build()
    assert isinstance(info.value, t.TariffError) and isinstance(info.value, ValueError)


def test_full_message_for_too_many_steps():
    with pytest.raises(t.TooManyStepsError) as info:
        t.TariffVersion(T0, step_prices(9), step_limits=range(10, 90, 10))
    assert str(info.value) == "A ladder may have at most 8 steps; tariff version 2026-03-01 has 9."


def test_eight_steps_and_fourteen_periods_are_allowed():
    segments = [t.TouSegment(time(h), time(h + 1), t.FLAT) for h in range(13)]
    segments.append(t.TouSegment(time(13), time(0), t.PEAK))
    version = t.TariffVersion(
        T0,
        {t.FLAT: tuple(range(1, 9)), t.PEAK: tuple(range(2, 10))},
        step_limits=tuple(range(10, 80, 10)),
        tou=t.TouSchedule.daily(segments),
    )
    tariff = compile_(version)
    r = tariff.price_interval(None, at(12, 30, day=2), at(13, 30, day=2), D(100))
    assert [(ln.band, ln.step) for ln in r.lines][-1] == (t.PEAK, 8)
    assert sum(ln.quantity for ln in r.lines) == D(100)


# --- fast paths (performance work): same results as the general path --- #


def general(tariff, state, start, end, consumption):
    with decimal.localcontext(_EXACT):
        return tariff._price_general(state, start, end, consumption)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (at(9, 45), at(10, 15)),  # flat -> peak
        (at(22, 50), at(23, 20)),  # flat -> valley
        (at(11, 0), at(13, 0)),  # peak -> flat
        (at(6, 0, day=2), at(11, 0, day=2)),  # three periods
        (at(21, 0), at(8, 0, day=2)),  # over midnight
    ],
)
@pytest.mark.parametrize("already", ["0", "99.99", "150"])
def test_total_across_tou_periods_is_split_like_the_general_path(start, end, already):
    state = state_with(LADDER_TOU, already)
    for q in (D("1.5"), D("0.001"), D(0), D("0.7777777")):
        fast = LADDER_TOU.price_interval(state, start, end, q)
        assert fast == general(LADDER_TOU, state, start, end, q)
        assert sum((ln.quantity for ln in fast.lines), D(0)) == q


def test_period_cache_survives_a_split_interval():
    state = state_with(TOU, "1")
    # a split interval, then one inside the period where the split one started
    TOU.price_interval(state, at(9, 45), at(10, 15), D(1))
    r = TOU.price_interval(state, at(9, 0), at(9, 30), D(1))
    assert summary(r) == [(t.FLAT, 1, D(1), D("0.60"), D("0.6000"))]


def test_state_from_a_tariff_with_another_cycle_goes_the_general_way():
    other = compile_(
        t.TariffVersion.flat(date(2026, 1, 1), "0.60"), cycle=t.CycleRule(t.MONTHLY, 15)
    )
    state = other.price_interval(None, at(9, day=16), at(9, day=16), D(1)).state
    start, end = at(9, 45, day=20), at(10, 15, day=20)
    fast = TOU.price_interval(state, start, end, D(2))
    assert fast == general(TOU, state, start, end, D(2))


def test_pricing_keeps_the_callers_decimal_context():
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        r = LADDER_TOU.price_interval(None, at(9, 45), at(10, 15), {t.FLAT: D("1.2345")})
        assert decimal.getcontext() is ctx and ctx.prec == 3
        assert r.amount == D("0.7407")  # exact: 1.2345 x 0.60, not rounded to 3 digits
    with pytest.raises(t.PrecisionError):
        LADDER_TOU.price_interval(None, at(9, 45), at(10, 15), {t.FLAT: D("1." + "1" * 70)})
    assert decimal.getcontext().prec == 28
