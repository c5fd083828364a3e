"""The vending side's STS arithmetic: money to energy rounded down to what the amount field
carries (the rest kept exactly), and token identifiers strictly increasing per meter."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from prepaid_core import sts


@pytest.mark.parametrize(
    ("units", "floor"),
    [
        (0, 0),
        (1, 1),
        (16_383, 16_383),
        (16_384, 16_384),
        (16_393, 16_384),
        (16_394, 16_394),
        (180_223, 180_214),
        (180_299, 180_224),
        (1_818_624, 1_818_624),
        (1_819_623, 1_818_624),
        (18_201_624, 18_201_624),
        (99_999_999, 18_201_624),
    ],
)
def test_carried_floor_is_the_largest_carried_amount_not_above(units, floor):
    assert sts.carried_floor(units) == floor
    assert sts.decode_amount(sts.encode_amount(floor)) == floor


def test_carried_floor_agrees_with_the_field_everywhere_near_the_steps():
    for edge in (16_384, 180_224, 1_818_624):
        for units in range(edge - 30, edge + 30):
            floor = sts.carried_floor(units)
            assert floor <= units
            assert sts.decode_amount(sts.encode_amount(floor)) == floor
            for between in range(floor + 1, units + 1):
                with pytest.raises(sts.StsAmountError):
                    sts.encode_amount(between)


def test_energy_for_money_keeps_the_rest_exactly():
    tenths, rest = sts.energy_for_money(Decimal("10"), Decimal("0.3"))
    assert (tenths, rest) == (333, Decimal("0.01"))
    assert Decimal(tenths) * Decimal("0.3") / 10 + rest == Decimal("10")


def test_energy_for_money_rounds_large_amounts_down_to_the_field_steps():
    tenths, rest = sts.energy_for_money(Decimal("100.09"), Decimal("0.05"))
    assert tenths == 20_014  # 20,018 tenths asked; steps of 10 above 16,384
    assert rest == Decimal("0.02")


def test_energy_for_money_refuses_a_missing_price():
    with pytest.raises(sts.StsAmountError):
        sts.energy_for_money(Decimal("10"), Decimal("0"))


def test_next_tid_moves_a_same_minute_token_to_the_next_minute():
    base = sts.BASE_DATE_2014
    now = datetime(2026, 12, 6, 15, 0, 30, tzinfo=sts.UTC)
    first = sts.next_tid(now, 0, base)
    second = sts.next_tid(now, first, base)
    third = sts.next_tid(now + timedelta(seconds=10), second, base)
    assert first == sts.minutes_since_base(now, base)
    assert (second, third) == (first + 1, first + 2)
    assert sts.tid_moment(first, base) == now.replace(second=0)


def test_next_tid_refuses_past_the_24_bit_range():
    with pytest.raises(sts.StsFormatError):
        sts.next_tid(datetime(2026, 1, 1, tzinfo=sts.UTC), (1 << 24) - 1, sts.BASE_DATE)


def test_management_tokens_take_the_2014_base_date():
    key = bytes.fromhex("0123456789abcdef")
    moment = datetime(2026, 12, 6, 15, 0, tzinfo=sts.UTC)
    base = sts.BASE_DATE_2014
    for token in (
        sts.encode_clear_tamper(key, moment, base_date=base),
        sts.encode_clear_credit(key, moment, base_date=base),
        sts.encode_max_power_limit(key, 5000, moment, base_date=base),
    ):
        assert sts.decode(token, key).issued_since(base) == moment
