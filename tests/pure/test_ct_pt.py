"""M2/M5/B8: CT and PT -- nameplate pairs give exact ratios, every measure is scaled to the
primary side exactly (power x CT x PT, current x CT, voltage x PT, energy registers left as
read), the same way row by row and a chunk at a time, and a limit goes back to the meter's
side."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import readings as r
from prepaid_core.reading_batch import copy_text
from prepaid_core.reading_batch.judge import BatchJudge, Followup, Messages, MeterLookup
from prepaid_core.reading_batch.rows import BASE_COLUMNS, MeterRecord, ParsedRow, StateBuilder

T0 = datetime(2030, 1, 1)
MEASURES = ("tou_peak", "voltage", "current", "power", "power_factor", "meter_balance")
MODEL_FLAGS = {1: (False, True)}
LIMITS = {1: r.MeterLimits(max_rate=D("66"))}


def shared(multiplier="", ct="", pt=""):
    return f"1|{multiplier}|{ct}|{pt}|1|in_service|on|online|on"


def judge(records, followup=None):
    lookup = MeterLookup({rec.id: rec for rec in records}, {}, StateBuilder(MODEL_FLAGS, LIMITS))
    messages = Messages("Duplicate reading.", "Unknown meter.")
    batch = BatchJudge(lookup, MEASURES, "2030-01-01 00:31:00", lambda *a: None, messages, followup)
    batch.batch_source = "push"
    return batch


def reading(meter_id, forward, measured, index=0):
    """A meter's reading 30 minutes after its baseline, measures as the meter reports them."""
    return ParsedRow(
        meter_id, T0 + timedelta(minutes=30), index, forward, None, measured, "on", None, "push"
    )


# === NAMEPLATE PAIRS === #
@pytest.mark.parametrize(
    ("primary", "secondary", "ratio"),
    [(50, 5, D(10)), (10000, 100, D(100)), ("75", "5", D(15)), (1.0, 1.0, D(1)), (5, 1, D(5))],
)
def test_transformer_ratio_of_nameplate_pairs(primary, secondary, ratio):
    assert r.transformer_ratio(primary, secondary) == ratio


@pytest.mark.parametrize(
    ("primary", "secondary", "named"),
    [
        (50, 0, "secondary"),
        (0, 5, "primary"),
        (-50, 5, "primary"),
        (50, -5, "secondary"),
        ("fifty", 5, "primary"),
        (50, float("nan"), "secondary"),
        (None, 5, "primary"),
    ],
)
def test_bad_pairs_refused_naming_the_value(primary, secondary, named):
    with pytest.raises(ValueError, match=f"^{named}: "):
        r.transformer_ratio(primary, secondary)


# === THE RULES === #
def test_each_measure_takes_its_ratios():
    ct, pt = D(10), D(100)
    assert r.primary_factor("power", ct, pt) == D(1000)
    assert r.primary_factor("current", ct, pt) == D(10)
    assert r.primary_factor("voltage", ct, pt) == D(100)
    for unscaled in ("power_factor", "meter_balance", "tou_peak", "status_word"):
        assert r.primary_factor(unscaled, ct, pt) == 1


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(-99999, 99999, places=4).map(float),
    ct=st.sampled_from([D(1), D(10), D(15), D(40), D(400), D("0.5"), D("2.5")]),
    pt=st.sampled_from([D(1), D(60), D(100), D("3.5")]),
)
def test_to_primary_is_the_exact_decimal_product(value, ct, pt):
    exact = D(repr(value)) * ct * pt
    scaled = r.to_primary(value, ct * pt)
    assert D(repr(scaled)) == exact  # its shortest form, as COPY writes it


def test_50_5_ct_reports_one_kw_where_ten_flow():
    scale = r.measure_scaler(MEASURES, r.transformer_ratio(50, 5), D(1))
    # tou register, voltage, current, power, power factor, balance (as the meter reports)
    assert scale((12.5, 230.1, 4.35, 1.0, 0.98, 20.5)) == (12.5, 230.1, 43.5, 10.0, 0.98, 20.5)
    assert scale((12.5, None, 0.0, None, None, None)) == (12.5, None, 0.0, None, None, None)


def test_no_scaler_without_transformer_or_scaled_measure():
    assert r.measure_scaler(MEASURES, D(1), D(1)) is None
    assert r.measure_scaler(("power_factor", "meter_balance"), D(40), D(100)) is None


def test_meter_side_limit():
    assert r.meter_side_limit(D(8), D(10)) == D("0.8000")
    assert r.meter_side_limit(D("6.5"), D(1)) == D("6.5000")
    assert r.meter_side_limit(D(10), D(3)) == D("3.3333")


# === IN A BATCH === #
def test_profile_reads_the_ratios_of_the_lookup_text():
    builder = StateBuilder(MODEL_FLAGS, LIMITS)
    plain = builder.profile_of(shared())
    ct = builder.profile_of(shared("10.0000", "10", "1"))
    float_text = builder.profile_of(shared("100.0000", "1", "100.0"))
    assert (plain.ct, plain.pt, plain.scaled) == (1, 1, False)
    assert (ct.ct, ct.pt, ct.scaled, ct.multiplier) == (10, 1, True, 10)
    assert (float_text.pt, float_text.multiplier) == (100, 100)


def test_stored_row_and_copy_line_are_primary_side():
    """A meter behind CT 50/5 and PT 10000/100: the register stays as read, its total is
    x 1000; power x 1000, current x 10, voltage x 100; power factor and balance as read."""
    records = [MeterRecord(1, 11, "5000.00", str(T0), shared("1000.0000", "10", "100"))]
    row = reading(1, D("5.01"), (2.5, 99.8, 0.5, 0.0345, 0.97, 12.0), index=0)
    [stored] = judge(records).rows([row])
    assert (stored.forward_total, stored.total, stored.consumption) == (
        D("5.01"),
        D("5010.0000"),
        D("10.0000"),
    )
    assert stored.measured == (2.5, 9980.0, 5.0, 34.5, 0.97, 12.0)
    values = next(csv.reader(io.StringIO(stored.line), delimiter="\t"))
    assert values[len(BASE_COLUMNS) :] == ["2.5", "9980.0", "5.0", "34.5", "0.97", "12.0"]


@settings(max_examples=150, deadline=None)
@given(
    meters=st.lists(
        st.tuples(
            st.sampled_from([("", "", ""), ("10.0000", "10", "1"), ("6000.0000", "60", "100")]),
            st.decimals(0, 2, places=2),  # forward increment (meter side)
            st.decimals(0, 50, places=3).map(float),  # power
            st.decimals(0, 60, places=2).map(float),  # current
        ),
        min_size=1,
        max_size=10,
    )
)
def test_fleet_chunk_scales_as_row_by_row(meters):
    records, rows = [], []
    for n, ((mult, ct, pt), step, power, current) in enumerate(meters, start=1):
        base = D("100.00") * D(mult or 1)
        records.append(MeterRecord(n, 100 + n, str(base), str(T0), shared(mult, ct, pt)))
        measured = (1.5, 229.9, current, power, 0.95, 3.0)
        rows.append(
            ParsedRow(
                n,
                T0 + timedelta(minutes=30),
                n - 1,
                D("100.00") + step,
                None,
                measured,
                "on",
                None,
                "push",
            )
        )
    by_chunk = judge(records, Followup()).fleet_chunk(rows)
    expected = list(judge(records, Followup()).rows(rows))
    for stored in expected:
        _mult, ct, pt = meters[stored.index][0]
        ratio_ct, ratio_pt = D(ct or 1), D(pt or 1)
        row = rows[stored.index]
        assert D(repr(stored.measured[3])) == D(repr(row.measured[3])) * ratio_ct * ratio_pt
        assert D(repr(stored.measured[2])) == D(repr(row.measured[2])) * ratio_ct
        assert D(repr(stored.measured[1])) == D(repr(row.measured[1])) * ratio_pt
    if by_chunk is None:  # something flagged: row by row only
        assert any(row.flags for row in expected)
        return
    assert repr(list(by_chunk)) == repr(expected)


def test_latest_state_staging_takes_the_primary_power():
    records = [MeterRecord(1, 11, "400.00", str(T0), shared("40.0000", "40", "1"))]
    row = reading(1, D("10.01"), (1.0, 230.0, 2.0, 0.25, 1.0, 5.0), index=0)
    batch = judge(records)
    stored = list(batch.rows([row]))
    newest = copy_text.newest_rows(stored, {1: None})
    [line] = "".join(copy_text.latest_chunks(newest, batch.by_id, MEASURES, [])).splitlines()
    # latest id, read time, total, forward, reverse, power, meter balance, ...
    assert line.split("\t")[5:7] == ["10.0", "5.0"]
