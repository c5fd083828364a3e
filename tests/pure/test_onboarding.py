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


KNOWN = onboarding.Known(
    sites={"old"},
    buildings={("old", "tower")},
    units={("old", "tower", "t-1")},
    buses={"old gw": {1}},
    models={"ddsy-5(60)a"},
    choices={"Units": {"unit_type": {"shop": "shop", "商铺": "shop", "apartment": "apartment"}}},
)


def _checked(sheets):
    return onboarding.check_workbook(onboarding.read_workbook(_book(sheets)), KNOWN)


def test_check_finds_nothing_in_the_example():
    assert (
        onboarding.check_workbook(onboarding.read_workbook(onboarding.example_workbook()), KNOWN)
        == []
    )


def test_check_names_every_unknown_reference_and_bad_cell():
    problems = _checked(
        {
            "Sites": [["Code", "Name"], ["NEW", "New Park"]],
            "Buildings": [["Site", "Building"], ["NEW", "B1"], ["NOPE", "B2"]],
            "Units": [
                ["Site", "Building", "Unit", "Type", "Area (m²)"],
                ["NEW", "B1", "U1", "商铺", "12.5"],
                ["NEW", "B9", "U2", "", ""],
                ["OLD", "Tower", "T-2", "castle", "big"],
            ],
            "Gateways": [["Site", "Gateway", "Bus", "Port"], ["NEW", "GW", "1", "x"]],
            "Meters": [
                ["Site", "Building", "Unit", "Meter", "Model", "Gateway", "Bus"],
                ["NEW", "B1", "U1", "M1", "DDSY-5(60)A", "GW", "1"],
                ["OLD", "Tower", "T-1", "M2", "NO-SUCH", "Old GW", "2"],
                ["OLD", "Tower", "T-9", "M3", "ddsy-5(60)a", "Other GW", "1"],
                ["NEW", "B1", "", "M4", "DDSY-5(60)A", "", ""],
            ],
            "Tenants": [
                ["Site", "Building", "Unit", "Tenant", "Start", "End"],
                ["NEW", "B1", "U1", "Li", "2026-01-01", ""],
                ["OLD", "Tower", "T-1", "Wu", "someday", "2026-13-01"],
            ],
        }
    )
    found = {(p.sheet, p.row, p.column, p.message) for p in problems}
    assert found == {
        ("Buildings", 3, "Site", onboarding.NO_SITE),
        ("Units", 3, "Building", onboarding.NO_BUILDING),
        ("Units", 4, "Type", onboarding.NOT_A_CHOICE),
        ("Units", 4, "Area (m²)", onboarding.NOT_A_NUMBER),
        ("Gateways", 2, "Port", onboarding.NOT_A_NUMBER),
        ("Meters", 3, "Model", onboarding.NO_MODEL),
        ("Meters", 3, "Bus", onboarding.NO_BUS),
        ("Meters", 4, "Unit", onboarding.NO_UNIT),
        ("Meters", 4, "Gateway", onboarding.NO_GATEWAY),
        ("Tenants", 3, "Start", onboarding.NOT_A_DATE),
        ("Tenants", 3, "End", onboarding.NOT_A_DATE),
    }
    by_place = {(p.sheet, p.row, p.column): p.args for p in problems}
    assert by_place[("Meters", 3, "Bus")] == {"gateway": "Old GW", "bus": "2"}
    assert by_place[("Units", 3, "Building")] == {"building": "B9", "site": "NEW"}
    assert by_place[("Units", 4, "Type")] == {"value": "castle", "choices": "shop, apartment"}


def test_written_workbook_reads_back():
    rows = {
        "Sites": [{"code": "GEN", "name": "Generated"}],
        "Meters": [
            {"site": "GEN", "building": "B1", "name": "M1", "address": "000000000001",
             "model": "DDSY-5(60)A", "bus": "2"}
        ],
    }  # fmt: skip
    workbook = onboarding.read_workbook(onboarding.write_workbook(rows))
    assert workbook.problems == []
    assert [row.values for row in workbook.rows["Sites"]] == rows["Sites"]
    assert [row.values for row in workbook.rows["Meters"]] == rows["Meters"]
    assert workbook.rows["Units"] == [] and workbook.row_count == 2
