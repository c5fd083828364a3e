"""M5: the raw interval readings store.

A PostgreSQL table partitioned by ``read_at`` (``prepaid_meter_reading_store``, a month, a
week or a day a partition: ``_partition_period``), which the model reads and writes through
the plain view ``prepaid_meter_reading`` (``_auto = False``).  Batches come in through
:meth:`PrepaidMeterReading._ingest`: load the meters, judge the rows
(``prepaid_core.reading_batch``), COPY them, update each meter's latest state.  The ORM
``create`` (readings entered by hand) judges them alike.
Design and measurements: docs/readings_store.md.
"""

import logging
import operator
import re
import time
from datetime import date, datetime, timedelta
from typing import NamedTuple

import psycopg2
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain
from odoo.tools import SQL, sql

from prepaid_core import readings as validation
from prepaid_core.reading_batch import copy_text, parse, pipeline
from prepaid_core.reading_batch.judge import BatchJudge, Followup, Messages, MeterLookup
from prepaid_core.reading_batch.rows import (
    BASE_COLUMNS,
    MEASURE_LIMITS,
    MEASURES,
    MeterRecord,
    StateBuilder,
    meter_record,
)

from ..const import READING_SOURCES, RELAY_STATES

__all__ = ["LARGE_BATCH", "MEASURES", "MEASURE_LIMITS", "STORE"]

_logger = logging.getLogger(__name__)

SOURCES = frozenset(code for code, _label in READING_SOURCES)
#: a batch of this many rows is parsed while its meters are looked up (a helper thread),
#: and one of one row per meter updates the latest states from the store
LARGE_BATCH = 5000
#: chunks of COPY text made ahead of PostgreSQL by a helper thread
COPY_AHEAD = 8
#: a page of readings newest first, with no time bound, is first looked for among the
#: readings of these last hours (see ``_search``) ...
NEWEST_FIRST_WINDOWS = (1, 24, 24 * 8, 24 * 64)
#: ... when PostgreSQL estimates reading it without that bound to cost more than this
NEWEST_FIRST_COST = 20_000
_NEWEST_FIRST = re.compile(r"\s*read_at\s+desc\b", re.IGNORECASE)
#: from this many meters, a batch's meters are looked up by merge joins over the whole fleet
FLEET_LOOKUP = 20000
#: fewer meters are read as a range of the meters' ingest index when the range holds at most
#: this many ids per meter looked up; else one by one
DENSE_SPAN = 4
#: the partitioned table behind the model's view
STORE = "prepaid_meter_reading_store"
#: the periods the store's partitions can hold (see ``_partition_period``)
PARTITION_PERIODS = ("month", "week", "day")
#: a range partition's bounds as PostgreSQL prints them (``pg_get_expr``)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
#: PostgreSQL advisory lock held while a transaction creates readings partitions
PARTITION_LOCK_KEY = 0x50524D52  # "PRMR"
#: COPY options: tab-separated CSV (quoting done by the csv module); empty is NULL
_CSV = "WITH (FORMAT csv, DELIMITER E'\\t', NULL '')"
_COMPANY_AND_READ_AT = operator.attrgetter("company_id", "read_at")
#: what the batch's look-up reads of a meter (:class:`MeterRecord`, named alike); what most
#: meters share comes as one text, decoded once per distinct value (``StateBuilder``)
_METER_COLUMNS = SQL(
    """
    SELECT m.id AS id, m.latest_id AS latest_id, l.baseline_total::text AS baseline_total,
           l.baseline_at::text AS baseline_at,
           concat_ws('|', m.company_id, COALESCE(m.multiplier::text, ''),
                     COALESCE(m.ct_ratio::text, ''), COALESCE(m.pt_ratio::text, ''), m.model_id,
                     m.state, COALESCE(m.desired_relay_state, ''), l.connection_state,
                     l.actual_relay_state) AS shared
    """
)
_METER_JOINS = SQL("JOIN prepaid_meter_latest l ON l.meter_id = m.id")
#: SET clauses shared by both latest-state UPDATEs (``l`` the latest state, ``s`` the new
#: reading): a meter heard from is online, and the first relay state it reports is taken as
#: known (nothing changed, no event), with the mismatch the batch judged (``s.mismatch``)
_LATEST_CONTACT_AND_RELAY = """                   last_contact_at = %(now)s,
                   connection_state = CASE WHEN l.connection_state = 'never'
                                           THEN 'online' ELSE l.connection_state END,
                   actual_relay_state = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.relay_state ELSE l.actual_relay_state END,
                   actual_relay_at = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.read_at ELSE l.actual_relay_at END,
                   relay_mismatch = CASE
                       WHEN l.actual_relay_state = 'unknown' AND s.relay_state IS NOT NULL
                       THEN s.mismatch ELSE l.relay_mismatch END"""
#: the latest-state fields the batch's UPDATE writes (invalidated after it)
_LATEST_FIELDS = [
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


class _NotAllFound(Exception):
    """The store did not give back each row of a batch (see ``_update_latest_from_store``)."""


class _Batch(NamedTuple):
    """A batch once its meters are loaded and its rows parsed and resolved."""

    measures: tuple  # the measures some row names (the columns the batch writes)
    meters: MeterLookup
    parsed: list  # the parsed rows, as parsed
    keyed: list  # the rows to judge, in order (``parsed`` itself: one row per meter)
    rejections: list


class _Partition(NamedTuple):
    """A partition of the store and the days ``[start, end)`` it holds."""

    name: str
    start: date
    end: date


def _range_name(start, end):
    """A partition's name: its month when it holds one whole month, else its first day."""
    if start.day == 1 and end == start + relativedelta(months=1):
        return f"{STORE}_{start:%Y_%m}"
    return f"{STORE}_{start:%Y_%m_%d}"


def _holding(partitions, day):
    """The partition holding ``day``, or None."""
    return next((p for p in partitions if p.start <= day < p.end), None)


def _clipped(period, partitions, day):
    """The days of ``period`` around ``day`` that no partition holds yet (the period is cut
    short where partitions of another period begin or end)."""
    start, end = period
    for partition in partitions:
        if start < partition.end <= day:
            start = partition.end
        if day < partition.start < end:
            end = partition.start
    return start, end


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
    forward_total = fields.Float(
        digits=(16, 4), required=True, help="Forward register as the meter shows it."
    )
    reverse_total = fields.Float(digits=(16, 4), help="Reverse register as the meter shows it.")
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
    # instantaneous measures are stored on the primary side: what the meter reports times
    # the meter's transformer ratios (prepaid_core.readings.PRIMARY_RATIOS)
    voltage = fields.Float(
        digits=(10, 2), string="Voltage (V)", help="Primary side: the meter's voltage × PT ratio."
    )
    current = fields.Float(
        digits=(12, 3), string="Current (A)", help="Primary side: the meter's current × CT ratio."
    )
    power = fields.Float(
        digits=(12, 4),
        string="Power (kW)",
        help="Primary side: the meter's power × CT ratio × PT ratio.",
    )
    power_factor = fields.Float(digits=(6, 3))
    meter_balance = fields.Float(digits=(16, 4), help="Balance the meter itself reported.")
    relay_state = fields.Selection(RELAY_STATES)
    status_word = fields.Integer()
    flags = fields.Char(readonly=True, help="Validation flags, comma-separated.")
    flag_reason = fields.Char(readonly=True)
    chargeable = fields.Boolean(readonly=True, default=False)
    reviewed = fields.Boolean(
        readonly=True,
        copy=False,
        help="A manager checked this flagged reading: it has left the review queue.",
    )
    # related for grouping in screens; not stored, the store stays narrow
    site_id = fields.Many2one(related="meter_id.site_id")
    unit_id = fields.Many2one(related="meter_id.unit_id")
    utility = fields.Selection(related="meter_id.utility")

    # === STORAGE === #
    def init(self):
        self._create_store()
        self._index_store()
        # the ORM works on a plain (automatically updatable) view of the partitioned store
        self.env.cr.execute(
            "CREATE OR REPLACE VIEW prepaid_meter_reading AS "
            "SELECT * FROM prepaid_meter_reading_store"
        )
        today = fields.Date.today()
        self._ensure_partitions(
            [today - relativedelta(months=1), today, today + relativedelta(months=1)]
        )

    def _create_store(self):
        """The partitioned table, its key ``(meter_id, read_at)`` and default partition."""
        cr = self.env.cr
        if sql.table_kind(cr, STORE) is not None:
            return
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
                chargeable bool DEFAULT false
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

    def _index_store(self):
        """The store's indexes, at little cost per row copied (docs/readings_store.md): ids
        and read times by BRIN, the review queue by a partial index; no B-tree key."""
        cr = self.env.cr
        cr.execute(
            "ALTER TABLE prepaid_meter_reading_store "
            "DROP CONSTRAINT IF EXISTS prepaid_meter_reading_store_pkey"
        )
        cr.execute(
            "CREATE INDEX IF NOT EXISTS prepaid_meter_reading_store_id_brin "
            "ON prepaid_meter_reading_store USING brin (id) "
            "WITH (pages_per_range = 32, autosummarize = on)"
        )
        # set by a manager on a flagged reading checked (added to existing stores)
        cr.execute("ALTER TABLE prepaid_meter_reading_store ADD COLUMN IF NOT EXISTS reviewed bool")
        cr.execute(  # (the queue's index under its first conditions)
            "DROP INDEX IF EXISTS prepaid_meter_reading_store_review_idx, "
            "prepaid_meter_reading_store_to_review_idx"
        )
        # the "To Review" filter's SQL (flags not in (False, 'baseline'), not chargeable,
        # not reviewed), written for those few rows only
        cr.execute(
            "CREATE INDEX IF NOT EXISTS prepaid_meter_reading_store_review_queue_idx "
            "ON prepaid_meter_reading_store (read_at) WHERE flags NOT IN ('baseline', '') "
            "AND chargeable IS NOT TRUE AND reviewed IS NOT TRUE"
        )
        cr.execute(
            "CREATE INDEX IF NOT EXISTS prepaid_meter_reading_store_read_at_brin "
            "ON prepaid_meter_reading_store USING brin (read_at) "
            "WITH (pages_per_range = 32, autosummarize = on)"
        )

    @api.model
    def _partition_period(self):
        """How the store is cut (:data:`PARTITION_PERIODS`; system parameter
        ``prepaid_meter.reading_partition_period``, a month by default): a large fleet's
        month no longer keeps its unique index in memory, a week or a day does."""
        period = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_meter.reading_partition_period", "month")
        )
        return period if period in PARTITION_PERIODS else "month"

    @api.model
    def _period_range(self, day):
        """``(first day, day after the last)`` of the partition period holding ``day``."""
        day = day.date() if isinstance(day, datetime) else day
        period = self._partition_period()
        if period == "day":
            return day, day + timedelta(days=1)
        if period == "week":
            start = day - timedelta(days=day.weekday())
            return start, start + timedelta(days=7)
        start = day.replace(day=1)
        return start, start + relativedelta(months=1)

    @api.model
    def _partition_name(self, day):
        """The name of the partition of the period holding ``day`` (a date or datetime)."""
        return _range_name(*self._period_range(day))

    @api.model
    def _partition_names(self):
        query = SQL(
            "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'prepaid_meter_reading_store'::regclass"
        )
        return {row["name"] for row in self.env.execute_query_dict(query)}

    @api.model
    def _partitions(self):
        """The store's partitions with their ranges of ``read_at`` (the default one aside),
        read from the catalog: whatever period each was made for."""
        query = SQL(
            "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'prepaid_meter_reading_store'::regclass"
        )
        partitions = []
        for row in self.env.execute_query_dict(query):
            found = _BOUND.search(row["bound"])
            if found:
                start, end = (datetime.fromisoformat(text).date() for text in found.groups())
                partitions.append(_Partition(row["name"], start, end))
        return partitions

    @api.model
    def _ensure_partitions(self, days):
        """Create the partitions holding ``days`` (dates or datetimes) that none holds yet,
        one per period (:meth:`_period_range`, cut short where a partition of another
        period already holds part of it), moving any row the default partition holds for
        them.  Returns the table rows of those days go to: their partition when one holds
        them all (COPY into it skips routing each row, a fifth of the COPY's time), else
        the partitioned store."""
        days = {day.date() if isinstance(day, datetime) else day for day in days}
        partitions = self._partitions()
        missing = sorted(day for day in days if _holding(partitions, day) is None)
        if missing:
            # Two batches of a new period arrive together: one creates its partition, the
            # other waits for it (until the first commits), then finds it -- by name in the
            # catalog as it is now, which this transaction's snapshot (repeatable read)
            # would not show.
            self.env.cr.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK_KEY])
        for day in missing:
            if _holding(partitions, day) is None:
                start, end = _clipped(self._period_range(day), partitions, day)
                partitions.append(_Partition(_range_name(start, end), start, end))
                self._create_partition(start, end)
        held = {_holding(partitions, day) for day in days}
        return held.pop().name if len(held) == 1 and None not in held else STORE

    @api.model
    def _create_partition(self, start, end):
        """The partition of the days ``[start, end)`` (unless another transaction made it
        meanwhile), with the rows the default partition holds for it."""
        cr = self.env.cr
        name = _range_name(start, end)
        [catalog] = self.env.execute_query_dict(SQL("SELECT to_regclass(%s) AS found", name))
        if catalog["found"]:
            return
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
        """Retention: drop the partitions (whatever their period) that end on or before
        ``day``, whole: no row is deleted one by one, nothing is left to vacuum."""
        cr = self.env.cr
        dropped = []
        for partition in sorted(self._partitions(), key=operator.attrgetter("start")):
            if partition.end <= day:
                cr.execute(SQL("DROP TABLE %s", SQL.identifier(partition.name)))
                dropped.append(partition.name)
        cr.execute("DELETE FROM prepaid_meter_reading_store_default WHERE read_at < %s", [day])
        return dropped

    # === SEARCH === #
    @api.model
    def _search(self, domain, offset=0, limit=None, order=None, **kwargs):
        """A page of readings newest first that PostgreSQL would find by reading and
        sorting every reading of every month (the Readings list without its filter, a date
        or gateway filter: 4.8 million readings a day for 100,000 meters) is looked for
        among the last readings instead, through the BRIN index of ``read_at`` (see
        :meth:`init`): the domain is bounded below by the first of
        :data:`NEWEST_FIRST_WINDOWS` that holds the whole page.  Every reading newer than
        the bound is in it, so the page is the same.  A page that an index reads in order
        (a meter's readings, the readings to review), or any page PostgreSQL estimates
        cheap (:data:`NEWEST_FIRST_COST`), is left alone."""
        query = super()._search(domain, offset, limit, order, **kwargs)
        if not (limit and order and _NEWEST_FIRST.match(order)) or query.is_empty():
            return query
        domain = Domain(domain)
        if any(leaf.field_expr == "meter_id" for leaf in domain.iter_conditions()):
            return query  # (the store's index of (meter, time))
        self.env.cr.execute(SQL("EXPLAIN (FORMAT JSON) %s", query.select()))
        if self.env.cr.fetchone()[0][0]["Plan"]["Total Cost"] <= NEWEST_FIRST_COST:
            return query
        since = self._newest_first_since(domain, (offset or 0) + int(limit), kwargs)
        if since is None:
            return query
        return super()._search(
            domain & Domain("read_at", ">=", since), offset, limit, order, **kwargs
        )

    @api.model
    def _newest_first_since(self, domain, wanted, kwargs):
        """The lower bound of ``read_at`` of the first window (:data:`NEWEST_FIRST_WINDOWS`
        back from now) holding ``wanted`` readings of ``domain`` (each window's counted up
        to ``wanted`` only), or None: none does, every reading is read."""
        now = fields.Datetime.now()
        for hours in NEWEST_FIRST_WINDOWS:
            since = now - timedelta(hours=hours)
            window = Domain(domain) & Domain("read_at", ">=", since)
            # (no order: not looked for in windows again)
            if len(self._search(window, limit=wanted, **kwargs)) >= wanted:
                return since
        return None

    # === ORM PATH (manual entry, small batches) === #
    @api.model_create_multi
    def create(self, vals_list):
        prepared, rejections, meters, measures = self._prepare_batch(vals_list)
        if rejections:
            raise UserError("\n".join(r["reason"] for r in rejections))
        self._ensure_partitions({row.read_at for row in prepared})
        for row in prepared:
            vals_list[row.index].update(self._create_values(row, measures))
        records = super().create(vals_list)
        self._update_meters(prepared, meters, measures)
        self._store_done(prepared)
        return records

    @api.model
    def _create_values(self, row, measures):
        """The field values of a judged row (:class:`StoredRow`)."""
        return {
            "meter_id": row.meter_id,
            "company_id": row.company_id,
            "read_at": row.read_at,
            "source": row.source,
            "forward_total": row.forward_total,
            "reverse_total": row.reverse_total,
            "total": row.total,
            "consumption": row.consumption,
            "relay_state": row.relay_state,
            "status_word": row.status_word,
            "flags": row.flags,
            "flag_reason": row.flag_reason,
            "chargeable": row.chargeable,
            **dict(zip(measures, row.measured, strict=True)),
        }

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
        """
        rows = rows if isinstance(rows, list) else list(rows)
        if len(rows) < LARGE_BATCH:
            return self._ingest_rows(rows, source)
        with pipeline.large_batch_mode():
            return self._ingest_rows(rows, source)

    @api.model
    def _ingest_rows(self, rows, source):
        """:meth:`_ingest`: load the meters (parsing meanwhile), judge, store."""
        started = time.perf_counter()
        batch = self._load_batch(rows, source)
        measures, rejections = batch.measures, batch.rejections
        table = self._ensure_partitions({row.read_at for row in batch.keyed})
        after = self._reading_id_mark() if len(rows) >= LARGE_BATCH else None
        # the parsed rows themselves: one row per meter (see _resolve_rows)
        followup = Followup() if after is not None and batch.keyed is batch.parsed else None
        validated = self._validate_rows(batch.keyed, batch.meters, rejections, measures, followup)
        stored = self._copy_rows(validated, rejections, measures, table)
        copied = time.perf_counter()
        self._update_meters(stored, batch.meters, measures, after, table, followup)
        self._store_done(stored, rejections, rows, source)
        _logger.debug(
            "Ingested %s readings (%s rejected): %.2fs stored, %.2fs meters",
            len(stored),
            len(rejections),
            copied - started,
            time.perf_counter() - copied,
        )
        return {
            "stored": len(stored),
            "flagged": sum(1 for row in stored if row.flags),
            "rejected": rejections,
        }

    @api.model
    def _store_done(self, stored, rejections=(), rows=(), source=None):
        """Once the rows are stored and the meters' latest states updated: the days to
        freeze, the rejections kept, and the hook other add-ons extend."""
        if stored:
            self.env["prepaid.meter.reading.daily"]._queue_readings(
                set(map(_COMPANY_AND_READ_AT, stored))
            )
        if rejections:
            rejections.sort(key=operator.itemgetter("index"))
            self.env["prepaid.meter.reading.rejection"]._record(rejections, rows, source)
        self._after_ingest({row.meter_id for row in stored})

    @api.model
    def _after_ingest(self, meter_ids):
        """Hook for other add-ons, called once a batch is stored (by :meth:`_ingest` or
        :meth:`create`) and the meters' latest state updated (``last_reading_at``,
        ``last_power``...): ``meter_ids`` read something new."""

    @api.model
    def _prepare_batch(self, rows, source="manual"):
        """Resolve meters, parse and validate; returns (prepared rows, rejections, meters,
        measures of the batch)."""
        batch = self._load_batch(rows, source)
        prepared = list(
            self._validate_rows(batch.keyed, batch.meters, batch.rejections, batch.measures)
        )
        return prepared, batch.rejections, batch.meters, batch.measures

    @api.model
    def _load_batch(self, rows, source):
        """Look the batch's meters up while parsing its rows (a :class:`_Batch`)."""
        self._check_source(source)
        measures = self._batch_measures(rows)
        lookup, (parsed, errors) = self._load_meter_states(
            rows, meanwhile=lambda: self._parse_rows(rows, source, measures)
        )
        rejections = []
        keyed = self._resolve_rows(rows, parsed, errors, lookup, rejections)
        return _Batch(measures, lookup, parsed, keyed, rejections)

    @api.model
    def _check_source(self, source):
        if source not in SOURCES:
            raise UserError(self.env._("Unknown reading source %r.", source))

    @api.model
    def _batch_measures(self, rows):
        return parse.batch_measures(rows)

    @api.model
    def _parse_rows(self, rows, source, measures):
        """Parse each row (``prepaid_core.reading_batch.parse``): touches no database (nor
        translations), as it runs while the meters are looked up."""
        return parse.parse_rows(rows, source, measures, SOURCES)

    @api.model
    def _resolve_rows(self, rows, parsed, errors, meters, rejections):
        """The parsed rows with their meter, in the order to judge them (each meter's rows in
        time order); the rows of no known meter and those that did not parse go to
        ``rejections``.  When every row names a different meter by id, the parsed rows are
        returned as they are: an unknown meter is told apart as the row is judged."""
        for index, reason in errors:
            meter = self._meter_of(rows[index], meters)
            if not self._refused(rows, index, meter, rejections):
                rejections.append(self._rejection(index, rows[index], reason, meter.id))
        if len({row.meter_id for row in parsed} - {None}) == len(parsed) and not meters.by_address:
            return parsed
        keyed = []
        for row in parsed:
            meter = meters.by_id.get(row.meter_id)
            if meter is None:
                meter = self._meter_of(rows[row.index], meters)
                if self._refused(rows, row.index, meter, rejections):
                    continue
            keyed.append(row if row.meter_id == meter.id else row._replace(meter_id=meter.id))
        keyed.sort(key=operator.attrgetter("meter_id", "read_at"))
        return keyed

    @api.model
    def _meter_of(self, row, meters):
        """The meter a row names, by id or by address (None: unknown)."""
        meter = meters.by_id.get(row.get("meter_id"))
        if meter is None and meters.by_address:
            address = row.get("address")
            by_address = meters.by_address
            meter = by_address.get((row.get("gateway_id"), address)) or by_address.get(
                (None, address)
            )
        return meter

    @api.model
    def _refused(self, rows, index, meter, rejections):
        """Whether a row is refused for its meter (unknown, or an ambiguous address)."""
        row = rows[index]
        if meter is None:
            reason = self.env._("Unknown meter.")
        elif meter == "ambiguous":
            reason = self.env._(
                "Address %s is used on several gateways: name the gateway.", row.get("address")
            )
        else:
            return False
        rejections.append(self._rejection(index, row, reason))
        return True

    @api.model
    def _validate_rows(self, keyed, meters, rejections, measures, followup=None):
        """Judge each row against its meter's baseline, lazily (``BatchJudge``): the rows
        to store, each with its COPY line.  ``followup``: a batch of one row per meter is
        judged a chunk at a time, gathering what the latest states' UPDATE needs."""
        judge = self._batch_judge(meters, rejections, measures, followup)
        return judge.validated(keyed)

    @api.model
    def _batch_judge(self, meters, rejections, measures, followup=None):
        def reject(index, reason, meter_id):
            rejections.append(self._rejection(index, {}, reason, meter_id))

        messages = Messages(self.env._("Duplicate reading."), self.env._("Unknown meter."))
        received = str(fields.Datetime.now())
        return BatchJudge(meters, measures, received, reject, messages, followup)

    @api.model
    def _rejection(self, index, row, reason, meter_id=None):
        name = validation.shown(row.get("address") or meter_id or row.get("meter_id"))
        _logger.warning("Reading rejected (%s): %s", name, reason)
        return {"index": index, "reason": reason, "meter_id": meter_id or row.get("meter_id")}

    # === METERS OF A BATCH === #
    @api.model
    def _load_meter_states(self, rows, meanwhile=None):
        """The meters a batch names (:class:`MeterLookup`); ``by_id`` holds each meter's
        look-up row (:class:`MeterRecord`) until its state is built, as its first row is
        judged.  ``meanwhile``: work that needs no database (parsing the rows), done while
        PostgreSQL looks a large batch's meters up; then returns ``(meters, its result)``."""
        ids, addresses = self._batch_meter_keys(rows)
        self.env["prepaid.meter"].flush_model()
        self.env["prepaid.meter.latest"].flush_model()
        fetched, done = [], []
        if ids:
            large = len(rows) >= LARGE_BATCH
            fetched, done = self._fetch_meters_by_id(ids, meanwhile if large else None)
        located = self._fetch_meters_by_address(addresses) if addresses else []
        meters = self._meter_lookup(fetched, located)
        if meanwhile is None:
            return meters
        return meters, (done[0] if done else meanwhile())

    @api.model
    def _batch_meter_keys(self, rows):
        """The meter ids and (for rows without one) the addresses a batch names."""
        ids, addresses = set(), set()
        for row in rows:
            meter_id = row.get("meter_id")
            if meter_id:
                ids.add(meter_id)
            elif row.get("address"):
                addresses.add(row["address"])
        return ids, addresses

    @api.model
    def _meter_scope(self):
        companies = self.env.companies.ids if not self.env.su else self._all_company_ids()
        return SQL("m.state != 'removed' AND m.company_id = ANY(%s)", companies)

    @api.model
    def _fetch_meters_by_id(self, ids, meanwhile=None):
        """``(records of the meters of ids, [meanwhile's result] or [])``."""
        large = len(ids) >= FLEET_LOOKUP
        wanted = "{" + ",".join(map(str, sorted(ids) if large else ids)) + "}"
        query = SQL(
            "%s FROM %s %s WHERE %s",
            _METER_COLUMNS,
            self._meters_by_id_source(ids, wanted, large),
            _METER_JOINS,
            self._meter_scope(),
        )
        cr = self.env.cr
        if large:  # merge joins in meter order (docs/readings_store.md)
            cr.execute("SET LOCAL enable_hashjoin = off; SET LOCAL random_page_cost = 1.1")
        if meanwhile is not None:
            fetched, result = self._execute_meanwhile(query, meanwhile)
            found = (list(map(meter_record, fetched)), [result])
        else:
            cr.execute(query)
            found = (list(map(meter_record, cr.fetchall())), [])
        if large:
            cr.execute("SET LOCAL enable_hashjoin = on; RESET random_page_cost")
        return found

    @api.model
    def _meters_by_id_source(self, ids, wanted, large):
        """The meters table as the look-up of ``ids`` reads it: the whole fleet's ingest
        index (most of the fleet), a range of it (ids close together), one lookup per id."""
        if large:
            return SQL("prepaid_meter m JOIN unnest(%s::int[]) w(id) ON w.id = m.id", wanted)
        span = self._dense_id_span(ids)
        if span is not None:
            return SQL(
                "prepaid_meter m JOIN unnest(%s::int[]) w(id) "
                "ON w.id = m.id AND m.id BETWEEN %s AND %s",
                wanted,
                *span,
            )
        # (OFFSET 0 keeps the planner from turning it back into a scan of every meter)
        return SQL(
            "unnest(%s::int[]) w(id) CROSS JOIN LATERAL "
            "(SELECT * FROM prepaid_meter WHERE id = w.id OFFSET 0) m",
            wanted,
        )

    @api.model
    def _fetch_meters_by_address(self, addresses):
        query = SQL(
            "%s, m.address AS address, m.gateway_id AS gateway_id FROM prepaid_meter m %s "
            "WHERE %s AND m.address = ANY(%s)",
            _METER_COLUMNS,
            _METER_JOINS,
            self._meter_scope(),
            list(addresses),
        )
        return self.env.execute_query_dict(query)

    @api.model
    def _meter_lookup(self, fetched, located):
        """Index the meters found by id (records) and by address (their states)."""
        by_id = {record.id: record for record in fetched}
        by_address = {}
        builder = self._meter_state_builder() if fetched or located else None
        for values in located:
            record = MeterRecord(**{name: values[name] for name in MeterRecord._fields})
            state = by_id.get(record.id) or record
            if type(state) is MeterRecord:
                state = by_id[record.id] = builder.state_of(state)
            for key in ((values["gateway_id"], values["address"]), (None, values["address"])):
                other = by_address.get(key)
                by_address[key] = "ambiguous" if other and other is not state else state
        return MeterLookup(by_id, by_address, builder)

    @api.model
    def _dense_id_span(self, ids):
        """``(lowest, highest)`` of ``ids`` when they lie close together (at most
        :data:`DENSE_SPAN` ids of the range per id looked up), else None."""
        try:
            low, high = min(ids), max(ids)
        except TypeError:  # not all integers: PostgreSQL judges them, one by one
            return None
        if type(low) is not int or type(high) is not int:
            return None
        return (low, high) if high - low < DENSE_SPAN * len(ids) else None

    @api.model
    def _meter_state_builder(self):
        """A :class:`StateBuilder` knowing the meter models (few: read here, not joined)."""
        self.env["prepaid.meter.model"].flush_model(["bidirectional", "has_relay"])
        query = SQL("SELECT id, bidirectional, has_relay FROM prepaid_meter_model")
        model_flags = {
            model["id"]: (model["bidirectional"], model["has_relay"])
            for model in self.env.execute_query_dict(query)
        }
        meter_models = self.env["prepaid.meter.model"].with_context(active_test=False)
        limits = {model.id: model._limits() for model in meter_models.browse(list(model_flags))}
        return StateBuilder(model_flags, limits)

    @api.model
    def _execute_meanwhile(self, query, work):
        """Execute ``query`` on this transaction's cursor from a helper thread while
        ``work()`` (which must not touch the database) runs here; return ``(the query's
        rows, work's result)``."""

        def fetch():
            self.env.cr.execute(query)
            return self.env.cr.fetchall()

        return pipeline.run_meanwhile(fetch, work)

    @api.model
    def _all_company_ids(self):
        return [row["id"] for row in self.env.execute_query_dict(SQL("SELECT id FROM res_company"))]

    # === COPY INTO THE STORE === #
    @api.model
    def _copy_rows(self, validated, rejections, measures=(), table=STORE):
        """Write the validated rows with COPY as they come; on a duplicate already stored,
        fall back to INSERT .. ON CONFLICT and report the duplicates.  Returns the rows
        actually stored.  ``table``: the store or the partition all rows go to."""
        columns = ", ".join(BASE_COLUMNS + tuple(measures))
        prepared = []
        stream = pipeline.ChunkReader(copy_text.copy_chunks(validated, prepared), COPY_AHEAD)
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                cr._obj.copy_expert(f"COPY {table} ({columns}) FROM STDIN {_CSV}", stream)
            stream.close()
            return prepared
        except psycopg2.errors.UniqueViolation:
            _logger.info("Batch holds readings already stored: inserting one by one")
            stream.drain()  # validate the rest: every row is judged exactly once
        finally:
            stream.close()
        return self._insert_new_rows(prepared, rejections, measures)

    @api.model
    def _insert_new_rows(self, prepared, rejections, measures):
        """Insert the rows not stored yet (through a staging table); the others are
        rejected as duplicates.  Returns the rows stored."""
        columns = BASE_COLUMNS + tuple(measures)
        cr = self.env.cr
        cr.execute(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_reading_staging "
            "(LIKE prepaid_meter_reading_store INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        cr.execute("TRUNCATE prepaid_meter_reading_staging")
        cr._obj.copy_expert(
            f"COPY prepaid_meter_reading_staging ({', '.join(columns)}) FROM STDIN {_CSV}",
            copy_text.csv_file(prepared),
        )
        cr.execute("ANALYZE prepaid_meter_reading_staging")
        column_list = SQL(", ").join(SQL.identifier(col) for col in columns)
        inserted = self.env.execute_query_dict(
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
        inserted = {(row["meter_id"], row["read_at"]) for row in inserted}
        stored = []
        duplicate = self.env._("Duplicate reading.")
        for row in prepared:
            if (row.meter_id, row.read_at) in inserted:
                stored.append(row)
            else:
                rejections.append(self._rejection(row.index, {}, duplicate, row.meter_id))
        return stored

    # === LATEST STATES === #
    @api.model
    def _update_meters(self, stored, meters, measures=(), after=None, table=STORE, followup=None):
        """Each meter's latest state (``prepaid.meter.latest``) from the rows just stored, in
        one UPDATE of its narrow table.  ``meters``: the batch's :class:`MeterLookup`;
        ``after``: see :meth:`_reading_id_mark` (a large batch of one row per meter: the
        UPDATE reads the rows back from ``table``); ``followup``: the batch's
        :class:`Followup`, if it was judged with one.

        Meters whose relay or connection state changes go through the ORM instead, so the
        change is logged as an event."""
        if not stored:
            return
        self.env["prepaid.meter.latest"].flush_model()
        by_meter = {row.meter_id: None for row in stored}
        changes = None
        if after is not None and len(by_meter) == len(stored):
            try:
                with self.env.cr.savepoint(flush=False):
                    changes = self._update_latest_from_store(stored, meters, after, table, followup)
            except _NotAllFound as exc:  # never seen: then the safe way
                _logger.warning("Latest states staged: %s", exc)
        if changes is None:
            states = self._meter_states(meters, by_meter)
            changes = self._update_latest_staged(stored, states, measures, by_meter)
        # whole models: cheaper than browsing every meter of a large batch
        self.env["prepaid.meter.latest"].invalidate_model(_LATEST_FIELDS)
        self.env["prepaid.meter"].invalidate_model(_LATEST_FIELDS)
        self._log_meter_changes(changes)

    @api.model
    def _meter_states(self, meters, meter_ids):
        """The states of ``meter_ids``, built for those still held as look-up rows."""
        by_id = meters.by_id
        for meter_id in meter_ids:
            if type(by_id[meter_id]) is MeterRecord:
                by_id[meter_id] = meters.builder.state_of(by_id[meter_id])
        return by_id

    @api.model
    def _log_meter_changes(self, changes):
        """Log the connection restored and the relay changes, through the ORM."""
        meter_records = self.env["prepaid.meter"]
        for meter_id, relay, read_at, was_lost in changes:
            meter = meter_records.browse(meter_id)
            if was_lost:
                meter.connection_state = "online"
                meter._log_event("connection_restored")
            if relay and relay != meter.actual_relay_state:
                meter._record_actual_relay(relay, read_at)

    @api.model
    def _update_latest_staged(self, stored, states, measures, by_meter):
        """The latest states of :meth:`_update_meters` through a staging table: each meter's
        newest row and baseline, in time order whatever the batch.  Returns the changes to
        log: ``(meter id, relay, read time, was lost)``."""
        changes = []
        newest = copy_text.newest_rows(stored, by_meter)
        self._stage_latest(copy_text.latest_chunks(newest, states, measures, changes))
        balances = self._balances_before_newest(stored, states, measures, by_meter)
        cr = self.env.cr
        # A temp table has no statistics: small batches get them (cheap), large ones are joined
        # by hash, never by a nested loop over the staging rows.
        large = len(by_meter) > LARGE_BATCH
        cr.execute(
            "SET LOCAL enable_nestloop = off" if large else "ANALYZE prepaid_meter_latest_staging"
        )
        cr.execute(
            """
            UPDATE prepaid_meter_latest l
               SET last_reading_at = COALESCE(s.read_at, l.last_reading_at),
                   last_total = COALESCE(s.total, l.last_total),
                   last_forward_total = COALESCE(s.forward_total, l.last_forward_total),
                   last_reverse_total = COALESCE(s.reverse_total, l.last_reverse_total),
                   last_power = COALESCE(s.power, l.last_power),
                   last_meter_balance = COALESCE(s.meter_balance, b.balance,
                                                 l.last_meter_balance),
                   baseline_total = CASE WHEN s.same_baseline THEN s.total
                                         ELSE COALESCE(s.baseline_total, l.baseline_total) END,
                   baseline_at = CASE WHEN s.same_baseline THEN s.read_at
                                      ELSE COALESCE(s.baseline_at, l.baseline_at) END,
"""
            + _LATEST_CONTACT_AND_RELAY
            + """
              FROM prepaid_meter_latest_staging s
              LEFT JOIN unnest(%(latest_ids)s::int[], %(balances)s::numeric[])
                        AS b(latest_id, balance) ON b.latest_id = s.latest_id
             WHERE l.id = s.latest_id
            """,
            {
                "now": fields.Datetime.now(),
                "latest_ids": list(balances),
                "balances": list(balances.values()),
            },
        )
        if large:
            cr.execute("SET LOCAL enable_nestloop = on")
        return changes

    @staticmethod
    def _balances_before_newest(stored, states, measures, by_meter):
        """``{latest id: balance}`` of the meters whose newest reading of the batch (not
        late) reports no balance of its own while an earlier one (not late) does: the
        newest of those is the meter's latest known balance.  In memory, from the rows
        stored (in time order for each meter); empty for a batch of one row per meter."""
        if len(by_meter) == len(stored) or "meter_balance" not in measures:
            return {}
        at = measures.index("meter_balance")
        known, newest_has = {}, {}
        for row in stored:
            if row.flags and "late" in row.flags:
                continue
            balance = None if row.measured is None else row.measured[at]
            newest_has[row.meter_id] = balance is not None
            if balance is not None:
                known[row.meter_id] = balance
        return {
            states[meter_id].latest_id: balance
            for meter_id, balance in known.items()
            if not newest_has[meter_id]
        }

    @api.model
    def _stage_latest(self, chunks):
        """Copy the staging rows of the latest states (``copy_text.latest_chunks``)."""
        cr = self.env.cr
        cr.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_latest_staging (
                latest_id int, read_at timestamp, total numeric, forward_total numeric,
                reverse_total numeric, power numeric, meter_balance numeric,
                relay_state varchar, same_baseline bool, baseline_total numeric,
                baseline_at timestamp, mismatch bool
            ) ON COMMIT DROP
            """
        )
        cr.execute("TRUNCATE prepaid_meter_latest_staging")
        cr._obj.copy_expert(
            f"COPY prepaid_meter_latest_staging FROM STDIN {_CSV}", pipeline.ChunkReader(chunks)
        )

    @api.model
    def _update_latest_from_store(self, stored, meters, after, table=STORE, followup=None):
        """The latest states of :meth:`_update_meters` for a batch of one row per meter,
        read back from ``table`` (the rows of this transaction numbered after ``after``),
        joined to the states by meter: only the few meters whose row is late, keeps the
        baseline, or reports a relay other than asked are named.  Returns the changes to
        log, as :meth:`_update_latest_staged`.  ``followup``: those meters, gathered as the
        rows were judged (:class:`Followup`); else found here."""
        followup = self._stored_followup(stored, meters, followup)
        cr = self.env.cr
        large = len(stored) > LARGE_BATCH
        if large:  # the planner cannot tell how many rows follow ``after``: hash joins
            cr.execute("SET LOCAL enable_nestloop = off")
        cr.execute(
            self._latest_from_store_sql(table, followup),
            {
                "now": fields.Datetime.now(),
                "after": after,
                "received": stored[0].received_at,
                "late": followup.late,
                "kept": followup.kept,
                "mismatched": followup.mismatched,
            },
        )
        if cr.rowcount != len(stored):
            raise _NotAllFound(f"{cr.rowcount} rows of the store for {len(stored)} meters")
        if large:
            cr.execute("SET LOCAL enable_nestloop = on")
        return followup.changes

    @api.model
    def _stored_followup(self, stored, meters, followup):
        """The :class:`Followup` of the rows stored (a duplicate refused by the store is
        not), gathered now when the batch was judged without one."""
        if followup is None:
            followup = Followup()
            states = self._meter_states(meters, {row.meter_id: None for row in stored})
            for row in stored:
                followup.add(
                    states[row.meter_id].profile,
                    row.meter_id,
                    row.read_at,
                    row.flags,
                    row.moves,
                    row.relay_state,
                )
        elif followup.changes:
            stored_ids = {row.meter_id for row in stored}
            followup.changes = [c for c in followup.changes if c[0] in stored_ids]
        return followup

    @api.model
    def _latest_from_store_sql(self, table, followup):
        """The UPDATE of :meth:`_update_latest_from_store`; the meters late, kept or
        mismatched as parameters (none, as most batches: constants PostgreSQL folds)."""
        marks = {
            name: f"r.meter_id = ANY(%({name})s::int[])" if ids else "false"
            for name, ids in (
                ("late", followup.late),
                ("kept", followup.kept),
                ("mismatched", followup.mismatched),
            )
        }
        return (
            """
            UPDATE prepaid_meter_latest l
               SET last_reading_at = CASE WHEN s.late THEN l.last_reading_at ELSE s.read_at END,
                   last_total = CASE WHEN s.late THEN l.last_total ELSE s.total END,
                   last_forward_total = CASE WHEN s.late THEN l.last_forward_total
                                             ELSE s.forward_total END,
                   last_reverse_total = CASE WHEN s.late THEN l.last_reverse_total
                                             ELSE COALESCE(s.reverse_total, l.last_reverse_total)
                                        END,
                   last_power = CASE WHEN s.late THEN l.last_power
                                     ELSE COALESCE(s.power, l.last_power) END,
                   last_meter_balance = CASE WHEN s.late THEN l.last_meter_balance
                                             ELSE COALESCE(s.meter_balance, l.last_meter_balance)
                                        END,
                   baseline_total = CASE WHEN s.kept THEN l.baseline_total ELSE s.total END,
                   baseline_at = CASE WHEN s.kept THEN l.baseline_at ELSE s.read_at END,
"""
            + _LATEST_CONTACT_AND_RELAY
            + """
              FROM (SELECT r.meter_id, r.read_at, r.total, r.forward_total, r.reverse_total,
                           r.power, r.meter_balance,
                           CASE WHEN {late} THEN NULL ELSE r.relay_state END AS relay_state,
                           {late} AS late, {kept} AS kept, {mismatched} AS mismatch
                      FROM {table} r
                     WHERE r.id > %(after)s AND r.received_at = %(received)s) s
             WHERE l.meter_id = s.meter_id
            """.format(table=table, **marks)
        )

    @api.model
    def _reading_id_mark(self):
        """A number below the ids of the readings this transaction stores next, above those
        of every reading it can see stored by others -- or None when the transaction's
        isolation does not guarantee it (then the latest states are staged)."""
        [mark] = self.env.execute_query_dict(
            SQL(
                """
                SELECT nextval(s.seqrelid) AS next_id,
                       current_setting('transaction_isolation') AS isolation,
                       s.seqcache AS cache
                  FROM pg_sequence s
                 WHERE s.seqrelid = pg_get_serial_sequence(%s, 'id')::regclass
                """,
                STORE,
            )
        )
        # a snapshot taken before this number was drawn shows no other transaction's later
        # rows (a sequence without cache hands numbers out in order)
        ordered = mark["isolation"] in ("repeatable read", "serializable") and mark["cache"] == 1
        return mark["next_id"] if ordered else None

    # === ACTIONS === #
    def action_accept_baseline(self):
        """A manager checked a flagged reading and accepts its total as the new baseline.
        Its own consumption stays uncharged; later readings are judged against it."""
        self.ensure_one()
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise UserError(self.env._("Only a prepaid manager may move a meter's baseline."))
        meter = self.meter_id
        meter.sudo().write({"baseline_total": self.total, "baseline_at": self.read_at})
        self.reviewed = True
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

    def action_mark_reviewed(self):
        """A manager checked these flagged readings: they leave the review queue (their
        flags, charges and the meters' baselines stay as they are)."""
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise UserError(self.env._("Only a prepaid manager may mark readings reviewed."))
        self.filtered("flags").write({"reviewed": True})
        return True
