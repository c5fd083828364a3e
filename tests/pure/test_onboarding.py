"""M9: the site workbook read into rows that keep their sheet and row number."""

import datetime as dt
import io

import openpyxl
import pytest

from prepaid_core import onboarding


def _book(sheets):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, lines in sheets.items():
        sheet = book.create_sheet(name)
        for line in lines:
            sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_example_round_trip():
    workbook = onboarding.read_workbook(onboarding.example_workbook())
    assert workbook.problems == []
    assert {sheet: len(rows) for sheet, rows in workbook.rows.items()} == {
        "Sites": 1,
        "Buildings": 2,
        "Units": 3,
        "Gateways": 2,
        "Meters": 3,
        "Tenants": 2,
    }
    meter = workbook.rows["Meters"][0]
    assert (meter.sheet, meter.number) == ("Meters", 2)
    assert meter.get("address") == "000000000101"  # kept as text, leading zeros and all
    assert workbook.rows["Tenants"][0].get("date_start") == dt.date(2026, 1, 1)


def test_cells_as_typed():
    assert onboarding.cell_text(12.0) == "12"
    assert onboarding.cell_text(12.5) == "12.5"
    assert onboarding.cell_text(None) == ""
    assert onboarding.cell_text(" A-101 ") == "A-101"
    assert onboarding.cell_text(dt.datetime(2026, 1, 2, 0, 0)) == dt.date(2026, 1, 2)


def test_rows_numbered_blank_rows_skipped_headers_any_case():
    data = _book(
        {
            "sites": [["NAME", "code", "Whatever"], ["Park", "P1", "x"], [None, None], ["B", "P2"]],
            "Other": [["Name"], ["ignored"]],
        }
    )
    workbook = onboarding.read_workbook(data)
    assert workbook.problems == []
    assert [(row.number, row.values) for row in workbook.rows["Sites"]] == [
        (2, {"name": "Park", "code": "P1"}),
        (4, {"name": "B", "code": "P2"}),
    ]
    assert workbook.rows["Meters"] == []


def test_missing_required_column_named():
    workbook = onboarding.read_workbook(_book({"Buildings": [["Building"], ["Block A"]]}))
    assert [(p.sheet, p.row, p.column, p.message) for p in workbook.problems] == [
        ("Buildings", 1, "Site", onboarding.COLUMN_MISSING)
    ]


def test_not_a_workbook():
    workbook = onboarding.read_workbook(b"name,code\nPark,P1\n")
    assert [p.message for p in workbook.problems] == [onboarding.NOT_A_WORKBOOK]
    assert workbook.rows == {}


def _workbook(counts):
    rows = {
        sheet: [onboarding.Row(sheet, number, {"name": f"{sheet} {number}"})
                for number in range(2, 2 + counts.get(sheet, 0))]
        for sheet in onboarding.SHEETS
    }  # fmt: skip
    return onboarding.Workbook(rows, [])


def test_batches_follow_the_sheets_and_never_mix_them():
    workbook = _workbook({"Sites": 1, "Units": 5, "Meters": 3})
    assert workbook.row_count == 9
    cut = [(b.sheet, [r.number for r in b.rows], b.done) for b in onboarding.batches(workbook, 2)]
    assert cut == [
        ("Sites", [2], 0),
        ("Units", [2, 3], 1),
        ("Units", [4, 5], 3),
        ("Units", [6], 5),
        ("Meters", [2, 3], 6),
        ("Meters", [4], 8),
    ]


def test_batches_resume_after_the_rows_done():
    """A rerun after ``done`` rows committed takes every later row exactly once."""
    workbook = _workbook({"Sites": 1, "Buildings": 2, "Units": 5, "Tenants": 4})
    everything = [r.number for b in onboarding.batches(workbook, 3) for r in b.rows]
    for done in range(workbook.row_count + 1):
        rest = list(onboarding.batches(workbook, 3, done))
        assert [r.number for b in rest for r in b.rows] == everything[done:]
        assert not rest or rest[0].done == done
    assert list(onboarding.batches(workbook, 3, workbook.row_count)) == []


def test_batches_need_a_size():
    with pytest.raises(ValueError):
        list(onboarding.batches(_workbook({"Sites": 1}), 0))
