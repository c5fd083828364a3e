"""M5: the raw interval readings store.

Volume decides the design: 100,000 meters read every 30 minutes are 4.8 million rows a day.
So this table is narrow (no create/write log columns, no chatter), indexed on
``(meter_id, read_at)`` (unique: a meter has one reading per instant) and with a BRIN index on
``read_at``, and it is filled by :meth:`PrepaidMeterReading._ingest`, which validates a whole
batch in Python (``prepaid_core.readings``), writes it with PostgreSQL ``COPY`` and updates
each meter's latest state in one statement.  Each day is frozen into
``prepaid.meter.reading.daily`` and raw rows older than the retention period are purged.

The ORM ``create`` runs the same validation for readings entered by hand.
"""

import io
import logging
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

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
#: columns written by COPY, in order
COPY_COLUMNS = (
    "meter_id",
    "company_id",
    "read_at",
    "received_at",
    "source",
    "forward_total",
    "reverse_total",
    "total",
    "consumption",
    *MEASURES,
    "relay_state",
    "status_word",
    "flags",
    "flag_reason",
    "chargeable",
)


def _copy_value(value):
    if value is None or value is False:
        return r"\N"
    if value is True:
        return "t"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value).replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


class PrepaidMeterReading(models.Model):
    _name = "prepaid.meter.reading"
    _description = "Meter Reading"
    _order = "read_at desc, id desc"
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

    _meter_read_uniq = models.UniqueIndex(
        "(meter_id, read_at)", "A meter has one reading per instant: this one is a duplicate."
    )
    _read_at_brin = models.Index("USING brin (read_at)")

    # === ORM PATH (manual entry, small batches) === #
    @api.model_create_multi
    def create(self, vals_list):
        rows = [dict(vals, source=vals.get("source", "manual")) for vals in vals_list]
        prepared, rejections = self._prepare_batch(rows)
        if rejections:
            raise UserError("\n".join(r["reason"] for r in rejections))
        for row in prepared:
            vals_list[row["_index"]].update(
                {key: value for key, value in row.items() if not key.startswith("_")}
            )
        records = super().create(vals_list)
        self._update_meters(prepared)
        return records

    # === BULK PATH === #
    @api.model
    def _ingest(self, rows, source="push"):
        """Validate and store a batch of readings; return what happened to each.

        ``rows``: mappings with ``meter_id`` or ``address`` (and ``gateway_id`` when addresses
        repeat across gateways), ``read_at`` (datetime or ISO string, UTC), ``forward_total``,
        and optionally ``reverse_total``, ``relay_state`` ('on'/'off'), ``status_word`` and the
        measures of :data:`MEASURES`.

        Returns ``{'stored': n, 'flagged': n, 'rejected': [{'index', 'reason', ...}]}``.
        Rejected rows (unknown meter, bad value, duplicate) are logged and kept in
        ``prepaid.meter.reading.rejection``: nothing is dropped silently.
        """
        rows = [dict(row, source=row.get("source", source)) for row in rows]
        prepared, rejections = self._prepare_batch(rows)
        stored = self._copy_rows(prepared, rejections)
        self._update_meters(stored)
        if rejections:
            self.env["prepaid.meter.reading.rejection"]._record(rejections, rows)
        return {
            "stored": len(stored),
            "flagged": sum(1 for row in stored if row["flags"]),
            "rejected": rejections,
        }

    @api.model
    def _prepare_batch(self, rows):
        """Resolve meters, parse values and validate; returns (prepared rows, rejections).

        Rows are validated in time order per meter, each against the previous accepted one.
        """
        meters = self._load_meter_states(rows)
        now = fields.Datetime.now()
        prepared, rejections = [], []
        keyed = []
        for index, row in enumerate(rows):
            meter = meters["by_id"].get(row.get("meter_id")) or meters["by_address"].get(
                (row.get("gateway_id"), row.get("address"))
            )
            if meter is None:
                meter = meters["by_address"].get((None, row.get("address")))
            if meter is None:
                rejections.append(self._rejection(index, row, self.env._("Unknown meter.")))
                continue
            if meter == "ambiguous":
                rejections.append(
                    self._rejection(
                        index,
                        row,
                        self.env._(
                            "Address %s is used on several gateways: name the gateway.",
                            row.get("address"),
                        ),
                    )
                )
                continue
            try:
                read_at = self._parse_time(row.get("read_at"))
                forward = validation.to_quantity(row.get("forward_total"), "forward_total")
                reverse = (
                    validation.to_quantity(row["reverse_total"], "reverse_total")
                    if row.get("reverse_total") is not None
                    else None
                )
                measures = {
                    name: float(row[name])
                    for name in MEASURES
                    if row.get(name) is not None and row.get(name) is not False
                }
            except (validation.ReadingError, ValueError, TypeError) as exc:
                rejections.append(self._rejection(index, row, str(exc), meter["id"]))
                continue
            relay = row.get("relay_state") or None
            if relay not in (None, "on", "off"):
                rejections.append(
                    self._rejection(index, row, f"relay_state: {relay!r} is not 'on' or 'off'")
                )
                continue
            keyed.append((meter["id"], read_at, index, row, forward, reverse, measures, relay))
        keyed.sort(key=lambda item: (item[0], item[1]))
        previous = None
        for meter_id, read_at, index, row, forward, reverse, measures, relay in keyed:
            meter = meters["by_id"][meter_id]
            if previous == (meter_id, read_at):
                rejections.append(
                    self._rejection(index, row, self.env._("Duplicate reading."), meter_id)
                )
                continue
            previous = (meter_id, read_at)
            total = validation.effective_total(
                forward, reverse, meter["bidirectional"], meter["multiplier"]
            )
            verdict = validation.validate(
                meter["baseline_total"],
                meter["baseline_at"],
                total,
                read_at,
                meter["limits"],
                meter["multiplier"],
            )
            if verdict.moves_baseline:
                meter["baseline_total"], meter["baseline_at"] = total, read_at
            prepared.append(
                {
                    "meter_id": meter_id,
                    "company_id": meter["company_id"],
                    "read_at": read_at,
                    "received_at": now,
                    "source": row["source"],
                    "forward_total": forward,
                    "reverse_total": reverse,
                    "total": total,
                    "consumption": verdict.consumption,
                    **measures,
                    "relay_state": relay,
                    "status_word": row.get("status_word"),
                    "flags": ",".join(verdict.flags) or False,
                    "flag_reason": verdict.reason or False,
                    "chargeable": verdict.chargeable,
                    "_moves_baseline": verdict.moves_baseline,
                    "_index": index,
                }
            )
        return prepared, rejections

    @api.model
    def _load_meter_states(self, rows):
        ids = {row["meter_id"] for row in rows if row.get("meter_id")}
        addresses = {
            row["address"] for row in rows if row.get("address") and not row.get("meter_id")
        }
        self.env["prepaid.meter"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT m.id, m.address, m.gateway_id, m.company_id, m.multiplier,
                       m.baseline_total, m.baseline_at, mm.id, mm.bidirectional
                  FROM prepaid_meter m
                  JOIN prepaid_meter_model mm ON mm.id = m.model_id
                 WHERE m.state != 'removed'
                   AND (m.id = ANY(%s) OR m.address = ANY(%s))
                   AND m.company_id = ANY(%s)
                """,
                list(ids),
                list(addresses),
                self.env.companies.ids if not self.env.su else self._all_company_ids(),
            )
        )
        limits = {}
        by_id, by_address = {}, {}
        models = self.env["prepaid.meter.model"]
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
        ) in self.env.cr.fetchall():
            if model_id not in limits:
                limits[model_id] = models.browse(model_id)._limits()
            multiplier = Decimal(str(mult or 1))
            state = {
                "id": mid,
                "company_id": company_id,
                "multiplier": multiplier,
                "bidirectional": bidir,
                "limits": limits[model_id],
                "baseline_total": Decimal(str(b_total)) if b_at else None,
                "baseline_at": b_at,
            }
            by_id[mid] = state
            if address:
                for key in ((gateway_id, address), (None, address)):
                    by_address[key] = "ambiguous" if key in by_address else state
        return {"by_id": by_id, "by_address": by_address}

    @api.model
    def _all_company_ids(self):
        self.env.cr.execute("SELECT id FROM res_company")
        return [row[0] for row in self.env.cr.fetchall()]

    @api.model
    def _parse_time(self, value):
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
    def _copy_rows(self, prepared, rejections):
        """Write rows with COPY; on a duplicate fall back to INSERT .. ON CONFLICT and report
        the duplicates.  Returns the rows actually stored."""
        if not prepared:
            return []
        buffer = io.StringIO()
        buffer.writelines(
            "\t".join(_copy_value(row.get(col)) for col in COPY_COLUMNS) + "\n" for row in prepared
        )
        cr = self.env.cr
        columns = ", ".join(COPY_COLUMNS)
        try:
            with cr.savepoint(flush=False):
                buffer.seek(0)
                cr._obj.copy_expert(f"COPY prepaid_meter_reading ({columns}) FROM STDIN", buffer)
            return prepared
        except psycopg2.errors.UniqueViolation:
            _logger.info("Batch holds readings already stored: inserting one by one")
        cr.execute(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_reading_staging "
            "(LIKE prepaid_meter_reading INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        cr.execute("TRUNCATE prepaid_meter_reading_staging")
        buffer.seek(0)
        cr._obj.copy_expert(f"COPY prepaid_meter_reading_staging ({columns}) FROM STDIN", buffer)
        column_list = SQL(", ").join(SQL.identifier(col) for col in COPY_COLUMNS)
        cr.execute(
            SQL(
                """
                INSERT INTO prepaid_meter_reading (%s)
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
        for row in prepared:
            if (row["meter_id"], row["read_at"]) in inserted:
                stored.append(row)
            else:
                rejections.append(
                    self._rejection(
                        row["_index"], row, self.env._("Duplicate reading."), row["meter_id"]
                    )
                )
        return stored

    @api.model
    def _update_meters(self, stored):
        """Each meter's latest state from the rows just stored, in one UPDATE.

        Meters whose relay or connection state changes go through the ORM instead, so the
        change is tracked in their chatter and logged as an event."""
        if not stored:
            return
        latest, baseline = {}, {}
        for row in stored:  # rows are sorted by (meter, time)
            if "late" not in (row["flags"] or ""):
                latest[row["meter_id"]] = row
            if row["_moves_baseline"]:
                baseline[row["meter_id"]] = row
        now = fields.Datetime.now()
        meter_ids = list({row["meter_id"] for row in stored})
        cr = self.env.cr
        buffer = io.StringIO()
        for meter_id in meter_ids:
            row = latest.get(meter_id) or {}
            base = baseline.get(meter_id) or {}
            buffer.write(
                "\t".join(
                    _copy_value(v)
                    for v in (
                        meter_id,
                        row.get("read_at"),
                        row.get("total"),
                        row.get("forward_total"),
                        row.get("reverse_total"),
                        row.get("power"),
                        row.get("meter_balance"),
                        base.get("total"),
                        base.get("read_at"),
                    )
                )
                + "\n"
            )
        buffer.seek(0)
        self.env["prepaid.meter"].flush_model()
        cr.execute(
            """
            CREATE TEMP TABLE IF NOT EXISTS prepaid_meter_latest_staging (
                meter_id int, read_at timestamp, total numeric, forward_total numeric,
                reverse_total numeric, power numeric, meter_balance numeric,
                baseline_total numeric, baseline_at timestamp
            ) ON COMMIT DROP
            """
        )
        cr.execute("TRUNCATE prepaid_meter_latest_staging")
        cr._obj.copy_expert("COPY prepaid_meter_latest_staging FROM STDIN", buffer)
        cr.execute(
            SQL(
                """
                UPDATE prepaid_meter m
                   SET last_reading_at = COALESCE(s.read_at, m.last_reading_at),
                       last_total = COALESCE(s.total, m.last_total),
                       last_forward_total = COALESCE(s.forward_total, m.last_forward_total),
                       last_reverse_total = COALESCE(s.reverse_total, m.last_reverse_total),
                       last_power = COALESCE(s.power, m.last_power),
                       last_meter_balance = COALESCE(s.meter_balance, m.last_meter_balance),
                       baseline_total = COALESCE(s.baseline_total, m.baseline_total),
                       baseline_at = COALESCE(s.baseline_at, m.baseline_at),
                       last_contact_at = %(now)s,
                       connection_state = CASE WHEN m.connection_state = 'never'
                                               THEN 'online' ELSE m.connection_state END
                  FROM prepaid_meter_latest_staging s
                 WHERE m.id = s.meter_id
                """,
                now=now,
            )
        )
        meters = self.env["prepaid.meter"].browse(meter_ids)
        meters.invalidate_recordset(
            [
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
            ]
        )
        # the few meters whose relay or connection changed: through the ORM, with events
        relay_by_meter = {
            mid: row["relay_state"] for mid, row in latest.items() if row["relay_state"]
        }
        cr.execute(
            """
            SELECT id, actual_relay_state, connection_state FROM prepaid_meter
             WHERE id = ANY(%s) AND (connection_state = 'lost' OR id = ANY(%s))
            """,
            [meter_ids, list(relay_by_meter)],
        )
        for meter_id, actual, connection in cr.fetchall():
            meter = meters.browse(meter_id)
            if connection == "lost":
                meter.connection_state = "online"
                meter._log_event("connection_restored")
            relay = relay_by_meter.get(meter_id)
            if relay and relay != actual:
                meter._record_actual_relay(relay, latest[meter_id]["read_at"])

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
