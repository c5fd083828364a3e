"""M5: reading validation flags."""

from datetime import datetime, timedelta
from decimal import Decimal as D

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
    """``to_quantity`` without its fast paths (a float of the common range, plain digits)."""
    number = r._to_decimal(value, field)
    if number < 0:
        raise r.ReadingError(
            f"{field}: {r.shown(value)} is negative; meter registers only count up"
        )
    return r._within(number, value, field, r.REGISTER_LIMIT)


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
def test_fast_paths_parse_and_refuse_as_the_general_path(text):
    assert _outcome(r.to_quantity, text) == _outcome(_general_to_quantity, text)


@given(st.text(max_size=30) | st.from_regex(r"\s*[+-]?\d{0,12}(\.\d{0,8})?([eE][+-]?\d{1,3})?\s*"))
def test_str_fast_path_agrees_with_the_general_path(text):
    assert _outcome(r.to_quantity, text) == _outcome(_general_to_quantity, text)


STR_EDGE_CASES += [
    "1E-20000",
    "0E-20000",
    "1.000000000000000000000000",
    "999999999999.9999",
    "1000000000000",
    "0.000000000000000000001",
    "1" * 65,
    "\ud800",
]
FLOAT_EDGE_CASES = [0.0, -0.0, 1e-4, 9.9e-5, 1e-300, 5e-324, 1e12, 999999999999.9999, 1e308]


@pytest.mark.parametrize("value", FLOAT_EDGE_CASES)
def test_float_fast_path_parses_and_refuses_as_the_general_path(value):
    assert _outcome(r.to_quantity, value) == _outcome(_general_to_quantity, value)


#: any value a JSON message can hold, and the texts and numbers at the store's edges
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**80), 2**80)
    | st.floats()
    | st.text()
    | st.sampled_from(
        [
            "1e-20000",
            "1E+20000",
            "1e999999",
            "-1e999999",
            "NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "\x00",
            "12\x00",
            "\ud800",
            "1" * 70,
            "0." + "0" * 19 + "1",
            "0." + "0" * 20 + "1",
            "999999999999.99999999999999999999",
            "1000000000000",
            "2147483648",
            "-2147483649",
            "2147483647",
        ]
    )
    | st.decimals(allow_nan=True, allow_infinity=True)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=6,
)


def _storable_decimal(number, limit):
    """What PostgreSQL's numeric and the register fields keep: finite, in range, at most
    MAX_DECIMALS decimals (so at most 12 + 20 digits)."""
    assert isinstance(number, D) and number.is_finite()
    assert -limit < number < limit
    assert number.as_tuple().exponent >= -r.MAX_DECIMALS
    assert D(str(number)) == number  # its text (what COPY sends) reads back the same


@given(JSON_VALUES)
def test_to_quantity_gives_a_storable_register_or_its_own_error(value):
    try:
        number = r.to_quantity(value, "forward_total")
    except r.ReadingError as exc:
        assert str(exc).startswith("forward_total: ")
        assert "\x00" not in str(exc) and len(str(exc)) < 200
        return
    _storable_decimal(number, r.REGISTER_LIMIT)
    assert number >= 0


@given(JSON_VALUES, st.sampled_from([1e3, 1e8, 1e12]))
def test_to_measure_gives_a_storable_float_or_its_own_error(value, limit):
    try:
        measured = r.to_measure(value, "voltage", limit)
    except r.ReadingError as exc:
        assert str(exc).startswith("voltage: ")
        return
    assert type(measured) is float
    _storable_decimal(D(repr(measured)), limit)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1E-20000", "too small to store"),
        ("1e999999", "out of range"),
        (1e9, "out of range"),
        (1e-300, "more than 20 decimals"),
        (float("nan"), "not a finite number"),
        (True, "not a number"),
        ({"v": 1}, "not a number"),
    ],
)
def test_measures_out_of_the_store_are_refused_with_a_reason(value, reason):
    with pytest.raises(r.ReadingError, match=reason):
        r.to_measure(value, "voltage", 1e8)
    assert r.to_measure("221.5", "voltage", 1e8) == 221.5
    assert r.to_measure(-3, "power", 1e8) == -3.0
    assert r.to_measure("0", "power", 1e8) == 0.0


@given(JSON_VALUES)
def test_status_word_is_an_int4_or_refused(value):
    try:
        word = r.to_status_word(value)
    except r.ReadingError as exc:
        assert str(exc).startswith("status_word: ")
        return
    assert type(word) is int and -(2**31) <= word < 2**31


def test_status_word_edges():
    assert r.to_status_word(2**31 - 1) == 2**31 - 1
    assert r.to_status_word("-4") == -4
    # 32 bits unsigned (as the MQTT schema allows) kept as the int4 of the same bits
    assert r.to_status_word(2**31) == -(2**31)
    assert r.to_status_word(0xFFFFFFFF) == -1
    assert r.to_status_word(0x80000001) & 0xFFFFFFFF == 0x80000001
    for bad in (2**32, -(2**31) - 1, True, 1.0, "1e3", "9" * 13, None):
        with pytest.raises(r.ReadingError):
            r.to_status_word(bad)


@given(JSON_VALUES)
def test_texts_are_storable_or_refused(value):
    for identifier in (False, True):
        try:
            text = r.to_text(value, "code", 64, identifier=identifier)
        except r.ReadingError:
            continue
        assert isinstance(text, str) and len(text) <= 64
        assert "\x00" not in text
        text.encode("utf-8")  # no unpaired surrogate
        if identifier:
            assert text and all(ord(c) >= 32 and not 0x7F <= ord(c) <= 0x9F for c in text)


def test_texts_refused_with_their_reason():
    assert r.to_text("ok\nline", "reason", 64) == "ok\nline"
    assert r.to_text(123456789012, "address", 64, identifier=True) == "123456789012"
    for value, identifier, reason in [
        ("a\x00b", False, "control or invalid character"),
        ("\ud800", False, "control or invalid character"),
        ("a\nb", True, "control or invalid character"),
        ("x" * 65, False, "longer than 64"),
        ("", True, "empty"),
        (10**70, True, "not a text"),
        (1.5, True, "not a text"),
        (["a"], False, "not a text"),
    ]:
        with pytest.raises(r.ReadingError, match=reason):
            r.to_text(value, "address", 64, identifier=identifier)


def test_identifiers_checked_together_as_one_by_one():
    good = ["000000000101", "a b", "\u00e9t\u00e9"]
    assert r.clean_identifiers(good, 64)
    assert r.clean_identifiers([], 64)
    for bad in ("a\x00", "\ud800", "\x1b[31m", "", "x" * 65):
        assert not r.clean_identifiers([*good, bad], 64)
        with pytest.raises(r.ReadingError):
            r.to_text(bad, "address", 64, identifier=True)


def test_times_outside_the_calendar_the_store_keeps_are_refused():
    assert r.check_time(datetime(2000, 1, 1), "read_at") == datetime(2000, 1, 1)
    assert r.check_time(datetime(2099, 12, 31, 23, 59, 59), "read_at")
    for at in (datetime(1, 1, 1), datetime(1999, 12, 31, 23, 59, 59), datetime(2100, 1, 1)):
        with pytest.raises(r.ReadingError, match="not between 2000 and 2100"):
            r.check_time(at, "read_at")


@given(JSON_VALUES)
def test_shown_is_short_and_escaped(value):
    text = r.shown(value)
    assert len(text) <= 200
    assert "\x00" not in text and "\n" not in text
    text.encode("utf-8")


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
