"""M5: the raw interval readings store.

Volume decides the design: 100,000 meters read every 30 minutes are 4.8 million rows a day.
So this table is narrow (no create/write log columns, no chatter) and is a PostgreSQL table
partitioned by month of ``read_at``, ``prepaid_meter_reading_store``; the model reads and
writes it through the plain view ``prepaid_meter_reading`` (``_auto = False``: :meth:`init`
creates both):

- old months are dropped whole when they pass the retention period, never deleted row by row;
- queries for a period only touch its partitions;
- no foreign-key trigger runs per inserted row (PostgreSQL checks none on a partitioned
  table here; the meter's ``ondelete`` rule refuses to delete a meter that has readings).

``(meter_id, read_at)`` is unique: a meter has one reading per instant.  The table is filled by
:meth:`PrepaidMeterReading._ingest`, which validates a whole batch in Python
(``prepaid_core.readings``), writes it with ``COPY`` and updates each meter's latest state in
one statement.  Each day is frozen into ``prepaid.meter.reading.daily``.

The ORM ``create`` runs the same validation for readings entered by hand.
"""

import csv
import io
import logging
import operator
import re
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg2
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, sql

from prepaid_core import readings as validation

from ..const import READING_SOURCES, RELAY_STATES

_logger = logging.getLogger(__name__)

#: measured values a reading may carry, besides the register totals
MEASURES = (
    "tou_sharp",
    "tou_peak",
    "tou_flat",
    "tou_valley",
    "voltage",
    "current",
    "power",
    "power_factor",
    "meter_balance",
)
MEASURE_SET = frozenset(MEASURES)
#: columns every COPY writes, in order; the measures present in a batch follow
BASE_COLUMNS = (
    "meter_id",
    "company_id",
    "read_at",
    "received_at",
    "source",
    "forward_total",
    "reverse_total",
    "total",
    "consumption",
    "relay_state",
    "status_word",
    "flags",
    "flag_reason",
    "chargeable",
)
#: a validated row is a tuple: the BASE_COLUMNS values (read and received times as text, as
#: COPY takes them), then the values of the measures present in the batch (one tuple,
#: ``R_MEASURED``), then what the rest of the batch needs: its COPY line (or None: let the csv
#: module quote it), the read time, whether it moves the baseline, its index, its measures
(
    R_METER,
    R_COMPANY,
    R_READ_AT_TEXT,
    R_RECEIVED,
    R_SOURCE,
    R_FORWARD,
    R_REVERSE,
    R_TOTAL,
    R_CONSUMPTION,
    R_RELAY,
    R_STATUS,
    R_FLAGS,
    R_REASON,
    R_CHARGEABLE,
) = range(len(BASE_COLUMNS))
R_MEASURED = len(BASE_COLUMNS)
R_LINE, R_READ_AT, R_MOVES, R_INDEX, R_MEASURES = -5, -4, -3, -2, -1
#: what a flag reason must not hold to be written into a COPY line unquoted
_UNSAFE = re.compile(r'[\t\n\r"\\]')
SOURCES = frozenset(code for code, _label in READING_SOURCES)
_INF = float("inf")
_TAB = "\t"
#: the partitioned table behind the model's view
STORE = "prepaid_meter_reading_store"
#: PostgreSQL advisory lock held while a transaction creates readings partitions
PARTITION_LOCK_KEY = 0x50524D52  # "PRMR"
#: COPY options: tab-separated CSV (quoting done by the csv module, in C); empty is NULL
_CSV = "WITH (FORMAT csv, DELIMITER E'\\t', NULL '')"
_SORT_KEY = operator.itemgetter(0, 1)


def _text(value):
    """A value as COPY text: NULL is empty."""
    return "" if value is None else str(value)


class _ChunkReader:
    """A file for ``COPY .. FROM STDIN`` that pulls its text from an iterator of chunks, so
    rows are produced while PostgreSQL already inserts the previous ones.  psycopg2 sends
    whatever ``read`` returns, whatever its size."""

    def __init__(self, chunks):
        self._chunks = chunks

    def read(self, size=-1):  # pylint: disable=method-required-super
        return next(self._chunks, "")

    readline = read

    def drain(self):
        for _chunk in self._chunks:
            pass


class PrepaidMeterReading(models.Model):
    _name = "prepaid.meter.reading"
    _description = "Meter Reading"
    _order = "read_at desc, id desc"
    _auto = False
    _log_access = False
    _rec_name = "read_at"

    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="restrict", index=False)
    company_id = fields.Many2one("res.company", required=True, index=True)
    read_at = fields.Datetime(required=True)
    received_at = fields.Datetime(default=fields.Datetime.now)
    source = fields.Selection(READING_SOURCES, default="manual", required=True)
    forward_total = fields.Float(digits=(16, 4), required=True)
    reverse_total = fields.Float(digits=(16, 4))
    total = fields.Float(
        digits=(16, 4),
        readonly=True,
        help="Primary-side total: (forward + reverse if bidirectional) × multiplier.",
    )
    consumption = fields.Float(
        digits=(16, 4), readonly=True, help="Consumption since the meter's previous baseline."
    )
    tou_sharp = fields.Float(digits=(16, 4), string="Sharp")
    tou_peak = fields.Float(digits=(16, 4), string="Peak")
    tou_flat = fields.Float(digits=(16, 4), string="Flat")
    tou_valley = fields.Float(digits=(16, 4), string="Valley")
    voltage = fields.Float(digits=(10, 2), string="Voltage (V)")
    current = fields.Float(digits=(12, 3), string="Current (A)")
    power = fields.Float(digits=(12, 4), string="Power (kW)")
    power_factor = fields.Float(digits=(6, 3))
    meter_balance = fields.Float(digits=(16, 4), help="Balance the meter itself reported.")
    relay_state = fields.Selection(RELAY_STATES)
    status_word = fields.Integer()
    flags = fields.Char(readonly=True, help="Validation flags, comma-separated.")
    flag_reason = fields.Char(readonly=True)
    chargeable = fields.Boolean(readonly=True, default=False)
    # related for grouping in screens; not stored, the store stays narrow
    site_id = fields.Many2one(related="meter_id.site_id")
    unit_id = fields.Many2one(related="meter_id.unit_id")
    utility = fields.Selection(related="meter_id.utility")

    # === STORAGE === #
    def init(self):
        cr = self.env.cr
        if sql.table_kind(cr, STORE) is None:
            cr.execute(
                """
                CREATE TABLE prepaid_meter_reading_store (
                    id serial NOT NULL,
                    meter_id int4 NOT NULL,
                    company_id int4 NOT NULL,
                    read_at timestamp NOT NULL,
                    received_at timestamp,
                    source varchar NOT NULL,
                    forward_total numeric NOT NULL,
                    reverse_total numeric,
                    total numeric,
                    consumption numeric,
                    tou_sharp numeric,
                    tou_peak numeric,
                    tou_flat numeric,
                    tou_valley numeric,
                    voltage numeric,
                    current numeric,
                    power numeric,
                    power_factor numeric,
                    meter_balance numeric,
                    relay_state varchar,
                    status_word int4,
                    flags varchar,
                    flag_reason varchar,
                    chargeable bool DEFAULT false,
                    PRIMARY KEY (id, read_at)
                ) PARTITION BY RANGE (read_at)
                """
            )
            cr.execute(
                "CREATE UNIQUE INDEX prepaid_meter_reading_store_meter_read_uniq "
                "ON prepaid_meter_reading_store (meter_id, read_at)"
            )
            cr.execute(
                "CREATE TABLE prepaid_meter_reading_store_default "
                "PARTITION OF prepaid_meter_reading_store DEFAULT"
            )
        # the ORM works on a plain (automatically updatable) view of the partitioned store
        cr.execute(
            "CREATE OR REPLACE VIEW prepaid_meter_reading AS "
            "SELECT * FROM prepaid_meter_reading_store"
        )
        today = fields.Date.today()
        self._ensure_partitions(
            [today - relativedelta(months=1), today, today + relativedelta(months=1)]
        )

    @api.model
    def _partition_name(self, month):
        return f"{STORE}_{month:%Y_%m}"

    @api.model
    def _partition_names(self):
        self.env.cr.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'prepaid_meter_reading_store'::regclass"
        )
        return {row[0] for row in self.env.cr.fetchall()}

    @api.model
    def _ensure_partitions(self, days):
        """Create the monthly partitions holding ``days`` (dates or datetimes), moving any row
        the default partition already holds for those months."""
        months = {date(day.year, day.month, 1) for day in days}
        cr = self.env.cr
        existing = self._partition_names()
        missing = sorted(month for month in months if self._partition_name(month) not in existing)
        if not missing:
            return
        # Two batches of a new month arrive together: one creates its partition, the other
        # waits for it (until the first commits), then finds it -- by name in the catalog as
        # it is now, which this transaction's snapshot (repeatable read) would not show.
        cr.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
        for month in missing:
            name = self._partition_name(month)
            cr.execute("SELECT to_regclass(%s)", [name])
            if cr.fetchone()[0]:
                continue
            start, end = month, month + relativedelta(months=1)
            table = SQL.identifier(name)
            cr.execute(
                SQL("CREATE TABLE %s (LIKE prepaid_meter_reading_store INCLUDING DEFAULTS)", table)
            )
            cr.execute(
                SQL(
                    """
                    WITH moved AS (
                        DELETE FROM prepaid_meter_reading_store_default
                         WHERE read_at >= %s AND read_at < %s RETURNING *)
                    INSERT INTO %s SELECT * FROM moved
                    """,
                    start,
                    end,
                    table,
                )
            )
            cr.execute(
                SQL(
                    "ALTER TABLE prepaid_meter_reading_store ATTACH PARTITION %s "
                    "FOR VALUES FROM (%s) TO (%s)",
                    table,
                    start,
                    end,
                )
            )
            _logger.info("Created readings partition %s", name)

    @api.model
    def _drop_partitions_before(self, day):
        """Retention: drop the monthly partitions that end on or before ``day``."""
        cr = self.env.cr
        cr.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'prepaid_meter_reading_store'::regclass"
        )
        dropped = []
        for (name,) in cr.fetchall():
            suffix = name.removeprefix(f"{STORE}_")
            try:
                month = datetime.strptime(suffix, "%Y_%m").date()
            except ValueError:
                continue  # the default partition
            if month + relativedelta(months=1) <= day:
                cr.execute(SQL("DROP TABLE %s", SQL.identifier(name)))
                dropped.append(name)
        cr.execute("DELETE FROM prepaid_meter_reading_store_default WHERE read_at < %s", [day])
        return dropped

    # === ORM PATH (manual entry, small batches) === #
    @api.model_create_multi
    def create(self, vals_list):
        prepared, rejections, meters = self._prepare_batch(vals_list)
        if rejections:
            raise UserError("\n".join(r["reason"] for r in rejections))
        self._ensure_partitions({row[R_READ_AT] for row in prepared})
        for row in prepared:
            vals_list[row[R_INDEX]].update(
                {
                    "meter_id": row[R_METER],
                    "company_id": row[R_COMPANY],
                    "read_at": row[R_READ_AT],
                    "source": row[R_SOURCE],
                    "forward_total": row[R_FORWARD],
                    "reverse_total": row[R_REVERSE],
                    "total": row[R_TOTAL],
                    "consumption": row[R_CONSUMPTION],
                    "relay_state": row[R_RELAY],
                    "status_word": row[R_STATUS],
                    "flags": row[R_FLAGS],
                    "flag_reason": row[R_REASON],
                    "chargeable": row[R_CHARGEABLE],
                    **row[R_MEASURES],
                }
            )
        records = super().create(vals_list)
        self._update_meters(prepared, meters[0])
        return records

    # === BULK PATH === #
    @api.model
    def _ingest(self, rows, source="push"):
        """Validate and store a batch of readings; return what happened to each.

        ``rows``: mappings with ``meter_id`` or ``address`` (and ``gateway_id`` when addresses
        repeat across gateways), ``read_at`` (datetime or ISO string, UTC), ``forward_total``,
        and optionally ``reverse_total``, ``relay_state`` ('on'/'off'), ``status_word``,
        ``source`` and the measures of :data:`MEASURES`.

        Returns ``{'stored': n, 'flagged': n, 'rejected': [{'index', 'reason', ...}]}``.
        Rejected rows (unknown meter, bad value, duplicate) are logged and kept in
        ``prepaid.meter.reading.rejection``: nothing is dropped silently.

        The rows are validated while PostgreSQL already copies the first ones in: Python and
        the database each keep one core busy.
        """
        rows = rows if isinstance(rows, list) else list(rows)
        started = time.perf_counter()
        meters = self._load_meter_states(rows)
        keyed, rejections, measures = self._parse_rows(rows, meters, source)
        self._ensure_partitions({item[1] for item in keyed})
        measures = tuple(name for name in MEASURES if name in measures)
        validated = self._validate_rows(keyed, meters, rejections, measures)
        stored = self._copy_rows(validated, rejections, measures)
        copied = time.perf_counter()
        self._update_meters(stored, meters[0])
        if rejections:
            rejections.sort(key=operator.itemgetter("index"))
            self.env["prepaid.meter.reading.rejection"]._record(rejections, rows, source)
        _logger.debug(
            "Ingested %s readings (%s rejected): %.2fs stored, %.2fs meters",
            len(stored),
            len(rejections),
            copied - started,
            time.perf_counter() - copied,
        )
        self._after_ingest({row[R_METER] for row in stored})
        return {
            "stored": len(stored),
            "flagged": sum(1 for row in stored if row[R_FLAGS]),
            "rejected": rejections,
        }

    @api.model
    def _after_ingest(self, meter_ids):
        """Hook for other add-ons, called once a batch is stored and the meters' latest state
        updated (``last_reading_at``, ``last_power``...): ``meter_ids`` read something new."""

    @api.model
    def _prepare_batch(self, rows, source="manual"):
        """Resolve meters, parse and validate; returns (prepared rows, rejections, meters)."""
        meters = self._load_meter_states(rows)
        keyed, rejections, _measures = self._parse_rows(rows, meters, source)
        prepared = list(self._validate_rows(keyed, meters, rejections, ()))
        return prepared, rejections, meters

    @api.model
    def _parse_rows(self, rows, meters, source):
        """First pass: resolve each row's meter and parse its values.

        Returns the parsed rows sorted by (meter, time), the rejections so far, and the
        measures present in the batch (only those columns are copied)."""
        by_id, by_address = meters
        rejections, keyed = [], []
        present = set()
        parse_time, to_quantity = self._parse_time, validation.to_quantity
        if source not in SOURCES:
            raise UserError(self.env._("Unknown reading source %r.", source))
        for index, row in enumerate(rows):
            meter = by_id.get(row.get("meter_id"))
            if meter is None and by_address:
                address = row.get("address")
                meter = by_address.get((row.get("gateway_id"), address)) or by_address.get(
                    (None, address)
                )
            if meter is None:
                rejections.append(self._rejection(index, row, self.env._("Unknown meter.")))
                continue
            if meter == "ambiguous":
                reason = self.env._(
                    "Address %s is used on several gateways: name the gateway.",
                    row.get("address"),
                )
                rejections.append(self._rejection(index, row, reason))
                continue
            try:
                read_at = row.get("read_at")
                if type(read_at) is not datetime or read_at.tzinfo or read_at.microsecond:
                    read_at = parse_time(read_at)
                forward = row.get("forward_total")
                if type(forward) is float and 0 <= forward < _INF:  # the common case
                    forward = Decimal(repr(forward))
                else:
                    forward = to_quantity(forward, "forward_total")
                reverse = row.get("reverse_total")
                if reverse is not None:
                    reverse = to_quantity(reverse, "reverse_total")
                measures = {}
                for name in MEASURE_SET.intersection(row):
                    value = row[name]
                    if value is not None and value is not False:
                        if type(value) is not float:
                            value = float(value)
                        if not -_INF < value < _INF:
                            raise ValueError(f"{name}: {row[name]!r} is not a finite number")
                        measures[name] = value
                        present.add(name)
                status = row.get("status_word")
                if status is not None and type(status) is not int:
                    status = int(status)
                row_source = row.get("source") or source
                if row_source is not source and row_source not in SOURCES:
                    raise ValueError(f"source: {row_source!r} is not a reading source")
            except (validation.ReadingError, ValueError, TypeError) as exc:
                rejections.append(self._rejection(index, row, str(exc), meter[0]))
                continue
            relay = row.get("relay_state") or None
            if relay is not None and relay != "on" and relay != "off":
                reason = f"relay_state: {relay!r} is not 'on' or 'off'"
                rejections.append(self._rejection(index, row, reason, meter[0]))
                continue
            keyed.append(
                (meter[0], read_at, index, forward, reverse, measures, relay, status, row_source)
            )
        keyed.sort(key=_SORT_KEY)
        return keyed, rejections, present

    @api.model
    def _validate_rows(self, keyed, meters, rejections, measures):
        """Second pass, lazily: judge each reading against its meter's baseline (rows are in
        time order per meter) and yield the rows to store (tuples, see ``R_*``), with the
        values of ``measures`` in ``R_MEASURED``.

        Rows are formatted for COPY here, in one f-string each; a row whose flag reason would
        need quoting is left to the csv module."""
        by_id = meters[0]
        received = str(fields.Datetime.now())
        validate, effective_total = validation.validate, validation.effective_total
        normal = validation.normal_consumption
        previous = None
        duplicate = self.env._("Duplicate reading.")
        texts = {}
        measure_format = "\t%r" * len(measures)
        for meter_id, read_at, index, forward, reverse, values, relay, status, source in keyed:
            if previous == (meter_id, read_at):
                rejections.append(self._rejection(index, {}, duplicate, meter_id))
                continue
            previous = (meter_id, read_at)
            meter = by_id[meter_id]
            if meter[9]:  # multiplier 1, forward only: the total is the register
                total = forward
            else:
                total = effective_total(forward, reverse, meter[3], meter[2])
            consumption = normal(meter[5], meter[6], total, read_at, meter[4], meter[2])
            if consumption is not None:  # most readings: nothing to flag
                flags = reason = None
                moves = chargeable = True
            else:
                verdict = validate(meter[5], meter[6], total, read_at, meter[4], meter[2])
                consumption, moves, chargeable = (
                    verdict.consumption,
                    verdict.moves_baseline,
                    verdict.chargeable,
                )
                flags = ",".join(verdict.flags) or None
                reason = verdict.reason or None
            if moves:
                meter[5], meter[6] = total, read_at
            text = texts.get(read_at)
            if text is None:
                text = texts[read_at] = str(read_at)
            measured = tuple(map(values.get, measures))
            if reason is not None and _UNSAFE.search(reason):
                line = None
            else:
                if None in measured:
                    tail = "".join([_TAB if v is None else _TAB + repr(v) for v in measured])
                else:
                    tail = measure_format % measured
                register = str(forward)
                line = (
                    f"{meter_id}\t{meter[1]}\t{text}\t{received}\t{source}\t{register}\t"
                    f"{'' if reverse is None else reverse}\t"
                    f"{register if total is forward else total}\t{consumption!s}"
                    f"\t{relay or ''}\t{'' if status is None else status}"
                    f"\t{flags or ''}\t{reason or ''}\t{'t' if chargeable else 'f'}{tail}\n"
                )
            yield (
                meter_id,
                meter[1],
                text,
                received,
                source,
                forward,
                reverse,
                total,
                consumption,
                relay,
                status,
                flags,
                reason,
                chargeable,
                measured,
                line,
                read_at,
                moves,
                index,
                values,
            )

    @api.model
    def _load_meter_states(self, rows):
        """The meters a batch names, as (by_id, by_address) maps of mutable state lists:
        ``[id, company, multiplier, bidirectional, limits, baseline total, baseline time,
        latest state id, relay state it should report (None: no relay to judge), whether the
        total is the forward register as read (multiplier 1, forward only)]``."""
        ids, addresses = set(), set()
        for row in rows:
            meter_id = row.get("meter_id")
            if meter_id:
                ids.add(meter_id)
            elif row.get("address"):
                addresses.add(row["address"])
        self.env["prepaid.meter"].flush_model()
        self.env["prepaid.meter.latest"].flush_model()
        companies = self.env.companies.ids if not self.env.su else self._all_company_ids()
        columns = SQL(
            """
            SELECT m.id, m.address, m.gateway_id, m.company_id, m.multiplier::text,
                   l.baseline_total::text, l.baseline_at, m.model_id, mm.bidirectional,
                   m.latest_id,
                   CASE WHEN m.state = 'in_service' AND mm.has_relay
                        THEN m.desired_relay_state END
            """
        )
        joins = SQL(
            """
            JOIN prepaid_meter_model mm ON mm.id = m.model_id
            JOIN prepaid_meter_latest l ON l.id = m.latest_id
            """
        )
        where = SQL("m.state != 'removed' AND m.company_id = ANY(%s)", companies)
        fetched = []
        if ids:
            wanted = "{" + ",".join(map(str, ids)) + "}"
            if len(ids) > 20000:
                # most of the fleet: one hash join on the unnested ids
                meters = SQL("prepaid_meter m JOIN unnest(%s::int[]) w(id) ON w.id = m.id", wanted)
            else:
                # a part of it: one primary-key lookup per id (OFFSET 0 keeps the planner
                # from turning it back into a scan of every meter)
                meters = SQL(
                    "unnest(%s::int[]) w(id) CROSS JOIN LATERAL "
                    "(SELECT * FROM prepaid_meter WHERE id = w.id OFFSET 0) m",
                    wanted,
                )
            self.env.cr.execute(SQL("%s FROM %s %s WHERE %s", columns, meters, joins, where))
            fetched += self.env.cr.fetchall()
        if addresses:
            self.env.cr.execute(
                SQL(
                    "%s FROM prepaid_meter m %s WHERE %s AND m.address = ANY(%s)",
                    columns,
                    joins,
                    where,
                    list(addresses),
                )
            )
            fetched += self.env.cr.fetchall()
        limits, multipliers = {}, {}
        models = self.env["prepaid.meter.model"]
        by_id, by_address = {}, {}
        for (
            mid,
            address,
            gateway_id,
            company_id,
            mult,
            b_total,
            b_at,
            model_id,
            bidir,
            latest_id,
            relay_target,
        ) in fetched:
            if mid in by_id and not addresses:
                continue
            if model_id not in limits:
                limits[model_id] = models.browse(model_id)._limits()
            multiplier = multipliers.get(mult)
            if multiplier is None:
                text = (mult or "1").rstrip("0").rstrip(".") if "." in (mult or "") else mult
                multiplier = multipliers[mult] = Decimal(text or "1")
            state = by_id.get(mid) or [
                mid,
                company_id,
                multiplier,
                bidir,
                limits[model_id],
                Decimal(b_total) if b_at else None,
                b_at,
                latest_id,
                relay_target,
                multiplier == 1 and not bidir,
            ]
            by_id[mid] = state
            if address in addresses:
                for key in ((gateway_id, address), (None, address)):
                    other = by_address.get(key)
                    by_address[key] = "ambiguous" if other and other is not state else state
        return by_id, by_address

    @api.model
    def _all_company_ids(self):
        self.env.cr.execute("SELECT id FROM res_company")
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _parse_time(self, value):
        if type(value) is datetime and value.tzinfo is None and not value.microsecond:
            return value
        if isinstance(value, datetime):
            if value.tzinfo:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.replace(microsecond=0)
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"read_at: {value!r} is not an ISO 8601 date and time") from exc
            if parsed.tzinfo:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            return parsed.replace(microsecond=0)
        raise ValueError(f"read_at: {value!r} is not a date and time")

    @api.model
    def _rejection(self, index, row, reason, meter_id=None):
        _logger.warning("Reading rejected (%s): %s", row.get("address") or meter_id, reason)
        return {"index": index, "reason": reason, "meter_id": meter_id or row.get("meter_id")}

    @api.model
    def _copy_rows(self, validated, rejections, measures=()):
        """Write the validated rows with COPY as they come; on a duplicate already stored,
        fall back to INSERT .. ON CONFLICT and report the duplicates.  Returns the rows
        actually stored.  ``measures``: the measure columns of the batch, in ``R_MEASURED``."""
        columns = BASE_COLUMNS + tuple(measures)

        def getter(row):
            return (*row[:R_MEASURED], *row[R_MEASURED])

        prepared = []

        def chunks():
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
            lines = []
            for row in validated:
                prepared.append(row)
                line = row[R_LINE]
                if line is None:  # a flagged row: quoted by the csv module
                    writer.writerow(getter(row))
                    line = buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                lines.append(line)
                if len(lines) == 2000:
                    yield "".join(lines)
                    lines.clear()
            yield "".join(lines)

        cr = self.env.cr
        column_sql = ", ".join(columns)
        stream = _ChunkReader(chunks())
        try:
            with cr.savepoint(flush=False):
                cr._obj.copy_expert(f"COPY {STORE} ({column_sql}) FROM STDIN {_CSV}", stream)
            return prepared
        except psycopg2.errors.UniqueViolation:
            _logger.info("Batch holds readings already stored: inserting one by one")
        stream.drain()  # validate the rest: every row is judged exactly once
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t", lineterminator="\n").writerows(map(getter, prepared))
        buffer.seek(0)
        cr.execute(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_reading_staging "
            "(LIKE prepaid_meter_reading_store INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        cr.execute("TRUNCATE prepaid_meter_reading_staging")
        cr._obj.copy_expert(
            f"COPY prepaid_meter_reading_staging ({column_sql}) FROM STDIN {_CSV}", buffer
        )
        cr.execute("ANALYZE prepaid_meter_reading_staging")
        column_list = SQL(", ").join(SQL.identifier(col) for col in columns)
        cr.execute(
            SQL(
                """
                INSERT INTO prepaid_meter_reading_store (%s)
                SELECT %s FROM prepaid_meter_reading_staging
                    ON CONFLICT (meter_id, read_at) DO NOTHING
                RETURNING meter_id, read_at
                """,
                column_list,
                column_list,
            )
        )
        inserted = set(cr.fetchall())
        stored = []
        duplicate = self.env._("Duplicate reading.")
        for row in prepared:
            if (row[R_METER], row[R_READ_AT]) in inserted:
                stored.append(row)
            else:
                rejections.append(self._rejection(row[R_INDEX], {}, duplicate, row[R_METER]))
        return stored

    @api.model
    def _update_meters(self, stored, meters):
        """Each meter's latest state (``prepaid.meter.latest``) from the rows just stored, in
        one UPDATE of its narrow table.  ``meters``: the states of
        :meth:`_load_meter_states`, by meter id.

        Meters whose relay or connection state changes go through the ORM instead, so the
        change is logged as an event."""
        if not stored:
            return
        latest, baseline = {}, {}
        for row in stored:  # rows are sorted by (meter, time)
            flags = row[R_FLAGS]
            if not flags or "late" not in flags:
                latest[row[R_METER]] = row
            if row[R_MOVES]:
                baseline[row[R_METER]] = row
        now = fields.Datetime.now()
        meter_ids = list({row[R_METER] for row in stored})
        cr = self.env.cr
        nothing = (None,) * (len(BASE_COLUMNS) + 1) + ({},)
        lines = []
        for meter_id in meter_ids:
            state = meters[meter_id]
            row = latest.get(meter_id, nothing)
            base = baseline.get(meter_id, nothing)
            measured = row[R_MEASURES]
            relay = row[R_RELAY]
            # the relay is judged only when it is reported for the first time
            mismatch = relay is not None and state[8] is not None and relay != state[8]
            lines.append(
                f"{meter_id}\t{state[7]}\t{_text(row[R_READ_AT_TEXT])}\t{_text(row[R_TOTAL])}"
                f"\t{_text(row[R_FORWARD])}\t{_text(row[R_REVERSE])}"
                f"\t{_text(measured.get('power'))}\t{_text(measured.get('meter_balance'))}"
                f"\t{relay or ''}\t{_text(base[R_TOTAL])}\t{_text(base[R_READ_AT_TEXT])}"
                f"\t{'t' if mismatch else 'f'}\n"
            )
        buffer = io.StringIO("".join(lines))
        buffer.seek(0)
        self.env["prepaid.meter.latest"].flush_model()
        cr.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_latest_staging (
                meter_id int, latest_id int, read_at timestamp, total numeric,
                forward_total numeric, reverse_total numeric, power numeric,
                meter_balance numeric, relay_state varchar, baseline_total numeric,
                baseline_at timestamp, mismatch bool
            ) ON COMMIT DROP
            """
        )
        cr.execute("TRUNCATE prepaid_meter_latest_staging")
        cr._obj.copy_expert(f"COPY prepaid_meter_latest_staging FROM STDIN {_CSV}", buffer)
        # A temp table has no statistics: small batches get them (cheap), large ones are joined
        # by hash, never by a nested loop over the staging rows.
        large = len(meter_ids) > 5000
        cr.execute(
            "SET LOCAL enable_nestloop = off" if large else "ANALYZE prepaid_meter_latest_staging"
        )
        # the few meters whose relay or connection really changes go through the ORM below
        cr.execute(
            """
            SELECT s.meter_id, s.relay_state, s.read_at, l.connection_state = 'lost'
              FROM prepaid_meter_latest_staging s
              -- one primary-key lookup per staged meter, whatever the statistics say
              CROSS JOIN LATERAL (
                  SELECT connection_state, actual_relay_state
                    FROM prepaid_meter_latest WHERE id = s.latest_id) l
             WHERE l.connection_state = 'lost'
                OR (s.relay_state IS NOT NULL AND l.actual_relay_state != 'unknown'
                    AND l.actual_relay_state != s.relay_state)
            """
        )
        changes = cr.fetchall()
        cr.execute(
            """
            UPDATE prepaid_meter_latest l
               SET last_reading_at = COALESCE(s.read_at, l.last_reading_at),
                   last_total = COALESCE(s.total, l.last_total),
                   last_forward_total = COALESCE(s.forward_total, l.last_forward_total),
                   last_reverse_total = COALESCE(s.reverse_total, l.last_reverse_total),
                   last_power = COALESCE(s.power, l.last_power),
                   last_meter_balance = COALESCE(s.meter_balance, l.last_meter_balance),
                   baseline_total = COALESCE(s.baseline_total, l.baseline_total),
                   baseline_at = COALESCE(s.baseline_at, l.baseline_at),
                   last_contact_at = %(now)s,
                   connection_state = CASE WHEN l.connection_state = 'never'
                                           THEN 'online' ELSE l.connection_state END,
                   -- first report of the relay: known from now on, nothing changed
                   actual_relay_state = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.relay_state ELSE l.actual_relay_state END,
                   actual_relay_at = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.read_at ELSE l.actual_relay_at END,
                   relay_mismatch = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.mismatch ELSE l.relay_mismatch END
              FROM prepaid_meter_latest_staging s
             WHERE l.id = s.latest_id
            """,
            {"now": now},
        )
        if large:
            cr.execute("SET LOCAL enable_nestloop = on")
        fnames = [
            "last_reading_at",
            "last_total",
            "last_forward_total",
            "last_reverse_total",
            "last_power",
            "last_meter_balance",
            "baseline_total",
            "baseline_at",
            "last_contact_at",
            "connection_state",
            "actual_relay_state",
            "actual_relay_at",
            "relay_mismatch",
        ]
        self.env["prepaid.meter.latest"].browse(
            meters[meter_id][7] for meter_id in meter_ids
        ).invalidate_recordset(fnames)
        meter_records = self.env["prepaid.meter"].browse(meter_ids)
        meter_records.invalidate_recordset(fnames)
        for meter_id, relay, read_at, was_lost in changes:
            meter = meter_records.browse(meter_id)
            if was_lost:
                meter.connection_state = "online"
                meter._log_event("connection_restored")
            if relay and relay != meter.actual_relay_state:
                meter._record_actual_relay(relay, read_at)

    # === ACTIONS === #
    def action_accept_baseline(self):
        """A manager checked a flagged reading and accepts its total as the new baseline.
        Its own consumption stays uncharged; later readings are judged against it."""
        self.ensure_one()
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise UserError(self.env._("Only a prepaid manager may move a meter's baseline."))
        meter = self.meter_id
        meter.sudo().write({"baseline_total": self.total, "baseline_at": self.read_at})
        meter._log_event(
            "baseline",
            reason=self.env._(
                "Reading of %(at)s (%(total)s) accepted as baseline; it was flagged: %(why)s",
                at=self.read_at,
                total=self.total,
                why=self.flag_reason,
            ),
        )
        return True
