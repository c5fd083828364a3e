"""M5: the two ways a batch's rows are parsed, column by column when every row has the
common shape, row by row otherwise -- the same parsed rows, to the Decimal's exponent."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core.reading_batch import parse

UTC = timezone.utc  # datetime.UTC is Python 3.11+

#: the add-on's reading sources (``prepaid_meter.const.READING_SOURCES``)
SOURCES = frozenset({"poll", "push", "manual", "ble", "import"})

T0 = datetime(2030, 1, 1, 0, 30)

READ_ATS = st.sampled_from(
    [
        T0,
        T0 + timedelta(minutes=30),
        T0.replace(microsecond=500),
        T0.replace(tzinfo=UTC),
        "2030-01-01T00:30:00Z",
        "2030-01-01 01:00:00",
        "2030-01-01T00:30:00.250+02:00",
        "yesterday",
        "",
        None,
        12,
        # beyond the calendar kept (X1)
        datetime(1, 1, 1),
        datetime(2200, 1, 1),
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2030-01-01T00:30:00\x00",
    ]
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1000.25, 1e308, -1.5]),
    st.sampled_from(["1000.25", " 1.50 ", "1_000", "-1", "NaN", "Infinity", "abc", "", "-0"]),
    st.integers(-5, 10**6),
    st.sampled_from([Decimal("12.30"), True, None]),
    # beyond what the store keeps (X1)
    st.sampled_from(["1E-20000", "0E-20000", 1e13, 1e-300, 5e-5, "1" * 70, 10**40]),
)
MEASURED = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([221.5, None, False, 7, "1.5", "x"]),
    st.sampled_from([1e9, -1e9, 1e-300, 5e-5, "1E-20000", True, 10**40]),
)


@st.composite
def rows(draw):
    row = {"meter_id": draw(st.integers(1, 50)), "read_at": draw(READ_ATS)}
    row["forward_total"] = draw(NUMBERS)
    for name, values in (
        ("reverse_total", NUMBERS),
        ("voltage", MEASURED),
        ("power", MEASURED),
        ("relay_state", st.sampled_from(["on", "off", "", None, "half"])),
        ("source", st.sampled_from(["push", "poll", "", None, "carrier pigeon"])),
        ("status_word", st.sampled_from([None, 3, "4", "x", 2**31, True, 1.5])),
    ):
        if draw(st.integers(0, 3)) == 0:  # most rows carry few of them
            row[name] = draw(values)
    return row


def common_row(meter_id, read_at, forward):
    return {
        "meter_id": meter_id,
        "read_at": read_at,
        "forward_total": forward,
        "voltage": 221.5,
        "power": 1.25,
        "relay_state": "on",
        "source": "push",
    }


def both(batch, source="push"):
    measures = parse.batch_measures(batch)
    return (
        parse.parse_columns(batch, source, measures, SOURCES),
        parse.parse_each(batch, source, measures, SOURCES),
    )


def test_common_batches_are_parsed_by_column():
    for batch in (
        [common_row(n, T0, 1000 + n / 10) for n in range(1, 200)],
        [common_row(n, "2030-01-01T00:30:00Z", f"{1000 + n}.{n:03d}") for n in range(1, 50)],
        [{"meter_id": 1, "read_at": T0, "forward_total": 0.0}],
    ):
        columns, (each, errors) = both(batch)
        assert columns is not None
        assert errors == []
        assert repr(columns) == repr(each)
    # a row of its own source, among the batch's
    batch = [common_row(1, T0, 5.0), {**common_row(2, T0, 6.0), "source": "poll"}]
    columns, (each, _errors) = both(batch)
    assert [item.source for item in columns] == ["push", "poll"]
    assert repr(columns) == repr(each)


@pytest.mark.parametrize(
    "odd",
    [
        {"forward_total": -1.0},
        {"forward_total": float("nan")},
        {"forward_total": "abc"},
        {"forward_total": 12},
        {"read_at": T0.replace(microsecond=5)},
        {"read_at": "not a time"},
        {"reverse_total": 3.0},
        {"status_word": 4},
        {"voltage": float("inf")},
        {"voltage": "220"},
        {"relay_state": ""},
        {"source": "carrier pigeon"},
        {"source": ["push"]},
    ],
)
def test_uncommon_rows_are_parsed_one_by_one(odd):
    """Anything to refuse or to convert otherwise is left to the row by row parse, which
    says what is wrong with each row."""
    batch = [common_row(1, T0, 5.0), {**common_row(2, T0, 6.0), **odd}]
    columns, (each, errors) = both(batch)
    assert columns is None
    assert each or errors


@settings(max_examples=300, deadline=None)
@given(st.lists(rows(), min_size=1, max_size=6))
def test_either_way_gives_the_same_rows(batch):
    columns, (each, errors) = both(batch)
    if columns is not None:
        assert errors == []
        assert repr(columns) == repr(each)
