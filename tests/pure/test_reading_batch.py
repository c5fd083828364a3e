"""M5: the readings batch kernel -- the row by row and the column by column judgements give
the same rows, the relay rule, the COPY text and the threads of a large batch."""

import csv
import gc
import io
import itertools
import sys
from datetime import datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import readings as r
from prepaid_core.reading_batch import copy_text, pipeline
from prepaid_core.reading_batch.judge import (
    BatchJudge,
    Followup,
    Messages,
    MeterLookup,
    judge_reading,
    register_total,
)
from prepaid_core.reading_batch.rows import (
    BASE_COLUMNS,
    MeterRecord,
    ParsedRow,
    StateBuilder,
    relay_event,
    relay_mismatch,
)

T0 = datetime(2030, 1, 1)
RECEIVED = "2030-01-01 00:31:00"
#: model 1: plain, with a relay; model 2: bidirectional, no relay
MODEL_FLAGS = {1: (False, True), 2: (True, False)}
LIMITS = {1: r.MeterLimits(max_rate=D("13.2")), 2: r.MeterLimits(max_rate=D("40"))}
MESSAGES = Messages("Duplicate reading.", "Unknown meter.")


def shared(
    multiplier="", model=1, state="in_service", desired="on", lost=False, actual="on", ct="", pt=""
):
    connection = "lost" if lost else "online"
    return f"1|{multiplier}|{ct}|{pt}|{model}|{state}|{desired}|{connection}|{actual}"


def judge(records, measures=("voltage",), followup=None):
    rejected = []
    lookup = MeterLookup({rec.id: rec for rec in records}, {}, StateBuilder(MODEL_FLAGS, LIMITS))
    batch = BatchJudge(
        lookup, measures, RECEIVED, lambda *args: rejected.append(args), MESSAGES, followup
    )
    batch.batch_source = "push"
    return batch, rejected


# === RULES === #
@pytest.mark.parametrize(
    ("state", "has_relay", "desired", "actual"),
    list(
        itertools.product(
            ["draft", "in_service", "removed"],
            [True, False],
            ["on", "off"],
            ["on", "off", "unknown"],
        )
    ),
)
def test_relay_mismatch_over_every_combination(state, has_relay, desired, actual):
    expected = state == "in_service" and has_relay and actual != desired
    assert relay_mismatch(state, has_relay, desired, actual) is expected
    text = shared(model=1 if has_relay else 2, state=state, desired=desired)
    profile = StateBuilder(MODEL_FLAGS, LIMITS).profile_of(text)
    if actual != "unknown":  # what a reading reports
        assert (actual in profile.mismatched_relays) is expected


def test_relay_event_is_a_restored_connection_or_another_relay():
    builder = StateBuilder(MODEL_FLAGS, LIMITS)
    assert not relay_event(builder.profile_of(shared(actual="on")), "on")
    assert not relay_event(builder.profile_of(shared(actual="unknown")), "off")
    assert not relay_event(builder.profile_of(shared(actual="on")), None)
    assert relay_event(builder.profile_of(shared(actual="on")), "off")
    assert relay_event(builder.profile_of(shared(lost=True)), None)


@settings(max_examples=400, deadline=None)
@given(
    prev=st.decimals(0, 2000, places=2),
    total=st.decimals(0, 2000, places=2),
    minutes=st.integers(-60, 600),
    multiplier=st.sampled_from([D(1), D(40)]),
)
def test_normal_consumption_is_validate_without_flags(prev, total, minutes, multiplier):
    read_at = T0 + timedelta(minutes=minutes)
    limits = LIMITS[1]
    normal = r.normal_consumption(prev, T0, total, read_at, limits, multiplier)
    verdict = r.validate(prev, T0, total, read_at, limits, multiplier)
    assert (normal is not None) == (verdict.flags == ())
    if normal is not None:
        assert normal == verdict.consumption == total - prev
        allowed = r.interval_allowance(T0, read_at, limits, multiplier)
        assert r.within_allowance(normal, allowed)


def test_register_total_is_the_effective_total():
    builder = StateBuilder(MODEL_FLAGS, LIMITS)
    plain = builder.profile_of(shared())
    ct = builder.profile_of(shared(multiplier="40.000"))
    bidirectional = builder.profile_of(shared(model=2))
    assert plain.plain and not ct.plain and not bidirectional.plain
    assert register_total(D("1.5"), None, plain) == D("1.5")
    assert register_total(D("1.5"), None, ct) == D("60.0")
    assert register_total(D("1.5"), D("0.5"), bidirectional) == D("2.0")


# === THE TWO WAYS OF JUDGING === #
#: (forward totals, minutes after the baseline) steps of a fleet, each judged both ways
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["", "40"]),  # multiplier
        st.sampled_from(["on", "off", None]),  # relay reported (asked: on)
        st.decimals(0, 30, places=2),  # forward increment
    ),
    min_size=1,
    max_size=12,
)


def fleet(steps, first):
    records, rows = [], []
    for n, (mult, relay, step) in enumerate(steps, start=1):
        base = None if first else ("100.00", str(T0))
        text = shared(multiplier=mult, actual="unknown" if relay is None else relay)
        records.append(MeterRecord(n, 100 + n, *(base or (None, None)), text))
        forward = D("100.00") + step
        row = ParsedRow(
            n, T0 + timedelta(minutes=30), n - 1, forward, None, (221.5,), relay, None, "push"
        )
        rows.append(row)
    return records, rows


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, first=st.booleans())
def test_fleet_chunk_gives_the_rows_of_row_by_row(steps, first):
    records, rows = fleet(steps, first)
    by_chunk, chunk_followup = Followup(), None
    columns, _ = judge(records, ("voltage",), by_chunk)
    judged = columns.fleet_chunk(rows)
    one_by_one, _ = judge(records, ("voltage",), Followup())
    expected = list(one_by_one.rows(rows))
    chunk_followup = one_by_one.followup
    if judged is None:  # something to flag: none of it taken by column
        assert any(row.flags and row.flags != "baseline" for row in expected)
        return
    assert repr(list(judged)) == repr(expected)
    assert by_chunk.mismatched == chunk_followup.mismatched
    assert by_chunk.late == chunk_followup.late == []
    assert by_chunk.kept == chunk_followup.kept == []


def test_rows_refuse_duplicates_and_unknown_meters():
    records, rows = fleet([("", "on", D(1))], first=True)
    batch, rejected = judge(records)
    unknown = rows[0]._replace(meter_id=99, index=5)
    stored = list(batch.rows([rows[0], rows[0]._replace(index=1), unknown]))
    assert [row.index for row in stored] == [0]
    assert rejected == [(1, "Duplicate reading.", 1), (5, "Unknown meter.", 99)]


def test_judge_reading_moves_the_baseline_only_when_normal():
    profile = StateBuilder(MODEL_FLAGS, LIMITS).profile_of(shared())
    normal = judge_reading(D(100), T0, D(101), T0 + timedelta(minutes=30), profile)
    assert normal == (D(1), None, None, True, True)
    spike = judge_reading(D(100), T0, D(200), T0 + timedelta(minutes=30), profile)
    assert spike.flags == "spike" and not spike.moves and not spike.chargeable


# === COPY TEXT === #
def test_copy_lines_read_back_as_the_rows_values():
    records, rows = fleet([("", "on", D("1.25")), ("40", None, D(2))], first=False)
    batch, _ = judge(records, ("voltage",))
    stored = list(batch.rows(rows))
    flagged = stored[0]._replace(flag_reason='a "quoted"\treason', flags="spike", line=None)
    prepared = []
    text = "".join(copy_text.copy_chunks(iter([flagged, *stored]), prepared))
    assert prepared == [flagged, *stored]
    read = list(csv.reader(io.StringIO(text), delimiter="\t"))
    assert len(read) == 3 and len(read[0]) == len(BASE_COLUMNS) + 1
    for values, row in zip(read, prepared, strict=True):
        expected = ["" if v is None else str(v) for v in row.copy_values()]
        chargeable = len(BASE_COLUMNS) - 1  # (as PostgreSQL reads a boolean)
        assert {"t": True, "True": True, "f": False}[values.pop(chargeable)] is row.chargeable
        del expected[chargeable]
        assert values == expected


def test_newest_rows_of_each_meter():
    records, rows = fleet([("", "on", D(1))], first=False)
    batch, _ = judge(records)
    second = rows[0]._replace(read_at=T0 + timedelta(minutes=60), forward=D(300), index=1)
    first, spike = batch.rows([rows[0], second])
    assert spike.flags == "spike"
    [(meter_id, newest, baseline)] = copy_text.newest_rows([first, spike], {1: None})
    assert (meter_id, newest, baseline) == (1, spike, first)


# === THREADS === #
def test_chunk_reader_makes_chunks_ahead_and_raises_their_error():
    reader = pipeline.ChunkReader(iter(["a", "b", "c"]), ahead=2)
    assert [reader.read(), reader.read(), reader.read(), reader.read()] == ["a", "b", "c", ""]
    reader.close()

    def failing():
        yield "a"
        raise ValueError("bad row")

    reader = pipeline.ChunkReader(failing(), ahead=2)
    assert reader.read() == "a"
    with pytest.raises(ValueError, match="bad row"):
        reader.read()
    reader.close()


def test_run_meanwhile_gives_both_results_or_the_query_error():
    assert pipeline.run_meanwhile(lambda: [1, 2], lambda: "parsed") == ([1, 2], "parsed")
    done = []
    with pytest.raises(ZeroDivisionError):
        pipeline.run_meanwhile(lambda: 1 / 0, lambda: done.append(True))
    assert done == [True]


def test_large_batch_mode_restores_gc_and_switch_interval():
    before = sys.getswitchinterval()
    with pipeline.large_batch_mode():
        assert not gc.isenabled()
        with pipeline.large_batch_mode():
            assert sys.getswitchinterval() == pytest.approx(pipeline.SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(pipeline.SWITCH_INTERVAL)
    assert gc.isenabled()
    assert sys.getswitchinterval() == before
