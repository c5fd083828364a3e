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

#: the problems found in the file itself (the add-on translates them, with the
#: problem's ``args``)
NOT_A_WORKBOOK = "not an Excel workbook (.xlsx)"
COLUMN_MISSING = "column missing"
NO_SITE = "no site with code %(site)s"
NO_BUILDING = "no building %(building)s on site %(site)s"
NO_UNIT = "no unit %(unit)s in building %(building)s"
NO_MODEL = "unknown meter model %(model)s"
NO_GATEWAY = "no gateway %(gateway)s"
NO_BUS = "gateway %(gateway)s has no bus %(bus)s"
NOT_A_NUMBER = "%(value)s is not a number"
NOT_A_DATE = "%(value)s is not a date (YYYY-MM-DD)"
NOT_A_CHOICE = "%(value)s is not one of: %(choices)s"


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
    args: dict = field(default_factory=dict)


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


@dataclass
class Known:
    """What the database already holds, by the (case-folded) keys the workbook uses."""

    sites: set = field(default_factory=set)  # codes
    buildings: set = field(default_factory=set)  # (site code, building)
    units: set = field(default_factory=set)  # (site code, building, unit)
    buses: dict = field(default_factory=dict)  # gateway name -> its bus numbers
    models: set = field(default_factory=set)  # meter model codes and names
    #: sheet -> column key -> {accepted text (case-folded): the value it stands for}
    choices: dict = field(default_factory=dict)


def _fold(*texts) -> tuple:
    return tuple(str(text).casefold() for text in texts)


def _known_with_file(workbook: Workbook, known: Known) -> Known:
    """``known`` and what the workbook's own rows will create."""
    rows = workbook.rows
    buses = {name: set(numbers) for name, numbers in known.buses.items()}
    for row in rows.get("Gateways", []):
        numbers = buses.setdefault(_fold(row.get("name"))[0], set())
        if str(row.get("bus")).isdigit():
            numbers.add(int(row.get("bus")))
    return Known(
        sites=known.sites | {_fold(r.get("code"))[0] for r in rows.get("Sites", [])},
        buildings=known.buildings
        | {_fold(r.get("site"), r.get("name")) for r in rows.get("Buildings", [])},
        units=known.units
        | {_fold(r.get("site"), r.get("building"), r.get("name")) for r in rows.get("Units", [])},
        buses=buses,
        models=known.models,
        choices=known.choices,
    )


class _Checker:
    """The cell and reference checks of :func:`check_workbook`, problems collected."""

    NUMBERS = {"area": float, "bus": int, "port": int}
    DATES = ("date_start", "date_end")

    def __init__(self, known: Known):
        self.known = known
        self.problems: list[Problem] = []

    def problem(self, row: Row, key: str, message: str, **args) -> None:
        header = next((c.header for c in SHEETS[row.sheet] if c.key == key), key)
        self.problems.append(Problem(row.sheet, row.number, header, message, args))

    def cells(self, row: Row) -> None:
        """Numbers, dates and choices written as the columns need."""
        for key, kind in self.NUMBERS.items():
            try:
                kind(row.get(key) or 0)
            except (TypeError, ValueError):
                self.problem(row, key, NOT_A_NUMBER, value=row.get(key))
        for key in self.DATES:
            if isinstance(row.get(key), str) and row.get(key):
                try:
                    dt.datetime.strptime(row.get(key)[:10], "%Y-%m-%d")
                except ValueError:
                    self.problem(row, key, NOT_A_DATE, value=row.get(key))
        for key, accepted in self.known.choices.get(row.sheet, {}).items():
            if row.get(key) and _fold(row.get(key))[0] not in accepted:
                choices = ", ".join(dict.fromkeys(accepted.values()))
                self.problem(row, key, NOT_A_CHOICE, value=row.get(key), choices=choices)

    def place(self, row: Row, unit_key: str | None = "unit") -> None:
        """The row's site, building and (when ``unit_key`` names a cell) unit exist."""
        site, building = row.get("site"), row.get("building")
        if _fold(site)[0] not in self.known.sites:
            self.problem(row, "site", NO_SITE, site=site)
        elif building and _fold(site, building) not in self.known.buildings:
            self.problem(row, "building", NO_BUILDING, building=building, site=site)
        elif unit_key and row.get(unit_key):
            if _fold(site, building, row.get(unit_key)) not in self.known.units:
                self.problem(row, unit_key, NO_UNIT, unit=row.get(unit_key), building=building)

    def meter(self, row: Row) -> None:
        if _fold(row.get("model"))[0] not in self.known.models:
            self.problem(row, "model", NO_MODEL, model=row.get("model"))
        gateway = row.get("gateway")
        if not gateway:
            return
        buses = self.known.buses.get(_fold(gateway)[0])
        if buses is None:
            self.problem(row, "gateway", NO_GATEWAY, gateway=gateway)
        elif str(row.get("bus")).isdigit() and int(row.get("bus")) not in buses:
            self.problem(row, "bus", NO_BUS, gateway=gateway, bus=row.get("bus"))


def check_workbook(workbook: Workbook, known: Known) -> list[Problem]:
    """What the import would refuse before creating anything, found without creating
    anything: cells that are not numbers, dates or one of the choices, and references
    to sites, buildings, units, meter models, gateways and buses that neither ``known``
    nor the workbook's own rows hold.  The models' own rules (an address taken on its bus,
    a bus full, a name used twice) are left to the import."""
    checker = _Checker(_known_with_file(workbook, known))
    for sheet, rows in workbook.rows.items():
        for row in rows:
            checker.cells(row)
            if sheet in ("Buildings", "Units", "Gateways"):
                checker.place(row, None)
            elif sheet == "Meters":
                checker.place(row)
                checker.meter(row)
            elif sheet == "Tenants":
                checker.place(row)
    return checker.problems


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


def write_workbook(rows: dict[str, list[dict]]) -> bytes:
    """An .xlsx file of ``rows`` (``{sheet: [cell values by column key]}``), every sheet
    with its header row: a generated site as a person would fill it in."""
    book = openpyxl.Workbook(write_only=True)
    for sheet, columns in SHEETS.items():
        worksheet = book.create_sheet(sheet)
        worksheet.append([column.header for column in columns])
        for row in rows.get(sheet, []):
            worksheet.append([row.get(column.key, "") for column in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


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
