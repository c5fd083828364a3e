"""M9: the site workbook, one .xlsx file describing a whole site, read into plain rows.

A workbook has a sheet per kind of record (Sites, Buildings, Units, Gateways, Meters,
Tenants), a header row naming the columns and a row per record.  This module only reads
and writes the file: cells become text (numbers without a trailing ``.0``, dates as
``datetime.date``) keyed by column, each row keeps its number in the sheet so that every
error can name sheet, row and column.  What the rows mean is decided by the add-on.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import openpyxl

#: the problems found in the file itself (the add-on translates them)
NOT_A_WORKBOOK = "not an Excel workbook (.xlsx)"
COLUMN_MISSING = "column missing"


@dataclass(frozen=True)
class Column:
    header: str  # as written in the header row
    key: str  # the row's key for it
    required: bool = False
    example: tuple = ()  # the example workbook's values, one per example row


@dataclass
class Row:
    sheet: str
    number: int  # the row's number in the sheet, header = 1
    values: dict = field(default_factory=dict)

    def get(self, key, default=""):
        return self.values.get(key, default)


@dataclass
class Problem:
    """Something wrong with one cell, row or sheet (``row`` 0: the sheet itself)."""

    sheet: str
    row: int
    column: str
    message: str


@dataclass
class Workbook:
    rows: dict[str, list[Row]]  # sheet name -> its data rows, in order
    problems: list[Problem]

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass(frozen=True)
class Batch:
    """Rows of one sheet imported together; ``done``: the workbook's rows before them."""

    sheet: str
    rows: list[Row]
    done: int


#: the sheets, in the order records are created, and their columns
SHEETS: dict[str, tuple[Column, ...]] = {
    "Sites": (
        Column("Code", "code", True, ("RP",)),
        Column("Name", "name", True, ("Riverside Park",)),
    ),
    "Buildings": (
        Column("Site", "site", True, ("RP", "RP")),
        Column("Building", "name", True, ("Block A", "Block B")),
    ),
    "Units": (
        Column("Site", "site", True, ("RP", "RP", "RP")),
        Column("Building", "building", True, ("Block A", "Block A", "Block B")),
        Column("Unit", "name", True, ("A-101", "A-102", "B-101")),
        Column("Floor", "floor", False, ("1F", "1F", "1F")),
        Column("Type", "unit_type", False, ("apartment", "apartment", "shop")),
        Column("Area (m²)", "area", False, ("65", "80", "120.5")),
    ),
    "Gateways": (
        Column("Site", "site", True, ("RP", "RP")),
        Column("Gateway", "name", True, ("Collector A", "Collector A")),
        Column("Type", "gateway_type", False, ("tcp_collector", "tcp_collector")),
        Column("Host", "host", False, ("192.168.1.20", "192.168.1.20")),
        Column("Serial", "serial", False, ("C-0001", "C-0001")),
        Column("Bus", "bus", False, ("1", "2")),
        Column("Port", "port", False, ("9001", "9002")),
        Column("Protocol", "protocol", False, ("dlt645_2007", "modbus_rtu")),
    ),
    "Meters": (
        Column("Site", "site", True, ("RP", "RP", "RP")),
        Column("Building", "building", True, ("Block A", "Block A", "Block B")),
        Column("Unit", "unit", False, ("A-101", "A-102", "B-101")),
        Column("Meter", "name", True, ("Power A-101", "Power A-102", "Power B-101")),
        Column("Serial", "serial", False, ("S-A101", "S-A102", "S-B101")),
        Column("Address", "address", False, ("000000000101", "000000000102", "000000000201")),
        Column("Model", "model", True, ("DDSY-5(60)A", "DDSY-5(60)A", "DDSY-5(60)A")),
        Column("Gateway", "gateway", False, ("Collector A", "Collector A", "Collector A")),
        Column("Bus", "bus", False, ("1", "1", "1")),
    ),
    "Tenants": (
        Column("Site", "site", True, ("RP", "RP")),
        Column("Building", "building", True, ("Block A", "Block B")),
        Column("Unit", "unit", True, ("A-101", "B-101")),
        Column("Tenant", "name", True, ("Li Wei", "Riverside Noodles")),
        Column("Phone", "phone", False, ("+86 138 0000 0101", "+86 138 0000 0201")),
        Column("Email", "email", False, ("li.wei@example.com", "")),
        Column("Start", "date_start", True, (dt.date(2026, 1, 1), dt.date(2026, 1, 1))),
        Column("End", "date_end", False, ("", "")),
        Column("Open", "open", False, ("yes", "yes")),
    ),
}


def cell_text(value) -> str | dt.date:
    """A cell as the text a person typed: ``12.0`` -> ``"12"``, dates kept as dates."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _header_keys(sheet: str, header_cells, columns) -> tuple[dict[int, str], list[Problem]]:
    """``{cell index: column key}`` of a header row, and the required columns missing."""
    by_header = {column.header.casefold(): column for column in columns}
    keys = {}
    for index, value in enumerate(header_cells):
        column = by_header.get(str(cell_text(value)).casefold())
        if column:
            keys[index] = column.key
    missing = [
        Problem(sheet, 1, column.header, COLUMN_MISSING)
        for column in columns
        if column.required and column.key not in keys.values()
    ]
    return keys, missing


def _sheet_rows(sheet: str, worksheet, columns) -> tuple[list[Row], list[Problem]]:
    lines = worksheet.iter_rows(values_only=True)
    header = next(lines, None)
    if header is None:
        return [], []
    keys, problems = _header_keys(sheet, header, columns)
    rows = []
    for number, cells in enumerate(lines, start=2):
        values = {
            keys[index]: cell_text(value)
            for index, value in enumerate(cells)
            if index in keys and cell_text(value) != ""
        }
        if values:
            rows.append(Row(sheet, number, values))
    return rows, problems


def read_workbook(data: bytes) -> Workbook:
    """The rows of every known sheet of an .xlsx file; a file that is not a workbook, or
    a sheet missing a required column, is a problem (sheets of other names are ignored)."""
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a file that is not xlsx
        return Workbook({}, [Problem("", 0, "", NOT_A_WORKBOOK)])
    rows, problems = {}, []
    names = {name.casefold(): name for name in book.sheetnames}
    for sheet, columns in SHEETS.items():
        name = names.get(sheet.casefold())
        if name is None:
            rows[sheet] = []
            continue
        rows[sheet], missing = _sheet_rows(sheet, book[name], columns)
        problems.extend(missing)
    book.close()
    return Workbook(rows, problems)


def batches(workbook: Workbook, size: int, done: int = 0) -> Iterator[Batch]:
    """The rows of ``workbook`` after its first ``done`` ones, in the order records are
    created, cut into batches of at most ``size`` rows of a single sheet: what an import
    in the background creates and commits at a time, ``done`` being what it committed."""
    if size < 1:
        raise ValueError("a batch has at least one row")
    offset = 0
    for sheet in SHEETS:
        rows = workbook.rows.get(sheet, [])
        for start in range(max(done - offset, 0), len(rows), size):
            yield Batch(sheet, rows[start : start + size], offset + start)
        offset += len(rows)


def example_workbook() -> bytes:
    """The example workbook: every sheet with its header and a few rows of one site."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for sheet, columns in SHEETS.items():
        worksheet = book.create_sheet(sheet)
        worksheet.append([column.header for column in columns])
        for line in zip(*(column.example for column in columns), strict=True):
            worksheet.append(list(line))
        for index, column in enumerate(columns, start=1):
            letter = openpyxl.utils.get_column_letter(index)
            worksheet.column_dimensions[letter].width = max(12, len(column.header) + 4)
            # addresses, ports and codes are text: Excel must keep their leading zeros
            for cells in worksheet.iter_cols(min_col=index, max_col=index, min_row=2):
                for cell in cells:
                    if isinstance(cell.value, str):
                        cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
