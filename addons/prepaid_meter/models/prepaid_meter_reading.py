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

import contextlib
import csv
import gc
import io
import itertools
import logging
import math
import operator
import queue
import re
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg2
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Domain
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
#: a measure's size is below this: its field's digits (precision - scale) as the store's
#: range (X1; ``tests/test_reading_values.py`` checks them against the fields)
MEASURE_LIMITS = {
    "tou_sharp": 1e12,
    "tou_peak": 1e12,
    "tou_flat": 1e12,
    "tou_valley": 1e12,
    "voltage": 1e8,
    "current": 1e9,
    "power": 1e8,
    "power_factor": 1e3,
    "meter_balance": 1e12,
}
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
#: module quote it), the read time, whether it moves the baseline, its index
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
R_LINE, R_READ_AT, R_MOVES, R_INDEX = -4, -3, -2, -1
_COMPANY_AND_READ_AT = operator.itemgetter(R_COMPANY, R_READ_AT)  # (what the freeze queues)
#: a meter's state during a batch is a list (see ``_load_meter_states``)
(
    M_ID,
    M_COMPANY,
    M_MULTIPLIER,
    M_BIDIRECTIONAL,
    M_LIMITS,
    M_BASE_TOTAL,
    M_BASE_AT,
    M_LATEST,
    M_RELAY_TARGET,
    M_PLAIN,
    M_LOST,
    M_ACTUAL_RELAY,
) = range(12)
#: what a flag reason must not hold to be written into a COPY line unquoted
_UNSAFE = re.compile(r'[\t\n\r"\\]')
SOURCES = frozenset(code for code, _label in READING_SOURCES)
_INF = float("inf")
_REGISTER_LIMIT = float(validation.REGISTER_LIMIT)
_TINY = validation.TINY
_EARLIEST, _LATEST = validation.EARLIEST, validation.LATEST
_INT4 = validation.INT4_MAX + 1
_NUMBER_TEXT = validation.MAX_NUMBER_TEXT
_TAB = "\t"
#: SET clauses shared by both latest-state UPDATEs (``l`` the latest state, ``s`` the new
#: reading): a meter heard from is online, and the first relay state it reports is taken as
#: known (nothing changed, no event).
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

#: a large batch (from this many rows) is parsed while its meters are looked up (a helper
#: thread); one of one row per meter updates the latest states from the store
LARGE_BATCH = 5000
#: chunks of COPY text (2,000 rows each) made ahead of PostgreSQL by a helper thread
COPY_AHEAD = 8
#: a page of readings newest first, with no time bound, is first looked for among the
#: readings of these last hours (see ``_search``) ...
NEWEST_FIRST_WINDOWS = (1, 24, 24 * 8, 24 * 64)
#: ... when PostgreSQL estimates reading it without that bound to cost more than this (in
#: its units, where reading a page of a table in sequence costs 1)
NEWEST_FIRST_COST = 20_000
_NEWEST_FIRST = re.compile(r"\s*read_at\s+desc\b", re.IGNORECASE)
#: from this many meters, a batch's meters are looked up by merge joins over the whole fleet
#: (the meters' ingest index, their latest states); fewer, one index lookup per meter
FLEET_LOOKUP = 20000
#: fewer meters are read as a range of the meters' ingest index when the range holds at most
#: this many ids per meter looked up (a gateway's meters, created together); else one by one
DENSE_SPAN = 4
#: a batch of one row per meter is judged this many rows at a time (see _judge_fleet_chunk)
FLEET_CHUNK = 2000
#: the partitioned table behind the model's view
STORE = "prepaid_meter_reading_store"
#: PostgreSQL advisory lock held while a transaction creates readings partitions
PARTITION_LOCK_KEY = 0x50524D52  # "PRMR"
#: COPY options: tab-separated CSV (quoting done by the csv module, in C); empty is NULL
_CSV = "WITH (FORMAT csv, DELIMITER E'\\t', NULL '')"
_SORT_KEY = operator.itemgetter(0, 1)
_LINE = operator.itemgetter(R_LINE)


class _ChunkReader:
    """A file for ``COPY .. FROM STDIN`` that pulls its text from an iterator of chunks, so
    rows are produced while PostgreSQL already inserts the previous ones.  psycopg2 sends
    whatever ``read`` returns, whatever its size.

    ``ahead``: from the second chunk on, the chunks are produced by a helper thread, up to
    this many ahead of PostgreSQL.  psycopg2 lets go of the interpreter while it sends a
    chunk, and the helper makes the next ones meanwhile: neither waits for the other as
    long as the queue is neither empty nor full.  The first chunk is made in the caller's
    thread (whatever the iterator does before its first chunk may use the database); the
    later ones must not.  :meth:`close` always, once done."""

    _END = object()

    def __init__(self, chunks, ahead=0):
        self._chunks = chunks
        self._first = None
        self._queue = self._thread = None
        self._stop = False
        if ahead:
            self._first = next(chunks, "")
            self._queue = queue.Queue(maxsize=ahead)
            self._thread = threading.Thread(
                target=self._produce, name="prepaid-ingest-copy", daemon=True
            )
            self._thread.start()

    def _produce(self):
        try:
            for chunk in self._chunks:
                if self._stop:
                    break
                self._queue.put(chunk)
        except BaseException as exc:  # raised again in the reader's thread
            self._queue.put(exc)
        finally:
            self._queue.put(self._END)

    def read(self, size=-1):  # pylint: disable=method-required-super
        if self._queue is None:
            return next(self._chunks, "")
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        item = self._queue.get()
        if item is self._END:
            self._queue.put(item)  # every later read ends too
            return ""
        if isinstance(item, BaseException):
            raise item
        return item

    readline = read

    def drain(self):
        """Produce the remaining chunks (every row is judged), sending them nowhere."""
        while self.read():
            pass

    def close(self):
        """Stop producing (if not done) and wait for the helper thread."""
        if self._thread is None:
            return
        self._stop = True
        while self._thread.is_alive():  # unblock it, were the queue full
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        self._thread.join()
        self._thread = None


@contextlib.contextmanager
def _cyclic_gc_paused():
    """No automatic cyclic garbage collection while a large batch is ingested: its rows
    and states (hundreds of thousands of tuples and lists, none in a reference cycle)
    would trigger dozens of collections, each walking them all -- a tenth of the batch's
    time.  Reference counting frees them as usual; collection resumes afterwards.  Left
    alone when collection is already off (e.g. another thread's batch)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: how often (seconds) the interpreter lets another thread run while a large batch is
#: ingested, instead of Python's 5 ms: see :func:`_quick_thread_switches`
SWITCH_INTERVAL = 0.0005
_switches = {"lock": threading.Lock(), "depth": 0, "saved": None}


@contextlib.contextmanager
def _quick_thread_switches():
    """Hand the interpreter between threads ten times as often while a large batch is
    ingested.  The thread feeding COPY (psycopg2 lets go of the interpreter while it
    sends) needs it back for each chunk while the helper thread judges the next rows:
    waiting up to Python's 5 ms each time can leave PostgreSQL idle.  Measured on a busy
    machine (other processes on both cores): 100,000 readings stored in 1.45-1.75 s
    instead of 1.77-2.39 s; on a quiet one no difference (8 alternated intervals each:
    medians 48,600 and 48,000 readings/s).  Nested and concurrent batches share one
    setting; the last one out restores it."""
    with _switches["lock"]:
        if not _switches["depth"]:
            _switches["saved"] = sys.getswitchinterval()
            sys.setswitchinterval(min(SWITCH_INTERVAL, _switches["saved"]))
        _switches["depth"] += 1
    try:
        yield
    finally:
        with _switches["lock"]:
            _switches["depth"] -= 1
            if not _switches["depth"]:
                sys.setswitchinterval(_switches["saved"])


class _Followup:
    """What the latest states' UPDATE of a batch of one row per meter needs of its rows
    (``_update_latest_from_store``), gathered as they are judged: the meters whose row is
    late (it does not become their latest), whose baseline stays, whose relay is not the
    one asked, and the changes to log as events, ``(meter id, relay, read time, was
    lost)``."""

    __slots__ = ("changes", "kept", "late", "mismatched")

    def __init__(self):
        self.late, self.kept, self.mismatched, self.changes = [], [], [], []

    def add(self, state, meter_id, read_at, flags, moves, relay):
        """One row judged against its meter's ``state`` (see ``_load_meter_states``)."""
        if flags and "late" in flags:
            self.late.append(meter_id)
            relay = None
        if not moves:
            self.kept.append(meter_id)
        actual = state[M_ACTUAL_RELAY]
        if state[M_LOST] or (relay is not None and actual != "unknown" and actual != relay):
            self.changes.append((meter_id, relay, read_at, state[M_LOST]))
        target = state[M_RELAY_TARGET]
        if relay is not None and target is not None and relay != target:
            self.mismatched.append(meter_id)


class _NotAllFound(Exception):
    """The store did not give back each row of a batch (see ``_update_latest_from_store``)."""


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
        # A reading's key is its meter and time (the unique index above, which every
        # look-up by meter uses).  The ORM's id grows with each insert, as the rows lie in
        # the store: a BRIN index finds ids at almost no cost per inserted row, where a
        # B-tree primary key took a fifth of the time of a bulk COPY.
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
        # Read by time, without scanning every reading of every month (4.8 million a day
        # for 100,000 meters), and at no cost per normal reading (no B-tree of read_at, which
        # costs a quarter of each COPY):
        # - the readings a manager has to review (flagged and not charged, other than a
        #   meter's first reading: rollbacks, spikes, late readings; not reviewed yet: the
        #   "To Review" filter the Readings menu opens on) through a partial index, written
        #   for those few rows only, which a row leaves once reviewed; its condition is the
        #   filter's SQL (the ORM writes ``flags not in (False, 'baseline')``,
        #   ``chargeable = False`` and ``reviewed = False`` so);
        # - time ranges (the daily freeze of the last two days, a date filter) through a
        #   BRIN index of read_at: the rows arrive in time order, so each block range holds a
        #   narrow span of times.
        cr.execute(  # (the queue's index under its first conditions)
            "DROP INDEX IF EXISTS prepaid_meter_reading_store_review_idx, "
            "prepaid_meter_reading_store_to_review_idx"
        )
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
        the default partition already holds for those months.  Returns the table rows of
        those days go to: their month's partition when there is one month (COPY into it
        skips routing each row, a fifth of the COPY's time), else the partitioned store."""
        months = {date(day.year, day.month, 1) for day in days}
        cr = self.env.cr
        existing = self._partition_names()
        missing = sorted(month for month in months if self._partition_name(month) not in existing)
        target = self._partition_name(next(iter(months))) if len(months) == 1 else STORE
        if not missing:
            return target
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
        return target

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
                    **dict(zip(measures, row[R_MEASURED], strict=True)),
                }
            )
        records = super().create(vals_list)
        self._update_meters(prepared, meters[0], measures)
        self.env["prepaid.meter.reading.daily"]._queue_readings(
            set(map(_COMPANY_AND_READ_AT, prepared))
        )
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

        Python and PostgreSQL work at the same time: the rows are parsed while PostgreSQL
        looks their meters up (a large batch), and judged and formatted while it copies the
        first ones in.  When every row names a different meter by id (one interval of a
        fleet: the usual batch), the rows need no sorting; otherwise they are sorted by meter
        and time, each meter's readings being judged in turn against its moving baseline.
        """
        rows = rows if isinstance(rows, list) else list(rows)
        if len(rows) < LARGE_BATCH:
            return self._ingest_rows(rows, source)
        with _cyclic_gc_paused(), _quick_thread_switches():
            return self._ingest_rows(rows, source)

    @api.model
    def _ingest_rows(self, rows, source):
        started = time.perf_counter()
        self._check_source(source)
        measures = self._batch_measures(rows)
        meters, (parsed, errors) = self._load_meter_states(
            rows, meanwhile=lambda: self._parse_rows(rows, source, measures)
        )
        rejections = []
        keyed = self._resolve_rows(rows, parsed, errors, meters, rejections)
        table = self._ensure_partitions({item[1] for item in keyed})
        after = self._reading_id_mark() if len(rows) >= LARGE_BATCH else None
        # the parsed rows themselves: one row per meter (see _resolve_rows)
        followup = _Followup() if after is not None and keyed is parsed else None
        validated = self._validate_rows(keyed, meters, rejections, measures, followup)
        stored = self._copy_rows(validated, rejections, measures, table)
        copied = time.perf_counter()
        self._update_meters(stored, meters[0], measures, after, table, meters[2], followup)
        if stored:
            self.env["prepaid.meter.reading.daily"]._queue_readings(
                set(map(_COMPANY_AND_READ_AT, stored))
            )
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
        """Resolve meters, parse and validate; returns (prepared rows, rejections, meters,
        measures of the batch)."""
        self._check_source(source)
        measures = self._batch_measures(rows)
        meters, (parsed, errors) = self._load_meter_states(
            rows, meanwhile=lambda: self._parse_rows(rows, source, measures)
        )
        rejections = []
        keyed = self._resolve_rows(rows, parsed, errors, meters, rejections)
        prepared = list(self._validate_rows(keyed, meters, rejections, measures))
        return prepared, rejections, meters, measures

    @api.model
    def _check_source(self, source):
        if source not in SOURCES:
            raise UserError(self.env._("Unknown reading source %r.", source))

    @api.model
    def _batch_measures(self, rows):
        """The measures some row of the batch names, in :data:`MEASURES` order: the columns
        the batch writes."""
        named = MEASURE_SET.intersection(set().union(*rows)) if rows else ()
        return tuple(name for name in MEASURES if name in named)

    @api.model
    def _parse_rows(self, rows, source, measures):
        """First pass, before the meters are known: parse each row's values.  Returns the
        parsed rows, ``(meter id as given, read time, index, forward, reverse, measured,
        relay, status, source)`` with ``measured`` the values of ``measures``, and the
        ``(index, reason)`` of the rows that do not parse.

        Runs while the meters are looked up: touches no database (nor translations).
        A batch whose every row has the common shape (see :meth:`_parse_columns`) is parsed
        column by column; any other row by row."""
        parsed = self._parse_columns(rows, source, measures)
        if parsed is not None:
            return parsed, []
        return self._parse_each(rows, source, measures)

    @api.model
    def _parse_columns(self, rows, source, measures):
        """:meth:`_parse_rows` of a batch in the common shape, a column at a time (each
        value converted by a C loop, not by Python statements per row), or None when some
        row is not in it: read times all datetimes (naive, whole seconds) or all text, and
        few distinct; forward totals all floats or all text; no reverse total and no status
        word; each measure a float or absent; relay states 'on', 'off' or absent; sources
        known.  The same parsed rows as :meth:`_parse_each`
        (``tests/test_reading_parse.py``); whatever is to be refused is left to it, which
        says why."""
        try:
            return self._parse_columns_of(rows, source, measures)
        except (TypeError, ValueError, ArithmeticError):  # (unhashable, not a number...)
            return None

    @api.model
    def _parse_columns_of(self, rows, source, measures):
        count = len(rows)
        none = (None,) * count

        def column(name):
            return [row.get(name) for row in rows]

        def finite(values, limit):
            """Whether ``values`` are floats (or None), all finite, of size below ``limit``
            and, but zeros, at least TINY (so with no more decimals than the store keeps)."""
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

        if column("reverse_total").count(None) != count:
            return None
        if column("status_word").count(None) != count:
            return None
        read_ats = column("read_at")
        distinct = set(read_ats)
        if len(distinct) > 64:
            return None  # (a backlog of many times: parsed row by row)
        kinds = set(map(type, distinct))
        if kinds == {datetime}:
            if any(at.tzinfo or at.microsecond for at in distinct):
                return None
            if min(distinct) < _EARLIEST or max(distinct) >= _LATEST:
                return None
        elif kinds == {str}:
            table = {text: self._parse_time(text) for text in distinct}
            read_ats = list(map(table.__getitem__, read_ats))
        else:
            return None
        forwards = column("forward_total")
        kinds = set(map(type, forwards))
        if kinds == {float}:
            if not finite(forwards, _REGISTER_LIMIT) or min(forwards) < 0:
                return None
            forwards = list(map(Decimal, map(repr, forwards)))
        elif kinds == {str}:
            # plain digits within the register's range (finite, not negative, few decimals)
            if not all(map(validation.PLAIN_REGISTER.fullmatch, forwards)):
                return None
            forwards = list(map(Decimal, forwards))
        else:
            return None
        measured = []
        for name in measures:
            values = column(name)
            if not finite(values, MEASURE_LIMITS[name]):
                return None
            measured.append(values)
        relays = column("relay_state")
        if not set(relays) <= {None, "on", "off"}:
            return None
        sources = column("source")
        named = set(sources) - {None, "", source}
        if named:
            if not named <= SOURCES:
                return None
            sources = [value or source for value in sources]
        else:
            sources = itertools.repeat(source, count)
        return list(
            zip(
                column("meter_id"),
                read_ats,
                range(count),
                forwards,
                none,
                zip(*measured, strict=True) if measured else itertools.repeat((), count),
                relays,
                none,
                sources,
                strict=True,
            )
        )

    @api.model
    def _parse_each(self, rows, source, measures):
        """:meth:`_parse_rows`, row by row."""
        parse_time, to_quantity = self._parse_time, validation.to_quantity
        to_measure, to_status_word = validation.to_measure, validation.to_status_word
        limits = [MEASURE_LIMITS[name] for name in measures]
        parsed, errors = [], []
        times = {}  # the distinct read times of a batch are few: each is parsed once
        for index, row in enumerate(rows):
            try:
                read_at = row.get("read_at")
                if (
                    type(read_at) is not datetime
                    or read_at.tzinfo
                    or read_at.microsecond
                    or not _EARLIEST <= read_at < _LATEST
                ):
                    if type(read_at) is str:
                        at = times.get(read_at)
                        if at is None:
                            at = times[read_at] = parse_time(read_at)
                        read_at = at
                    else:
                        read_at = parse_time(read_at)
                forward = row.get("forward_total")
                if type(forward) is float and (_TINY <= forward < _REGISTER_LIMIT or not forward):
                    forward = Decimal(repr(forward))  # the common case
                else:
                    forward = to_quantity(forward, "forward_total")
                reverse = row.get("reverse_total")
                if reverse is not None:
                    reverse = to_quantity(reverse, "reverse_total")
                measured = [row.get(name) for name in measures]
                for at, value in enumerate(measured):
                    kind = type(value)
                    if kind is float:
                        if _TINY <= abs(value) < limits[at] or not value:
                            continue  # the common case
                    elif kind is str and len(value) <= _NUMBER_TEXT:  # (a runner's Decimals)
                        try:
                            number = float(value)
                        except ValueError:
                            number = _INF  # (to_measure says why)
                        if _TINY <= abs(number) < limits[at]:
                            measured[at] = number
                            continue
                    elif value is None or value is False:  # (the ORM's empty value)
                        measured[at] = None
                        continue
                    measured[at] = to_measure(value, measures[at], limits[at])
                status = row.get("status_word")
                if status is not None and (type(status) is not int or not 0 <= status < _INT4):
                    status = to_status_word(status)
                row_source = row.get("source") or source
                if row_source is not source and (
                    type(row_source) is not str or row_source not in SOURCES
                ):
                    raise ValueError(f"source: {validation.shown(row_source)} is not a source")
                relay = row.get("relay_state") or None
                if relay is not None and relay != "on" and relay != "off":
                    raise ValueError(f"relay_state: {validation.shown(relay)} is not on or off")
            except (ValueError, TypeError, ArithmeticError) as exc:  # (ReadingError too)
                errors.append((index, str(exc)))
                continue
            parsed.append(
                (
                    row.get("meter_id"),
                    read_at,
                    index,
                    forward,
                    reverse,
                    tuple(measured),
                    relay,
                    status,
                    row_source,
                )
            )
        return parsed, errors

    @api.model
    def _resolve_rows(self, rows, parsed, errors, meters, rejections):
        """Second pass: the parsed rows with their meter, in the order to judge them (each
        meter's rows in time order); the rows of no known meter and those that did not parse
        go to ``rejections``.

        When every row names a different meter by id, the parsed rows are returned as they
        are: nothing to sort, and an unknown meter is told apart as the row is judged."""
        by_id, by_address, _state_of = meters
        unknown = self.env._("Unknown meter.")

        def meter_of(row):
            meter = by_id.get(row.get("meter_id"))
            if meter is None and by_address:
                address = row.get("address")
                meter = by_address.get((row.get("gateway_id"), address)) or by_address.get(
                    (None, address)
                )
            return meter

        def refuse(index, meter):
            row = rows[index]
            if meter is None:
                rejections.append(self._rejection(index, row, unknown))
                return True
            if meter == "ambiguous":
                reason = self.env._(
                    "Address %s is used on several gateways: name the gateway.",
                    row.get("address"),
                )
                rejections.append(self._rejection(index, row, reason))
                return True
            return False

        for index, reason in errors:
            meter = meter_of(rows[index])
            if not refuse(index, meter):
                rejections.append(self._rejection(index, rows[index], reason, meter[M_ID]))
        if len({item[0] for item in parsed} - {None}) == len(parsed) and not by_address:
            return parsed
        keyed = []
        for item in parsed:
            meter = by_id.get(item[0])
            if meter is None:
                meter = meter_of(rows[item[2]])
                if refuse(item[2], meter):
                    continue
            if item[0] != meter[M_ID]:
                item = (meter[M_ID], *item[1:])
            keyed.append(item)
        keyed.sort(key=_SORT_KEY)
        return keyed

    @api.model
    def _validate_rows(self, keyed, meters, rejections, measures, followup=None):
        """Third pass, lazily: judge each reading against its meter's baseline (each
        meter's rows come in time order) and yield the rows to store (tuples, see ``R_*``),
        with the values of ``measures`` in ``R_MEASURED``.

        Rows are formatted for COPY here, in one f-string each; a row whose flag reason would
        need quoting is left to the csv module.

        ``followup``: a batch of one row per meter (``_resolve_rows`` kept the parsed rows
        as they were) passes a :class:`_Followup`, which gets what the latest states'
        UPDATE needs of each row (``_update_latest_from_store``).  Such a batch is judged
        a chunk at a time by :meth:`_judge_fleet_chunk`, without building any meter's
        state; a chunk it does not take is judged row by row, as any other batch."""
        received = str(fields.Datetime.now())
        if followup is None or not keyed:
            yield from self._judge_rows(keyed, meters, rejections, measures, received)
            return
        judge = self._judge_fleet_chunk(meters, measures, received, keyed[0][8], followup)
        for at in range(0, len(keyed), FLEET_CHUNK):
            chunk = keyed[at : at + FLEET_CHUNK]
            judged = judge(chunk)
            if judged is None:
                judged = self._judge_rows(chunk, meters, rejections, measures, received, followup)
            yield from judged

    @api.model
    def _judge_rows(self, keyed, meters, rejections, measures, received, followup=None):
        """:meth:`_validate_rows` row by row (``received``: the batch's receipt time)."""
        by_id, _by_address, state_of = meters
        validate, effective_total = validation.validate, validation.effective_total
        normal = validation.normal_consumption
        previous = None
        duplicate = self.env._("Duplicate reading.")
        unknown = self.env._("Unknown meter.")
        texts = {}
        measure_format = "\t%r" * len(measures)
        batch_source = keyed[0][8] if keyed else None
        for meter_id, read_at, index, forward, reverse, measured, relay, status, source in keyed:
            if previous == (meter_id, read_at):
                rejections.append(self._rejection(index, {}, duplicate, meter_id))
                continue
            previous = (meter_id, read_at)
            meter = by_id.get(meter_id)
            if type(meter) is not list:
                if meter is None:  # a row of its own meter (see _resolve_rows)
                    rejections.append(self._rejection(index, {"meter_id": meter_id}, unknown))
                    continue
                meter = by_id[meter_id] = state_of(meter)
            if meter[M_PLAIN]:  # multiplier 1, forward only: the total is the register
                total = forward
            else:
                total = effective_total(
                    forward, reverse, meter[M_BIDIRECTIONAL], meter[M_MULTIPLIER]
                )
            consumption = normal(
                meter[M_BASE_TOTAL],
                meter[M_BASE_AT],
                total,
                read_at,
                meter[M_LIMITS],
                meter[M_MULTIPLIER],
            )
            if consumption is not None:  # most readings: nothing to flag
                flags = reason = None
                moves = chargeable = True
            else:
                verdict = validate(
                    meter[M_BASE_TOTAL],
                    meter[M_BASE_AT],
                    total,
                    read_at,
                    meter[M_LIMITS],
                    meter[M_MULTIPLIER],
                )
                consumption, moves, chargeable = (
                    verdict.consumption,
                    verdict.moves_baseline,
                    verdict.chargeable,
                )
                flags = ",".join(verdict.flags) or None
                reason = verdict.reason or None
            if moves:
                meter[M_BASE_TOTAL], meter[M_BASE_AT] = total, read_at
            if followup is not None:
                followup.add(meter, meter_id, read_at, flags, moves, relay)
            # the read time's text, and the line's columns from it to the register (the
            # same for most rows of a batch: one read time, one source)
            cached = texts.get(read_at)
            if cached is None:
                text = str(read_at)
                cached = texts[read_at] = (text, f"\t{text}\t{received}\t{batch_source}\t")
            text = cached[0]
            if reason is not None and _UNSAFE.search(reason):
                line = None
            else:
                if None in measured:
                    tail = "".join([_TAB if v is None else _TAB + repr(v) for v in measured])
                else:
                    tail = measure_format % measured
                middle = (
                    cached[1] if source == batch_source else f"\t{text}\t{received}\t{source}\t"
                )
                register = str(forward)
                if flags is None and reason is None and reverse is None and status is None:
                    line = (
                        f"{meter_id}\t{meter[M_COMPANY]}{middle}{register}\t\t"
                        f"{register if total is forward else total}\t{consumption!s}"
                        f"\t{relay or ''}\t\t\t\t{'t' if chargeable else 'f'}{tail}\n"
                    )
                else:
                    line = (
                        f"{meter_id}\t{meter[M_COMPANY]}{middle}{register}\t"
                        f"{'' if reverse is None else reverse}\t"
                        f"{register if total is forward else total}\t{consumption!s}"
                        f"\t{relay or ''}\t{'' if status is None else status}"
                        f"\t{flags or ''}\t{reason or ''}\t{'t' if chargeable else 'f'}{tail}\n"
                    )
            yield (
                meter_id,
                meter[M_COMPANY],
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
            )

    @api.model
    def _judge_fleet_chunk(self, meters, measures, received, batch_source, followup):
        """A function judging a chunk of a batch of one row per meter column by column
        (each step a C loop over the chunk, not Python statements per row), giving the
        rows :meth:`_judge_rows` gives -- or None when some row is not a plain one: every
        meter known, and either all of them read before, each reading after its baseline,
        within its rated maximum and without a gap (nothing to flag), or none of them (the
        first readings: baselines); the batch's source, no reverse total, status word or
        missing measure, no relay or connection change to log.  Its meters' states are not
        built; what the latest states need goes to ``followup``.  (Same rows either way:
        ``tests/test_reading_fleet.py``.)"""
        by_id, _by_address, state_of = meters
        profile_of, time_of = state_of.profile_of, state_of.time_of
        middles = {}  # read time: (its text, the line's columns from it to the register)
        normal_format = "%s\t%s%s%s\t\t%s\t%s\t%s\t\t\t\tt" + "\t%r" * len(measures) + "\n"
        repeat = itertools.repeat
        first = {}  # the verdict on a meter's first reading, and its line's format

        def baseline(forward, read_at, profile):
            if not first:
                verdict = validation.validate(None, None, forward, read_at, profile[3], profile[1])
                flags = ",".join(verdict.flags) or None
                if flags is None or _UNSAFE.search(flags + (verdict.reason or "")):
                    return None  # (a reason the csv module must quote: row by row)
                first["verdict"] = (verdict, flags)
                judged = f"{flags}\t{verdict.reason or ''}\t{'t' if verdict.chargeable else 'f'}"
                first["format"] = (
                    "%s\t%s%s%s\t\t%s\t%s\t%s\t\t"
                    + judged.replace("%", "%%")
                    + "\t%r" * len(measures)
                    + "\n"
                )
            return first

        def judge(chunk):
            count = len(chunk)
            mids, read_ats, indexes, forwards, reverses, measured, relays, statuses, sources = zip(
                *chunk, strict=True
            )
            if reverses.count(None) != count or statuses.count(None) != count:
                return None
            if set(sources) != {batch_source}:
                return None
            records = list(map(by_id.get, mids))
            if set(map(type, records)) != {tuple}:
                return None  # an unknown meter
            _ids, _latest, base_totals, base_ats, shared = zip(*records, strict=True)
            # (company, multiplier, bidirectional, limits, relay target, plain, lost, actual)
            profiles = {text: profile_of(text) for text in set(shared)}
            firsts = base_ats.count(None) == count  # the meters' first readings
            if not firsts and (None in base_ats or None in base_totals):
                return None  # some first readings among the others
            if any(profile[6] for profile in profiles.values()):
                return None  # a lost connection restored: an event
            mismatched = set()
            for text, relay in set(zip(shared, relays, strict=True)):
                if relay is not None:
                    target, actual = profiles[text][4], profiles[text][7]
                    if actual != "unknown" and actual != relay:
                        return None  # the relay changed: an event
                    if target is not None and relay != target:
                        mismatched.add((text, relay))
            columns = list(zip(*measured, strict=True)) if measures else []
            if any(None in column for column in columns):
                return None
            # the total: the register (multiplier 1, forward only) or the register times
            # the multiplier (no reverse register in the chunk), as effective_total
            if all(profile[5] for profile in profiles.values()):
                totals = forwards
            elif len(profiles) == 1:
                totals = list(map(operator.mul, forwards, repeat(profiles[shared[0]][1], count)))
            else:
                totals = [
                    forward if profiles[text][5] else forward * profiles[text][1]
                    for forward, text in zip(forwards, shared, strict=True)
                ]
            if firsts:  # baselines, as validation.validate judges them
                if baseline(forwards[0], read_ats[0], profiles[shared[0]]) is None:
                    return None
                verdict, flags = first["verdict"]
                consumption = repeat(verdict.consumption, count)
                judged = (flags, verdict.reason, verdict.chargeable, verdict.moves_baseline)
                line_format = first["format"]
            else:
                consumption = self._fleet_consumption(
                    totals, base_totals, read_ats, base_ats, shared, profiles, time_of
                )
                if consumption is None:
                    return None
                judged = (None, None, True, True)
                line_format = normal_format
            # the rows, as _judge_rows makes them
            distinct = set(read_ats)
            for at in distinct - middles.keys():
                text = str(at)
                middles[at] = (text, f"\t{text}\t{received}\t{batch_source}\t")
            if len(distinct) == 1:
                text, middle = middles[read_ats[0]]
                texts, middle_texts = repeat(text, count), repeat(middle, count)
            else:
                texts = [middles[at][0] for at in read_ats]
                middle_texts = [middles[at][1] for at in read_ats]
            if len(profiles) == 1:
                companies = [profiles[shared[0]][0]] * count
            else:
                companies = [profiles[text][0] for text in shared]
            consumption = list(consumption)
            registers = list(map(str, forwards))
            total_texts = registers if totals is forwards else list(map(str, totals))
            relay_texts = [relay or "" for relay in relays] if None in relays else relays
            lines = list(
                map(
                    line_format.__mod__,
                    zip(
                        mids,
                        companies,
                        middle_texts,
                        registers,
                        total_texts,
                        consumption,
                        relay_texts,
                        *columns,
                        strict=True,
                    ),
                )
            )
            if mismatched:
                followup.mismatched.extend(
                    meter_id
                    for meter_id, text, relay in zip(mids, shared, relays, strict=True)
                    if (text, relay) in mismatched
                )
            nothing = repeat(None, count)
            return zip(
                mids,
                companies,
                texts,
                repeat(received, count),
                sources,
                forwards,
                nothing,
                totals,
                consumption,
                relays,
                repeat(None, count),
                repeat(judged[0], count),
                repeat(judged[1], count),
                repeat(judged[2], count),
                measured,
                lines,
                read_ats,
                repeat(judged[3], count),
                indexes,
                strict=True,
            )

        return judge

    @api.model
    def _fleet_consumption(
        self, totals, base_totals, read_ats, base_ats, shared, profiles, time_of
    ):
        """The consumption of each row of a fleet chunk (:meth:`_judge_fleet_chunk`) when
        none has anything to flag, else None: validation.normal_consumption of every row,
        its limits worked out once per (read time, baseline time, meter profile)."""
        consumption = list(map(operator.sub, totals, map(Decimal, base_totals)))
        if min(consumption) < 0:
            return None
        allowed = {}
        for key in set(zip(read_ats, base_ats, shared, strict=True)):
            read_at, base_at, text = key
            base_at = time_of(base_at)
            limits, multiplier = profiles[text][3], profiles[text][1]
            if read_at <= base_at or read_at - base_at > limits.gap_after:
                return None
            allowed[key] = limits.allowed(read_at - base_at, multiplier)
        if len(allowed) == 1:
            if max(consumption) > next(iter(allowed.values())):
                return None
        elif any(
            map(
                operator.gt,
                consumption,
                map(allowed.__getitem__, zip(read_ats, base_ats, shared, strict=True)),
            )
        ):
            return None
        return consumption

    @api.model
    def _load_meter_states(self, rows, meanwhile=None):
        """The meters a batch names, as ``(by_id, by_address, state_of)``: a meter's state
        is a mutable list indexed by the ``M_*`` constants: id, company, multiplier,
        bidirectional, limits, baseline total and time, latest state id, the relay state it
        should report (None: no relay to judge), whether the total is the forward register as
        read (multiplier 1, forward only), whether its connection was lost, the relay state it
        last reported.  ``by_id`` holds the look-up's row (a tuple, the id first) until
        ``state_of(row)`` builds the state, as the meter's first reading is judged.

        One query reads what the batch needs of each meter and of its latest state; the few
        meter models are read apart, not joined to every meter.

        ``meanwhile``: work that needs no meter (parsing the rows), done while PostgreSQL
        looks a large batch's meters up; then returns ``(meters, its result)``."""
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
        # What most meters share (company, multiplier, model, relay and connection states)
        # comes as one text, and the baseline time as text: decoded once per distinct value
        # (see _meter_state_builder), not once per meter -- a datetime per row cost more
        # than the rest of the row.
        columns = SQL(
            """
            SELECT m.id, m.latest_id, l.baseline_total::text, l.baseline_at::text,
                   concat_ws('|', m.company_id, COALESCE(m.multiplier::text, ''),
                             m.model_id, COALESCE(CASE WHEN m.state = 'in_service'
                                                       THEN m.desired_relay_state END, ''),
                             l.connection_state, l.actual_relay_state)
            """
        )
        joins = SQL("JOIN prepaid_meter_latest l ON l.meter_id = m.id")
        where = SQL("m.state != 'removed' AND m.company_id = ANY(%s)", companies)
        cr = self.env.cr
        fetched, done = [], None
        if ids:
            large = len(ids) >= FLEET_LOOKUP
            wanted = "{" + ",".join(map(str, sorted(ids) if large else ids)) + "}"
            if large:
                # most of the fleet: merge joins of the sorted ids, the meters' ingest index
                # (read alone) and their latest states by meter (the index on their meter),
                # all in meter order -- hashing every meter and every latest state costs
                # twice as much; sorting the latest states (a seq scan) or parallel workers
                # (which take the processor from the rows being parsed meanwhile) a third
                # more.  Hence, for this query, index pages priced as the cached pages they
                # are.
                meters = SQL("prepaid_meter m JOIN unnest(%s::int[]) w(id) ON w.id = m.id", wanted)
            elif (span := self._dense_id_span(ids)) is not None:
                # a part of it, close together (say a gateway's meters): their range of the
                # meters' ingest index, read alone -- half the cost of a lookup per id
                meters = SQL(
                    "prepaid_meter m JOIN unnest(%s::int[]) w(id) "
                    "ON w.id = m.id AND m.id BETWEEN %s AND %s",
                    wanted,
                    *span,
                )
            else:
                # a few, far apart: one primary-key lookup per id (OFFSET 0 keeps the
                # planner from turning it back into a scan of every meter)
                meters = SQL(
                    "unnest(%s::int[]) w(id) CROSS JOIN LATERAL "
                    "(SELECT * FROM prepaid_meter WHERE id = w.id OFFSET 0) m",
                    wanted,
                )
            query = SQL("%s FROM %s %s WHERE %s", columns, meters, joins, where)
            if large:
                cr.execute("SET LOCAL enable_hashjoin = off; SET LOCAL random_page_cost = 1.1")
            if meanwhile is not None and len(rows) >= LARGE_BATCH:
                fetched, result = self._execute_meanwhile(query, meanwhile)
                done = [result]
            else:
                cr.execute(query)
                fetched = cr.fetchall()
            if large:
                cr.execute("SET LOCAL enable_hashjoin = on; RESET random_page_cost")
        located = []
        if addresses:
            cr.execute(
                SQL(
                    "%s, m.address, m.gateway_id FROM prepaid_meter m %s "
                    "WHERE %s AND m.address = ANY(%s)",
                    columns,
                    joins,
                    where,
                    list(addresses),
                )
            )
            located = cr.fetchall()
        # each meter's state is built as its first row is judged (see _validate_rows): a
        # large batch's are built while PostgreSQL copies the rows judged before
        by_id = {record[0]: record for record in fetched}
        by_address = {}
        state_of = self._meter_state_builder() if fetched or located else None
        for record in located:
            mid, address, gateway_id = record[0], record[-2], record[-1]
            state = by_id.get(mid) or record[:-2]
            if type(state) is tuple:
                state = by_id[mid] = state_of(state)
            for key in ((gateway_id, address), (None, address)):
                other = by_address.get(key)
                by_address[key] = "ambiguous" if other and other is not state else state
        meters = (by_id, by_address, state_of)
        if meanwhile is None:
            return meters
        return meters, (done[0] if done else meanwhile())

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
        """A function turning a row of the meters' look-up into the meter's state (a list,
        see :meth:`_load_meter_states`), without touching the database (the few meter models
        are read here, before)."""
        cr = self.env.cr
        cr.execute("SELECT id, bidirectional, has_relay FROM prepaid_meter_model")
        model_flags = {model_id: (bidir, relay) for model_id, bidir, relay in cr.fetchall()}
        models = self.env["prepaid.meter.model"].with_context(active_test=False)
        limits = {model.id: model._limits() for model in models.browse(list(model_flags))}
        profiles, times = {}, {}
        decimal = Decimal

        def profile_of(text):
            """(company, multiplier, bidirectional, limits, relay target, plain, lost,
            actual relay) of a look-up's shared text (see _load_meter_states)."""
            profile = profiles.get(text)
            if profile is not None:
                return profile
            company_id, mult, model_id, target, connection, actual = text.split("|")
            if "." in mult:
                mult = mult.rstrip("0").rstrip(".")
            multiplier = decimal(mult or "1")
            model_id = int(model_id)
            bidir, has_relay = model_flags[model_id]
            profiles[text] = profile = (
                int(company_id),
                multiplier,
                bidir,
                limits[model_id],
                (target or None) if has_relay else None,
                multiplier == 1 and not bidir,
                connection == "lost",
                actual,
            )
            return profile

        def time_of(text):
            """The datetime of a look-up's baseline time (text)."""
            at = times.get(text)
            if at is None:
                at = times[text] = datetime.fromisoformat(text)
            return at

        def state_of(record):
            mid, latest_id, b_total, b_at, shared = record
            company_id, multiplier, bidir, limit, target, plain, lost, actual = profile_of(shared)
            if b_at is not None:
                b_at = time_of(b_at)
            return [
                mid,
                company_id,
                multiplier,
                bidir,
                limit,
                decimal(b_total) if b_at else None,
                b_at,
                latest_id,
                target,
                plain,
                lost,
                actual,
            ]

        # (for the fleet path of _validate_rows, which judges meters without their state)
        state_of.profile_of = profile_of
        state_of.time_of = time_of
        return state_of

    @api.model
    def _execute_meanwhile(self, query, work):
        """Execute ``query`` on this transaction's cursor from a helper thread while
        ``work()`` runs here, and return ``(the query's rows, work's result)`` once both are
        done (psycopg2 lets go of the interpreter while PostgreSQL works; the helper fetches
        the rows as soon as they are there, while ``work`` goes on).  Nothing else uses the
        cursor meanwhile: ``work`` must not touch the database."""
        failed, fetched = [], []

        def execute():
            try:
                self.env.cr.execute(query)
                fetched.append(self.env.cr.fetchall())
            except BaseException as exc:  # raised again in the caller thread
                failed.append(exc)

        helper = threading.Thread(target=execute, name="prepaid-ingest-meters", daemon=True)
        helper.start()
        try:
            result = work()
        finally:
            helper.join()
        if failed:
            raise failed[0]
        return fetched[0], result

    @api.model
    def _all_company_ids(self):
        self.env.cr.execute("SELECT id FROM res_company")
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _parse_time(self, value):
        """A read time (datetime, or ISO 8601 text; UTC unless it says otherwise) as a
        naive UTC datetime in whole seconds, within the range of
        :func:`prepaid_core.readings.check_time`; else ValueError."""
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

    @api.model
    def _rejection(self, index, row, reason, meter_id=None):
        name = validation.shown(row.get("address") or meter_id or row.get("meter_id"))
        _logger.warning("Reading rejected (%s): %s", name, reason)
        return {"index": index, "reason": reason, "meter_id": meter_id or row.get("meter_id")}

    @api.model
    def _copy_rows(self, validated, rejections, measures=(), table=STORE):
        """Write the validated rows with COPY as they come; on a duplicate already stored,
        fall back to INSERT .. ON CONFLICT and report the duplicates.  Returns the rows
        actually stored.  ``measures``: the measure columns of the batch, in ``R_MEASURED``;
        ``table``: the store or the partition all rows go to (:meth:`_ensure_partitions`)."""
        columns = BASE_COLUMNS + tuple(measures)

        def getter(row):
            return (*row[:R_MEASURED], *row[R_MEASURED])

        prepared = []

        def chunks():
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
            while True:
                rows = list(itertools.islice(validated, 2000))
                if not rows:
                    break
                prepared.extend(rows)
                lines = list(map(_LINE, rows))
                if None in lines:  # flagged rows whose reason the csv module quotes
                    for at, row in enumerate(rows):
                        if lines[at] is None:
                            writer.writerow(getter(row))
                            lines[at] = buffer.getvalue()
                            buffer.seek(0)
                            buffer.truncate()
                yield "".join(lines)
            yield ""

        cr = self.env.cr
        column_sql = ", ".join(columns)
        stream = _ChunkReader(chunks(), ahead=COPY_AHEAD)
        try:
            with cr.savepoint(flush=False):
                cr._obj.copy_expert(f"COPY {table} ({column_sql}) FROM STDIN {_CSV}", stream)
            stream.close()
            return prepared
        except psycopg2.errors.UniqueViolation:
            _logger.info("Batch holds readings already stored: inserting one by one")
            stream.drain()  # validate the rest: every row is judged exactly once
        finally:
            stream.close()
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
    def _update_meters(
        self, stored, meters, measures=(), after=None, table=STORE, state_of=None, followup=None
    ):
        """Each meter's latest state (``prepaid.meter.latest``) from the rows just stored, in
        one UPDATE of its narrow table.  ``meters``: the states of
        :meth:`_load_meter_states`, by meter id; ``measures``: the batch's, in
        ``R_MEASURED``; ``after``: see :meth:`_reading_id_mark` (a large batch of one row
        per meter: the UPDATE reads the rows from ``table``, nothing is sent again);
        ``state_of``: builds the state of a meter that ``meters`` still holds as its
        look-up row; ``followup``: the batch's :class:`_Followup`, if it was judged with one.

        Meters whose relay or connection state changes go through the ORM instead, so the
        change is logged as an event: the states read before the batch say which (the
        UPDATE of the same rows would fail on a concurrent change, repeatable read)."""
        if not stored:
            return
        self.env["prepaid.meter.latest"].flush_model()
        by_meter = {row[R_METER]: None for row in stored}
        changes = None
        if after is not None and len(by_meter) == len(stored):
            try:
                with self.env.cr.savepoint(flush=False):
                    changes = self._update_latest_from_store(stored, meters, after, table, followup)
            except _NotAllFound as exc:  # never seen: then the safe way
                _logger.warning("Latest states staged: %s", exc)
        if changes is None:
            if state_of is not None:  # (a fleet batch's meters judged without their state)
                for meter_id in by_meter:
                    if type(meters[meter_id]) is tuple:
                        meters[meter_id] = state_of(meters[meter_id])
            changes = self._update_latest_staged(stored, meters, measures, by_meter)
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
        # whole models: cheaper than browsing every meter of a large batch
        self.env["prepaid.meter.latest"].invalidate_model(fnames)
        self.env["prepaid.meter"].invalidate_model(fnames)
        meter_records = self.env["prepaid.meter"]
        for meter_id, relay, read_at, was_lost in changes:
            meter = meter_records.browse(meter_id)
            if was_lost:
                meter.connection_state = "online"
                meter._log_event("connection_restored")
            if relay and relay != meter.actual_relay_state:
                meter._record_actual_relay(relay, read_at)

    @api.model
    def _update_latest_staged(self, stored, meters, measures, by_meter):
        """The latest states of :meth:`_update_meters` through a staging table: each meter's
        newest row and baseline, in time order whatever the batch.  Returns the changes to
        log: ``(meter id, relay, read time, was lost)``."""
        nothing = (None,) * (R_MEASURED + 1 - R_LINE)
        if len(by_meter) == len(stored):  # one row per meter: it is the newest, or late
            newest = (
                (
                    row[R_METER],
                    nothing if row[R_FLAGS] and "late" in row[R_FLAGS] else row,
                    row if row[R_MOVES] else nothing,
                )
                for row in stored
            )
        else:
            latest, baseline = {}, {}
            for row in stored:  # each meter's rows are in time order
                flags = row[R_FLAGS]
                if not flags or "late" not in flags:
                    latest[row[R_METER]] = row
                if row[R_MOVES]:
                    baseline[row[R_METER]] = row
            newest = (
                (
                    meter_id,
                    latest.get(meter_id, nothing),
                    baseline.get(meter_id, nothing),
                )
                for meter_id in by_meter
            )
        at_power = measures.index("power") if "power" in measures else None
        at_balance = measures.index("meter_balance") if "meter_balance" in measures else None
        changes = []

        def chunks():
            """The staging rows, in chunks, produced while PostgreSQL copies the previous."""
            lines = []
            for meter_id, row, base in newest:
                state = meters[meter_id]
                measured = row[R_MEASURED]
                power = None if at_power is None or measured is None else measured[at_power]
                balance = None if at_balance is None or measured is None else measured[at_balance]
                relay = row[R_RELAY]
                actual = state[M_ACTUAL_RELAY]
                if state[M_LOST] or (relay is not None and actual != "unknown" and actual != relay):
                    changes.append((meter_id, relay, row[R_READ_AT], state[M_LOST]))
                # the relay is judged only when it is reported for the first time
                target = state[M_RELAY_TARGET]
                mismatch = relay is not None and target is not None and relay != target
                reverse = row[R_REVERSE]
                if base is row and row is not nothing:  # the newest is the baseline: most
                    base_total = base_at = ""
                    same = "t"
                else:
                    base_total = "" if base[R_TOTAL] is None else str(base[R_TOTAL])
                    base_at = base[R_READ_AT_TEXT] or ""
                    same = "f"
                lines.append(
                    f"{state[M_LATEST]}\t{row[R_READ_AT_TEXT] or ''}"
                    f"\t{'' if row[R_TOTAL] is None else row[R_TOTAL]}"
                    f"\t{'' if row[R_FORWARD] is None else row[R_FORWARD]}"
                    f"\t{'' if reverse is None else reverse}"
                    f"\t{'' if power is None else repr(power)}"
                    f"\t{'' if balance is None else repr(balance)}"
                    f"\t{relay or ''}\t{same}\t{base_total}\t{base_at}"
                    f"\t{'t' if mismatch else 'f'}\n"
                )
                if len(lines) == 4000:
                    yield "".join(lines)
                    lines.clear()
            yield "".join(lines)

        now = fields.Datetime.now()
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
            f"COPY prepaid_meter_latest_staging FROM STDIN {_CSV}", _ChunkReader(chunks())
        )
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
                   last_meter_balance = COALESCE(s.meter_balance, l.last_meter_balance),
                   baseline_total = CASE WHEN s.same_baseline THEN s.total
                                         ELSE COALESCE(s.baseline_total, l.baseline_total) END,
                   baseline_at = CASE WHEN s.same_baseline THEN s.read_at
                                      ELSE COALESCE(s.baseline_at, l.baseline_at) END,
"""
            + _LATEST_CONTACT_AND_RELAY
            + """
              FROM prepaid_meter_latest_staging s
             WHERE l.id = s.latest_id
            """,
            {"now": now},
        )
        if large:
            cr.execute("SET LOCAL enable_nestloop = on")
        return changes

    @api.model
    def _update_latest_from_store(self, stored, meters, after, table=STORE, followup=None):
        """The latest states of :meth:`_update_meters` for a batch of one row per meter,
        read back from ``table`` (the rows of this transaction numbered after ``after``),
        joined to the states by meter (``prepaid.meter.latest.meter_id``: the meters' wide
        table is not read): only the few meters whose row is late, keeps the baseline, or
        reports a relay other than asked are named.  Returns the changes to log, as
        :meth:`_update_latest_staged`.  ``followup``: those meters, gathered as the rows
        were judged (:class:`_Followup`); else found here."""
        if followup is None:
            followup = _Followup()
            for row in stored:
                meter_id = row[R_METER]
                followup.add(
                    meters[meter_id],
                    meter_id,
                    row[R_READ_AT],
                    row[R_FLAGS],
                    row[R_MOVES],
                    row[R_RELAY],
                )
        elif followup.changes:  # (of the rows stored: not of a duplicate refused by the store)
            stored_ids = {row[R_METER] for row in stored}
            followup.changes = [c for c in followup.changes if c[0] in stored_ids]
        late, kept, mismatched, changes = (
            followup.late,
            followup.kept,
            followup.mismatched,
            followup.changes,
        )
        cr = self.env.cr
        large = len(stored) > LARGE_BATCH
        if large:  # the planner cannot tell how many rows follow ``after``: hash joins
            cr.execute("SET LOCAL enable_nestloop = off")
        cr.execute(
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
            """.format(
                table=table,
                # none late, kept or mismatched (most batches): constants, which PostgreSQL
                # folds into the SET clauses instead of testing every row
                **{
                    name: f"r.meter_id = ANY(%({name})s::int[])" if ids else "false"
                    for name, ids in (("late", late), ("kept", kept), ("mismatched", mismatched))
                },
            ),
            {
                "now": fields.Datetime.now(),
                "after": after,
                "received": stored[0][R_RECEIVED],
                "late": late,
                "kept": kept,
                "mismatched": mismatched,
            },
        )
        if cr.rowcount != len(stored):
            raise _NotAllFound(f"{cr.rowcount} rows of the store for {len(stored)} meters")
        if large:
            cr.execute("SET LOCAL enable_nestloop = on")
        return changes

    @api.model
    def _reading_id_mark(self):
        """A number below the ids of the readings this transaction stores next, above those
        of every reading it can see stored by others -- or None when the transaction's
        isolation does not guarantee it (then the latest states are staged)."""
        cr = self.env.cr
        cr.execute(
            """
            SELECT nextval(s.seqrelid), current_setting('transaction_isolation'), s.seqcache
              FROM pg_sequence s
             WHERE s.seqrelid = pg_get_serial_sequence(%s, 'id')::regclass
            """,
            [STORE],
        )
        mark, isolation, cache = cr.fetchone()
        # a snapshot taken before this number was drawn shows no other transaction's later
        # rows (a sequence without cache hands numbers out in order)
        ordered = isolation in ("repeatable read", "serializable") and cache == 1
        return mark if ordered else None

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
