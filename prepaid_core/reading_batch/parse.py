"""M5: parse a batch of readings (mappings from devices or screens) into :class:`ParsedRow`.

A batch in the common shape is parsed a column at a time (each value converted by a C loop);
any other row by row, which says why a row is refused.  Both give the same rows.  No database:
this runs while the batch's meters are looked up.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timezone
from decimal import Decimal

from .. import readings as validation
from .rows import MEASURE_LIMITS, MEASURE_SET, MEASURES, ParsedRow, parsed_row

UTC = timezone.utc  # datetime.UTC is Python 3.11+

_INF = float("inf")
_REGISTER_LIMIT = float(validation.REGISTER_LIMIT)
_TINY = validation.TINY
_EARLIEST, _LATEST = validation.EARLIEST, validation.LATEST
_INT4 = validation.INT4_MAX + 1
_NUMBER_TEXT = validation.MAX_NUMBER_TEXT
#: a batch with more distinct read times (a backlog) is parsed row by row
MAX_COLUMN_TIMES = 64


def batch_measures(rows) -> tuple:
    """The measures some row of the batch names, in :data:`MEASURES` order: the columns the
    batch writes."""
    named = MEASURE_SET.intersection(set().union(*rows)) if rows else ()
    return tuple(name for name in MEASURES if name in named)


def parse_time(value) -> datetime:
    """A read time (datetime, or ISO 8601 text; UTC unless it says otherwise) as a naive UTC
    datetime in whole seconds, within the range of :func:`prepaid_core.readings.check_time`;
    else ValueError."""
    if type(value) is datetime and value.tzinfo is None and not value.microsecond:
        return validation.check_time(value, "read_at")
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable():
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            shown = validation.shown(value)
            raise ValueError(f"read_at: {shown} is not an ISO 8601 date and time") from None
    if not isinstance(value, datetime):
        raise ValueError(f"read_at: {validation.shown(value)} is not a date and time")
    if value.tzinfo:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # (the first or last hours of the calendar)
            raise ValueError(f"read_at: {value} is out of range") from None
    return validation.check_time(value.replace(microsecond=0), "read_at")


def parse_rows(rows, source, measures, sources):
    """Parse each row's values: ``(parsed rows, [(index, reason)] of those that do not
    parse)``.  ``source``: the batch's; ``sources``: every known source."""
    parsed = parse_columns(rows, source, measures, sources)
    if parsed is not None:
        return parsed, []
    return parse_each(rows, source, measures, sources)


def parse_columns(rows, source, measures, sources):
    """:func:`parse_rows` of a batch in the common shape, a column at a time, or None when
    some row is not in it: read times all datetimes (naive, whole seconds) or all text, and
    few distinct; forward totals all floats or all text; no reverse total and no status word;
    each measure a float or absent; relay states 'on', 'off' or absent; sources known.
    Whatever is to be refused is left to :func:`parse_each`, which says why."""
    try:
        return _parse_columns(rows, source, measures, sources)
    except (TypeError, ValueError, ArithmeticError):  # (unhashable, not a number...)
        return None


def _parse_columns(rows, source, measures, sources):
    count = len(rows)
    columns = _Columns(rows)
    if columns["reverse_total"].count(None) != count:
        return None
    if columns["status_word"].count(None) != count:
        return None
    read_ats = _read_time_column(columns["read_at"])
    forwards = _forward_column(columns["forward_total"])
    if read_ats is None or forwards is None:
        return None
    measured = [columns[name] for name in measures]
    if not all(_finite(columns[name], MEASURE_LIMITS[name]) for name in measures):
        return None
    relays = columns["relay_state"]
    if not set(relays) <= {None, "on", "off"}:
        return None
    row_sources = _source_column(columns["source"], source, sources, count)
    if row_sources is None:
        return None
    none = (None,) * count
    values = zip(*measured, strict=True) if measured else itertools.repeat((), count)
    return list(
        map(
            parsed_row,
            zip(
                columns["meter_id"],
                read_ats,
                range(count),
                forwards,
                none,
                values,
                relays,
                none,
                row_sources,
                strict=True,
            ),
        )
    )


class _Columns(dict):
    """A batch's values by field, read from its rows when first asked for."""

    def __init__(self, rows):
        super().__init__()
        self._rows = rows

    def __missing__(self, name):
        values = self[name] = [row.get(name) for row in self._rows]
        return values


def _read_time_column(read_ats):
    distinct = set(read_ats)
    if len(distinct) > MAX_COLUMN_TIMES:
        return None
    kinds = set(map(type, distinct))
    if kinds == {datetime}:
        if any(at.tzinfo or at.microsecond for at in distinct):
            return None
        if min(distinct) < _EARLIEST or max(distinct) >= _LATEST:
            return None
        return read_ats
    if kinds == {str}:
        table = {text: parse_time(text) for text in distinct}
        return list(map(table.__getitem__, read_ats))
    return None


def _forward_column(forwards):
    kinds = set(map(type, forwards))
    if kinds == {float}:
        if not _finite(forwards, _REGISTER_LIMIT) or min(forwards) < 0:
            return None
        return list(map(Decimal, map(repr, forwards)))
    if kinds == {str}:
        # plain digits within the register's range (finite, not negative, few decimals)
        if not all(map(validation.PLAIN_REGISTER.fullmatch, forwards)):
            return None
        return list(map(Decimal, forwards))
    return None


def _finite(values, limit):
    """Whether ``values`` are floats (or None), all finite, of size below ``limit`` and, but
    zeros, at least TINY (so with no more decimals than the store keeps)."""
    kinds = set(map(type, values))
    if not kinds <= {float, type(None)}:
        return False
    if type(None) in kinds:
        values = [value for value in values if value is not None]
        if not values:
            return True
    total = math.fsum(values)  # NaN or infinite with one of them (or OverflowError)
    return (
        -_INF < total < _INF
        and -limit < min(values)
        and max(values) < limit
        and min(map(abs, filter(None, values)), default=_TINY) >= _TINY
    )


def _source_column(row_sources, source, sources, count):
    named = set(row_sources) - {None, "", source}
    if not named:
        return itertools.repeat(source, count)
    if not named <= sources:
        return None
    return [value or source for value in row_sources]


def parse_each(rows, source, measures, sources):
    """:func:`parse_rows`, row by row."""
    parser = _RowParser(source, measures, sources)
    parsed, errors = [], []
    for index, row in enumerate(rows):
        try:
            parsed.append(parser.parse(index, row))
        except (ValueError, TypeError, ArithmeticError) as exc:  # (ReadingError too)
            errors.append((index, str(exc)))
    return parsed, errors


class _RowParser:
    """Parses one row after the other; each distinct read time of a batch once."""

    def __init__(self, source, measures, sources):
        self.source, self.measures, self.sources = source, measures, sources
        self.limits = [MEASURE_LIMITS[name] for name in measures]
        self.times = {}

    def parse(self, index, row) -> ParsedRow:
        # (in this order: a row with several bad values is refused for the first)
        read_at = self.read_time(row.get("read_at"))
        forward = self.forward(row.get("forward_total"))
        reverse = self.reverse(row.get("reverse_total"))
        measured = self.measured(row)
        status = self.status(row.get("status_word"))
        source = self.row_source(row.get("source") or self.source)
        relay = self.relay(row.get("relay_state") or None)
        return ParsedRow(
            row.get("meter_id"), read_at, index, forward, reverse, measured, relay, status, source
        )

    def read_time(self, read_at):
        if (
            type(read_at) is datetime
            and not read_at.tzinfo
            and not read_at.microsecond
            and _EARLIEST <= read_at < _LATEST
        ):
            return read_at
        if type(read_at) is not str:
            return parse_time(read_at)
        at = self.times.get(read_at)
        if at is None:
            at = self.times[read_at] = parse_time(read_at)
        return at

    @staticmethod
    def forward(forward):
        if type(forward) is float and (_TINY <= forward < _REGISTER_LIMIT or not forward):
            return Decimal(repr(forward))  # the common case
        return validation.to_quantity(forward, "forward_total")

    @staticmethod
    def reverse(reverse):
        return None if reverse is None else validation.to_quantity(reverse, "reverse_total")

    def measured(self, row):
        measured = [row.get(name) for name in self.measures]
        for at, value in enumerate(measured):
            measured[at] = self.measure(value, at)
        return tuple(measured)

    def measure(self, value, at):
        limit, kind = self.limits[at], type(value)
        if kind is float:
            if _TINY <= abs(value) < limit or not value:
                return value  # the common case
        elif kind is str and len(value) <= _NUMBER_TEXT:  # (a runner's Decimals)
            try:
                number = float(value)
            except ValueError:
                number = _INF  # (to_measure says why)
            if _TINY <= abs(number) < limit:
                return number
        elif value is None or value is False:  # (the ORM's empty value)
            return None
        return validation.to_measure(value, self.measures[at], limit)

    @staticmethod
    def status(status):
        if status is not None and (type(status) is not int or not 0 <= status < _INT4):
            return validation.to_status_word(status)
        return status

    def row_source(self, row_source):
        if row_source is not self.source and (
            type(row_source) is not str or row_source not in self.sources
        ):
            raise ValueError(f"source: {validation.shown(row_source)} is not a source")
        return row_source

    @staticmethod
    def relay(relay):
        if relay is not None and relay != "on" and relay != "off":
            raise ValueError(f"relay_state: {validation.shown(relay)} is not on or off")
        return relay
