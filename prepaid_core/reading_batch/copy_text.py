"""M5: the text PostgreSQL's COPY reads: the judged rows of a batch, in chunks, and each
meter's latest state (staged when it cannot be read back from the store)."""

from __future__ import annotations

import csv
import io
import itertools
import operator

from .rows import StoredRow, relay_event

#: rows per chunk of COPY text
CHUNK_ROWS = 2000
#: the row of a meter with no new latest reading or baseline in a batch
NO_ROW = StoredRow(*(None,) * len(StoredRow._fields))
_LINE = operator.attrgetter("line")


def _writer(buffer):
    return csv.writer(buffer, delimiter="\t", lineterminator="\n")


def copy_chunks(validated, prepared):
    """The COPY text of the ``validated`` rows, a chunk at a time, each row added to
    ``prepared`` as it is sent; a row without its line is quoted by the csv module."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    while True:
        rows = list(itertools.islice(validated, CHUNK_ROWS))
        if not rows:
            break
        prepared.extend(rows)
        lines = list(map(_LINE, rows))
        if None in lines:  # flagged rows whose reason the csv module quotes
            for at, row in enumerate(rows):
                if lines[at] is None:
                    writer.writerow(row.copy_values())
                    lines[at] = buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield "".join(lines)
    yield ""


def csv_file(rows):
    """A file of the rows' COPY values, all quoted by the csv module."""
    buffer = io.StringIO()
    _writer(buffer).writerows(row.copy_values() for row in rows)
    buffer.seek(0)
    return buffer


def newest_rows(stored, meter_ids):
    """``(meter id, its newest row, its newest baseline row)`` of each meter of a batch
    (:data:`NO_ROW`: none); each meter's rows come in time order."""
    if len(meter_ids) == len(stored):  # one row per meter: it is the newest, or late
        return (
            (
                row.meter_id,
                NO_ROW if row.flags and "late" in row.flags else row,
                row if row.moves else NO_ROW,
            )
            for row in stored
        )
    latest, baseline = {}, {}
    for row in stored:
        if not row.flags or "late" not in row.flags:
            latest[row.meter_id] = row
        if row.moves:
            baseline[row.meter_id] = row
    return (
        (meter_id, latest.get(meter_id, NO_ROW), baseline.get(meter_id, NO_ROW))
        for meter_id in meter_ids
    )


def _text(value):
    return "" if value is None else str(value)


def _measure(row, at):
    return "" if at is None or row.measured is None else _text_repr(row.measured[at])


def _text_repr(value):
    return "" if value is None else repr(value)


def latest_chunks(newest, states, measures, changes):
    """The staging rows of the meters' latest states (the columns of the add-on's staging
    table, in order), 4,000 a chunk; the changes to log as events go to ``changes``,
    ``(meter id, relay, read time, was lost)``."""
    at_power = measures.index("power") if "power" in measures else None
    at_balance = measures.index("meter_balance") if "meter_balance" in measures else None
    lines = []
    for meter_id, row, base in newest:
        state = states[meter_id]
        relay = row.relay_state
        profile = state.profile
        if relay_event(profile, relay):
            changes.append((meter_id, relay, row.read_at, profile.lost))
        if base is row and row is not NO_ROW:  # the newest is the baseline: most
            baseline = "t\t\t"
        else:
            baseline = f"f\t{_text(base.total)}\t{base.read_at_text or ''}"
        lines.append(
            f"{state.latest_id}\t{row.read_at_text or ''}\t{_text(row.total)}"
            f"\t{_text(row.forward_total)}\t{_text(row.reverse_total)}"
            f"\t{_measure(row, at_power)}\t{_measure(row, at_balance)}"
            f"\t{relay or ''}\t{baseline}"
            f"\t{'t' if relay in profile.mismatched_relays else 'f'}\n"
        )
        if len(lines) == 4000:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)
