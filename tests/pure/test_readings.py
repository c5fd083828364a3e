"""M5: reading validation flags."""

from datetime import datetime, timedelta
from decimal import Decimal as D
from decimal import InvalidOperation

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prepaid_core import readings as r

T0 = datetime(2026, 3, 1, 0, 0)
# DDSY 220 V 5(60) A: 13.2 kW at most
DDSY = r.MeterLimits(max_rate=D("13.2"))


def test_first_reading_is_baseline_not_charged():
    v = r.validate(None, None, D("100.00"), T0, DDSY)
    assert v.flags == (r.FLAG_BASELINE,)
    assert v.consumption == 0 and not v.chargeable and v.moves_baseline


def test_normal_reading_is_charged():
    v = r.validate(D("100.00"), T0, D("101.50"), T0 + timedelta(minutes=30), DDSY)
    assert v.flags == ()
    assert v.consumption == D("1.50") and v.chargeable and v.moves_baseline


def test_rollback_is_flagged_not_charged_and_keeps_baseline():
    v = r.validate(D("100.00"), T0, D("99.00"), T0 + timedelta(minutes=30), DDSY)
    assert v.flags == (r.FLAG_ROLLBACK,)
    assert v.consumption == 0 and not v.chargeable and not v.moves_baseline
    assert "below the previous total" in v.reason


def test_rollover_charges_the_wrapped_consumption():
    v = r.validate(D("999999.50"), T0, D("0.70"), T0 + timedelta(minutes=30), DDSY)
    assert v.flags == (r.FLAG_ROLLOVER,)
    # 999999.50 -> 999999.99 (0.49) -> wrap (0.01) -> 0.70
    assert v.consumption == D("1.20") and v.chargeable and v.moves_baseline


def test_rollover_with_multiplier():
    v = r.validate(D("999999.50") * 40, T0, D("0.70") * 40, T0 + timedelta(minutes=30), DDSY, D(40))
    assert v.flags == (r.FLAG_ROLLOVER,)
    assert v.consumption == D("48.00")


def test_spike_beyond_rated_current_is_not_charged():
    # 13.2 kW x 0.5 h = 6.6 kWh at most in 30 minutes
    ok = r.validate(D("100"), T0, D("106.6"), T0 + timedelta(minutes=30), DDSY)
    assert ok.chargeable and ok.flags == ()
    v = r.validate(D("100"), T0, D("106.61"), T0 + timedelta(minutes=30), DDSY)
    assert v.flags == (r.FLAG_SPIKE,)
    assert not v.chargeable and not v.moves_baseline
    assert v.consumption == D("6.61")


def test_gap_is_flagged_but_charged():
    v = r.validate(D("100"), T0, D("110"), T0 + timedelta(hours=6), DDSY)
    assert v.flags == (r.FLAG_GAP,)
    assert v.chargeable and v.moves_baseline and "No reading for 6:00:00" in v.reason


def test_spike_and_gap_together():
    v = r.validate(D("100"), T0, D("500"), T0 + timedelta(hours=6), DDSY)
    assert v.flags == (r.FLAG_SPIKE, r.FLAG_GAP)
    assert not v.chargeable


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(minutes=-5)])
def test_late_or_same_time_reading(delta):
    v = r.validate(D("100"), T0, D("101"), T0 + delta, DDSY)
    assert v.flags == (r.FLAG_LATE,)
    assert not v.chargeable and not v.moves_baseline


@pytest.mark.parametrize("bad", ["-1", -0.5, "abc", "", None, "NaN", "Infinity", True])
def test_bad_values_raise_typed_error(bad):
    with pytest.raises(r.ReadingError):
        r.to_quantity(bad, "forward_total")


def test_good_values_parse_exactly():
    assert r.to_quantity("12.34") == D("12.34")
    assert r.to_quantity(7) == D(7)
    assert r.to_quantity(0.1) == D("0.1")


def _general_to_quantity(value, field):
    """The general path of ``to_quantity`` (as before its str fast path)."""
    if isinstance(value, bool):
        raise r.ReadingError(f"{field}: {value!r} is not a number")
    try:
        number = value if isinstance(value, D) else D(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise r.ReadingError(f"{field}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise r.ReadingError(f"{field}: {value!r} is not a finite number")
    if number < 0:
        raise r.ReadingError(f"{field}: {value} is negative; meter registers only count up")
    return number


def _outcome(parse, value):
    try:
        number = parse(value, "forward_total")
    except r.ReadingError as exc:
        return ("refused", str(exc))
    return ("parsed", repr(number), number.as_tuple())  # the exact Decimal, exponent too


STR_EDGE_CASES = [
    "1000.50",
    "0",
    "0.000",
    "-0",
    "-0.00",
    "+12.5",
    " 12.5",
    "12.5 ",
    "\t12.5\n",
    "\u200312.5",
    "1e3",
    "1E-2",
    "1.5e+2",
    "-1e3",
    "1_000.5",
    "12.3456789012345678901234567890",
    "9" * 60,
    "1e999999",
    "1e-999999",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "",
    " ",
    "12,5",
    "1.2.3",
    "0x10",
    "abc",
    "\x00",
    "١٢٣",
]


@pytest.mark.parametrize("text", STR_EDGE_CASES)
def test_str_fast_path_parses_and_refuses_as_before(text):
    assert _outcome(r.to_quantity, text) == _outcome(_general_to_quantity, text)


@given(st.text(max_size=30) | st.from_regex(r"\s*[+-]?\d{0,12}(\.\d{0,8})?([eE][+-]?\d{1,3})?\s*"))
def test_str_fast_path_agrees_with_the_general_path(text):
    assert _outcome(r.to_quantity, text) == _outcome(_general_to_quantity, text)


def test_bidirectional_adds_reverse_energy():
    assert r.effective_total(D("10"), D("2"), True, D(1)) == D("12")
    assert r.effective_total(D("10"), D("2"), False, D(1)) == D("10")
    assert r.effective_total(D("10"), None, True, D(30)) == D("300")


@given(
    steps=st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=6, places=2),
            st.integers(min_value=1, max_value=60),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_charged_consumption_equals_register_advance(steps):
    """Whatever the sequence of plausible readings, what is charged is what the register
    advanced, never more."""
    total, at = D("1000.00"), T0
    baseline, base_at = total, at
    charged = D(0)
    for advance, minutes in steps:
        total += advance
        at += timedelta(minutes=minutes)
        v = r.validate(baseline, base_at, total, at, DDSY)
        if v.chargeable:
            charged += v.consumption
        if v.moves_baseline:
            baseline, base_at = total, at
    assert charged <= total - D("1000.00")
    assert charged == baseline - D("1000.00")


# === B3: consumption per time-of-use band from the registers === #

REGS0 = {"sharp": D("1.00"), "peak": D("10.00"), "flat": D("20.00"), "valley": D("30.00")}


def test_register_deltas_are_the_band_consumption():
    now = {"sharp": D("1.00"), "peak": D("12.00"), "flat": D("20.50"), "valley": D("30.00")}
    assert r.register_consumption(REGS0, now, D("2.50"), D(1)) == {
        "sharp": 0,
        "peak": D("2.00"),
        "flat": D("0.50"),
        "valley": 0,
    }


def test_register_deltas_multiplied():
    now = {**REGS0, "peak": D("10.10"), "valley": D("30.05")}
    got = r.register_consumption(REGS0, now, D("6.00"), D(40))
    assert got["peak"] == D("4.00") and got["valley"] == D("2.00") and sum(got.values()) == 6


@pytest.mark.parametrize(
    ("previous", "current", "why"),
    [
        (None, REGS0, "no registers at the previous reading"),
        ({}, {}, "no register reported"),
        (REGS0, {**REGS0, "peak": None}, "a register missing at one end"),
        (REGS0, {**REGS0, "peak": D("9")}, "a register ran backwards"),
        (REGS0, REGS0, "registers stuck while the total moved"),
    ],
)
def test_registers_unusable_split_by_time(previous, current, why):
    assert r.register_consumption(previous, current, D("1.5"), D(1)) is None, why


def test_registers_disagreeing_with_total_share_it_exactly():
    """Reverse energy of a bidirectional meter, or registers rounded by the meter: the
    validated total is charged, shared in proportion to the register deltas."""
    now = {**REGS0, "sharp": D("2"), "flat": D("21"), "valley": D("31")}
    got = r.register_consumption(REGS0, now, D("1.0000"), D(1))
    assert got == {
        "sharp": D("0.3334"),
        "peak": 0,
        "flat": D("0.3333"),
        "valley": D("0.3333"),
    }


@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=10**7),
)
def test_register_shares_add_up_to_the_total(deltas, total_units):
    bands = r.REGISTER_BANDS[: len(deltas)]
    previous = dict.fromkeys(bands, D(0))
    current = {band: D(delta).scaleb(-2) for band, delta in zip(bands, deltas, strict=True)}
    consumption = D(total_units).scaleb(-4)
    got = r.register_consumption(previous, current, consumption, D(1))
    if not any(deltas):
        assert got is None
    else:
        assert sum(got.values()) == consumption
        assert all(value >= 0 for value in got.values())


@given(
    prev=st.one_of(st.none(), st.decimals(min_value=0, max_value=999999, places=2)),
    total=st.decimals(min_value=0, max_value=999999, places=2),
    seconds=st.integers(min_value=-3600, max_value=6 * 3600),
    multiplier=st.sampled_from([D(1), D(30), D("0.5")]),
)
def test_normal_consumption_agrees_with_validate(prev, total, seconds, multiplier):
    """The bulk path's shortcut says "normal" exactly when validate() flags nothing, with the
    same consumption; otherwise it defers to validate()."""
    limits = r.MeterLimits(max_rate=D("13.2"))
    prev_at = T0 if prev is not None else None
    read_at = T0 + timedelta(seconds=seconds)
    verdict = r.validate(prev, prev_at, total, read_at, limits, multiplier)
    quick = r.normal_consumption(prev, prev_at, total, read_at, limits, multiplier)
    if verdict.flags:
        assert quick is None
    else:
        assert quick == verdict.consumption
        assert verdict.chargeable and verdict.moves_baseline
    # the cached allowance is the one validate() computes
    if seconds > 0:
        elapsed = timedelta(seconds=seconds)
        assert limits.allowed(elapsed, multiplier) == (limits.max_per_second * multiplier * seconds)
