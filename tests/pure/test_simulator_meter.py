"""G7 virtual meter: load profile, registers, TOU, bidirectional, on-meter prepaid logic."""

from dataclasses import replace
from decimal import Decimal

import pytest

from prepaid_core.simulator import meter as meter_module
from prepaid_core.simulator.clock import AcceleratedClock, ManualClock, utc
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.tokens import TokenAuthError, TokenKind, TokenReplayError, issue_token

ADDR = "000000000001"
KEY = b"test vending key 0123456789abcdef"
FLAT_1KW = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=0)


def make(clock, profile=FLAT_1KW, **config):
    config.setdefault("balance", Decimal(100))
    return VirtualMeter(MeterConfig(ADDR, vending_key=KEY, profile=profile, **config), clock)


def events(meter):
    return [event.event for event in meter.drain_events()]


def test_profile_is_deterministic_and_seeded():
    a, b, c = LoadProfile(seed=1), LoadProfile(seed=1), LoadProfile(seed=2)
    minutes = range(29_000_000, 29_000_000 + 1440)
    assert [a.power_w(m) for m in minutes] == [b.power_w(m) for m in minutes]
    assert [a.power_w(m) for m in minutes] != [c.power_w(m) for m in minutes]
    day = [a.power_w(m) for m in minutes]
    assert min(day) > 0 and max(day) <= 2000 * 1.3


def test_registers_do_not_depend_on_step_size():
    clock_a, clock_b = ManualClock(utc(2025, 3, 1)), ManualClock(utc(2025, 3, 1))
    profile = LoadProfile(seed=7)
    a, b = make(clock_a, profile, balance=Decimal(10**6)), make(clock_b, profile, balance=10**6)
    clock_a.advance(hours=30)
    a.advance()
    for _ in range(30 * 60 * 60 // 37):
        clock_b.advance(37)
        b.advance()
    clock_b.set(clock_a.now())
    b.advance()
    assert a.import_uj == b.import_uj > 0
    assert a.tou_uj == b.tou_uj
    assert a.balance == b.balance
    assert a.snapshot().forward_kwh == b.snapshot().forward_kwh


def test_energy_and_balance_are_exact():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, price=Decimal("0.6"))
    clock.advance(hours=1, seconds=30)
    snap = meter.snapshot()
    assert meter.import_uj == 3_630_000_000_000  # 1 kW x 3630 s
    assert snap.forward_kwh == Decimal("1.00")  # truncated to 0.01
    assert meter.balance == Decimal("99.395")
    assert snap.balance == Decimal("99.3950")
    assert snap.power_kw == Decimal(1) and snap.relay == "on"
    assert Decimal("4.2") < snap.current_a < Decimal("5.2")
    assert Decimal(200) < snap.voltage_v < Decimal(240)


def test_tou_registers_follow_the_schedule():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal(1000))
    clock.advance(hours=24)
    tou = meter.snapshot().tou_kwh
    # DEFAULT_TOU: valley 00-08 and 23-24, flat 08-10 12-18 22-23, peak 10-11 18-19 21-22,
    # sharp 11-12 19-21
    assert tou == {
        "valley": Decimal(9),
        "flat": Decimal(9),
        "peak": Decimal(3),
        "sharp": Decimal(3),
    }
    assert sum(tou.values()) == meter.snapshot().forward_kwh == Decimal(24)


@pytest.mark.parametrize("adds", [True, False])
def test_reverse_energy(adds):
    export = LoadProfile(
        base_w=0, peak_w=0, noise=0, export_peak_w=2000, shape=(0,) * 24, utc_offset_minutes=0
    )
    clock = ManualClock(utc(2025, 3, 1, 12))  # solar noon, shape 1.0
    meter = make(clock, export, reverse_adds_to_forward=adds, price=Decimal(1))
    clock.advance(hours=1)
    snap = meter.snapshot()
    assert snap.reverse_kwh == Decimal(2)
    assert snap.power_kw == Decimal("-1.9")  # 13:00, solar shape 0.95
    if adds:  # anti-theft: reverse energy is added to forward and billed
        assert snap.forward_kwh == Decimal(2)
        assert snap.balance == Decimal(98)
    else:
        assert snap.forward_kwh == 0
        assert snap.balance == Decimal(100)


def test_alarms_reminder_cut_and_credit_exhaustion():
    clock = ManualClock(utc(2025, 3, 1))
    # 1 kW at 1.0 per kWh: 1 money unit per hour
    meter = make(
        clock, balance=Decimal("3.5"), price=Decimal(1), alarm1=Decimal(3), alarm2=Decimal(2)
    )
    clock.advance(minutes=31)
    assert events(meter) == ["alarm1"]
    clock.advance(hours=1)
    assert events(meter) == ["alarm2", "relay_off"]
    assert meter.snapshot().relay == "off"
    balance = meter.balance
    clock.advance(minutes=1)
    assert meter.snapshot().balance == balance.quantize(Decimal("0.0001"))  # no consumption
    clock.advance(minutes=1, seconds=1)
    assert events(meter) == ["relay_on"]  # the reminder cut restores itself after 2 minutes
    assert meter.snapshot().relay == "on"
    clock.advance(hours=3)
    assert events(meter) == ["credit_exhausted", "relay_off"]
    frozen = meter.import_uj
    clock.advance(hours=5)
    snap = meter.snapshot()
    assert meter.import_uj == frozen
    assert snap.relay == "off" and snap.status_word & meter_module.EXHAUSTED
    assert snap.balance == 0  # cut exactly at zero: the step ends at the minute boundary
    assert meter.relay_toggles == 3


def test_credit_token_restores_supply_once():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal("0.5"), price=Decimal(1), alarm1=0, alarm2=0)
    clock.advance(hours=1)
    assert meter.snapshot().relay == "off"
    token = issue_token(KEY, ADDR, TokenKind.CREDIT, Decimal(10), 1)
    meter.apply_token(token)
    assert meter.snapshot().relay == "on"
    assert meter.balance == Decimal("10.0000")
    with pytest.raises(TokenReplayError):
        meter.apply_token(token)
    assert meter.balance == Decimal(10)
    other = issue_token(KEY, "000000000002", TokenKind.CREDIT, Decimal(10), 2)
    with pytest.raises(TokenAuthError):
        meter.apply_token(other)
    assert meter.credited_total == Decimal(10)
    assert events(meter)[-4:] == ["relay_on", "token_accepted", "token_rejected", "token_rejected"]


def test_price_clear_and_tamper_tokens():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal(50), price=Decimal(1))
    meter.apply_token(issue_token(KEY, ADDR, TokenKind.SET_PRICE, Decimal("2.5"), 1))
    clock.advance(hours=2)
    assert meter.snapshot().balance == Decimal(45)
    meter.inject_tamper("magnet")
    assert meter.status_word() & meter_module.TAMPER_MAGNET
    meter.apply_token(issue_token(KEY, ADDR, TokenKind.CLEAR_TAMPER, Decimal(0), 2))
    assert not meter.status_word() & meter_module.TAMPER_MAGNET
    meter.apply_token(issue_token(KEY, ADDR, TokenKind.CLEAR_CREDIT, Decimal(0), 3))
    assert meter.balance == 0 and meter.relay == "off"
    names = events(meter)
    assert "tamper_magnet" in names and "tamper_cleared" in names


def test_protect_mode_never_cuts():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal(1), price=Decimal(1), protect=True)
    clock.advance(hours=3)
    snap = meter.snapshot()
    assert snap.relay == "on" and snap.balance == Decimal(-2)
    assert snap.status_word & meter_module.PROTECTED
    meter.set_protect(False)
    assert meter.snapshot().relay == "off"


def test_remote_off_and_force_on():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal(1), price=Decimal(1), alarm1=0, alarm2=0)
    assert meter.relay_off() == "off"
    clock.advance(hours=2)
    assert meter.import_uj == 0 and meter.balance == 1
    assert meter.snapshot().status_word & meter_module.REMOTE_OFF
    assert meter.relay_on() == "on"
    clock.advance(hours=2)
    assert meter.snapshot().relay == "off" and meter.balance == 0  # prepaid cut at zero
    assert meter.relay_on() == "on"  # manager's force-on at zero balance
    clock.advance(hours=1)
    assert meter.snapshot().relay == "on" and meter.balance == -1
    meter.apply_token(issue_token(KEY, ADDR, TokenKind.CREDIT, Decimal(2), 1))
    clock.advance(hours=2)
    assert meter.snapshot().relay == "off" and meter.balance == 0  # prepaid mode is back


def test_power_fail_fault_overload_zero():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock, balance=Decimal(100))
    meter.power_fail()
    clock.advance(hours=1)
    snap = meter.snapshot()
    assert meter.import_uj == 0 and snap.voltage_v == 0
    assert snap.status_word & meter_module.POWER_FAIL
    meter.power_restore()
    meter.inject_fault(17)
    assert meter.snapshot().fault_code == 17
    meter.clear_fault()
    meter.set_thresholds(Decimal(20), Decimal(5), overload_kw=Decimal("0.5"))
    clock.advance(minutes=1)
    assert meter.snapshot().relay == "off"
    assert meter.status_word() & meter_module.OVERLOAD
    meter.set_thresholds(Decimal(20), Decimal(5), overload_kw=Decimal(5))
    meter.relay_on()
    clock.advance(hours=1)
    meter.zero()
    snap = meter.snapshot()
    assert snap.forward_kwh == 0 and snap.balance == 0
    assert [e for e in events(meter) if e not in ("relay_off", "relay_on")] == [
        "power_fail",
        "power_restore",
        "fault",
        "fault_cleared",
        "overload",
        "zeroed",
        "alarm1",
        "alarm2",
        "credit_exhausted",
    ]


def test_time_sync_moves_the_meter_clock():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock)
    meter.time_sync(utc(2025, 3, 1, 0, 5))
    assert meter.snapshot().ts == utc(2025, 3, 1, 0, 5)


def test_accelerated_clock():
    fake = [100.0]
    clock = AcceleratedClock(utc(2025, 3, 1), speed=60, monotonic=lambda: fake[0])
    assert clock.now() == utc(2025, 3, 1)
    fake[0] += 1.5
    assert clock.now() == utc(2025, 3, 1, 0, 1, 30)
    assert clock.real_seconds(60) == 1
    with pytest.raises(ValueError):
        AcceleratedClock(speed=0)


def test_manual_clock_never_goes_back():
    clock = ManualClock(utc(2025, 3, 1))
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(utc(2024, 1, 1))


def test_bad_commands_change_nothing():
    clock = ManualClock(utc(2025, 3, 1))
    meter = make(clock)
    with pytest.raises(ValueError):
        meter.set_price(Decimal(0))
    with pytest.raises(ValueError):
        meter.set_thresholds(Decimal(1), Decimal(5))
    with pytest.raises(ValueError):
        meter.inject_tamper("x-ray")
    assert meter.price == Decimal("0.6") and meter.alarm1 == 20


def test_config_is_reusable_for_many_meters():
    clock = ManualClock(utc(2025, 3, 1))
    base = MeterConfig(ADDR, vending_key=KEY)
    meters = [VirtualMeter(replace(base, address=f"{n:012d}"), clock) for n in range(1, 4)]
    assert len({m.key for m in meters}) == 3
