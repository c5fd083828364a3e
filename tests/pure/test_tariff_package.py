"""B14: a monthly package's included quantity priced at zero by the engine's own ladder,
beyond it the version's prices (or one overage price), restarting each cycle."""

from datetime import datetime, time
from decimal import Decimal as D

import pytest

from prepaid_core import tariff as t
from prepaid_core.tariff.package import with_included_quantity

T0 = datetime(2026, 3, 30, 0, 0)


def _tariff(version, cycle_day=1):
    return t.Tariff("Package", (version,), cycle=t.CycleRule(t.MONTHLY, cycle_day)).compile()


def test_included_quantity_is_a_free_first_step_then_the_version_prices():
    flat = t.TariffVersion.flat(datetime(2020, 1, 1), "0.5")
    package = with_included_quantity(flat, "100")
    assert package.step_limits == (D("100"),)
    assert package.prices[t.FLAT] == (D("0"), D("0.5"))
    compiled = _tariff(package)
    first = compiled.price_interval(None, T0, T0.replace(hour=10), D("80"))
    assert first.amount == D("0")
    # crossing the included quantity: 20 free, 30 at 0.5
    second = compiled.price_interval(first.state, T0.replace(hour=10), T0.replace(hour=20), D("50"))
    assert second.amount == D("15.0000")


def test_included_quantity_restarts_each_cycle():
    compiled = _tariff(with_included_quantity(t.TariffVersion.flat(datetime(2020, 1, 1), "1"), 10))
    used = compiled.price_interval(None, datetime(2026, 3, 30), datetime(2026, 3, 31), D("15"))
    assert used.amount == D("5")
    # 1 April: a new cycle, 10 free again
    april = compiled.price_interval(
        used.state, datetime(2026, 4, 1, 1), datetime(2026, 4, 1, 2), D("12")
    )
    assert april.amount == D("2")


def test_ladder_moves_up_by_the_included_quantity():
    ladder = t.TariffVersion(
        valid_from=datetime(2020, 1, 1), prices={t.FLAT: ("0.5", "0.8")}, step_limits=("50",)
    )
    package = with_included_quantity(ladder, "30")
    assert package.step_limits == (D("30"), D("80"))
    assert package.prices[t.FLAT] == (D("0"), D("0.5"), D("0.8"))
    compiled = _tariff(package)
    # 100 units: 30 free, 50 at 0.5, 20 at 0.8
    priced = compiled.price_interval(None, T0, T0.replace(hour=12), D("100"))
    assert priced.amount == D("41.0000")


def test_overage_price_replaces_every_band():
    tou = t.TariffVersion(
        valid_from=datetime(2020, 1, 1),
        prices={t.PEAK: ("1",), t.VALLEY: ("0.3",)},
        tou=t.TouSchedule.daily(
            (
                t.TouSegment(time(0), time(8), t.VALLEY),
                t.TouSegment(time(8), time(0), t.PEAK),
            )
        ),
    )
    package = with_included_quantity(tou, "5", overage="0.6")
    assert package.prices == {t.PEAK: (D("0"), D("0.6")), t.VALLEY: (D("0"), D("0.6"))}
    priced = _tariff(package).price_interval(None, T0, T0.replace(hour=12), D("15"))
    assert priced.amount == D("6.0000")


def test_bad_packages_are_refused():
    flat = t.TariffVersion.flat(datetime(2020, 1, 1), "0.5")
    with pytest.raises(t.StepLimitError):
        with_included_quantity(flat, "0")
    with pytest.raises(t.PriceError):
        with_included_quantity(flat, "10", overage="-1")
    eight = t.TariffVersion(
        valid_from=datetime(2020, 1, 1),
        prices={t.FLAT: tuple(str(n) for n in range(1, 9))},
        step_limits=tuple(str(10 * n) for n in range(1, 8)),
    )
    with pytest.raises(t.TooManyStepsError):
        with_included_quantity(eight, "5")
