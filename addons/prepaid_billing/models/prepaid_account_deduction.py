import csv
import io
import json
import logging
from decimal import Decimal
from typing import NamedTuple

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, groupby

from odoo.addons.prepaid_meter.utils import again_if_changed

from prepaid_core import deduction
from prepaid_core import tariff as engine
from prepaid_core.readings import REGISTER_BANDS

from ..const import (
    DEDUCTION_BATCH_SIZE,
    DEDUCTION_LOCK_KEY,
    DEDUCTION_SHARDS_DEFAULT,
    DEDUCTION_SHARDS_PARAM,
)

_logger = logging.getLogger(__name__)

#: times a batch of the scheduled action is started again when its rows change meanwhile
DEDUCTION_TRIES = 5

#: COPY options: tab-separated CSV (quoting by the csv module); empty is NULL
COPY_CSV = "WITH (FORMAT csv, DELIMITER E'\\t', NULL '')"
#: the TOU registers of a reading, as text, named after their band
REGISTERS_SQL = SQL(
    "r.tou_sharp::text AS sharp, r.tou_peak::text AS peak, r.tou_flat::text AS flat, "
    "r.tou_valley::text AS valley"
)


class BatchTariff(NamedTuple):
    """A tariff of a deduction batch, compiled once for all its meters."""

    record: models.Model
    pricer: engine.CompiledTariff
    cycle: tuple  # settlement cycle: a cycle state carries over between equal cycles
    registers: bool  # time-of-use: priced from the meters' TOU registers when they have them
    utility: str  # what it prices (read once a batch, not once a meter)


class MeterCursorRow(NamedTuple):
    """A meter's charging cursor after a batch, in the column order of its staging table."""

    meter_id: int
    charged_until: object
    base_at: object
    cycle_state: str | None  # JSON
    tariff_id: int
    charged: Decimal  # money charged for the meter's new intervals


class PrepaidAccount(models.Model):
    """B3 deductions: the scheduled run charges every meter's new readings by its tariff into
    one consumption line per account and day, in batches of meters (R11: a batch is charged
    whole or not at all, and a reading once). Each batch loads (SQL), prices (the pure
    engine, :mod:`prepaid_core.deduction`) and stores (COPY into staging tables)."""

    _inherit = "prepaid.account"

    # === THE RUN (R11), SPLIT BY SHARD === #
    @api.model
    def _cron_deduct(self, batch_size=DEDUCTION_BATCH_SIZE):
        return self._run_deductions(batch_size=batch_size, commit=True)

    @api.model
    def action_run_deductions(self):
        count = self._run_deductions(manual=True)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("%(count)s readings charged.", count=count),
                "type": "success",
            },
        }

    @api.model
    def _run_deductions(
        self, meter_ids=None, batch_size=DEDUCTION_BATCH_SIZE, commit=False, manual=False
    ):
        """Charge every chargeable reading not yet charged; return how many were charged.

        The accounts are split into shards (account id modulo the shard count, system
        parameter :data:`DEDUCTION_SHARDS_PARAM`), each charged under its own PostgreSQL
        advisory lock: a run takes the shards still free and skips the others, so the cron
        workers of several Odoo nodes charge the shards side by side, each reading once. A
        manual run is refused when a shard it needs is being charged right now.
        Each batch of meters is one savepoint (and, from the scheduled action, one commit
        through ``ir.cron._commit_progress``): ledger lines, balances and the meters'
        charged-until cursors move together, so a run killed in a batch leaves that batch as
        it was and the next run charges it, once."""
        count = self._deduction_shard_count()
        if manual:
            self._deduction_lock_all(count, meter_ids)
        # the meters to charge, found once a run (a reading stored after this is charged
        # with them, or asks for the next run): each shard's batches read them again
        # under its lock
        candidates = self._deduction_candidates(meter_ids, count)
        charged = 0
        for shard in range(count):
            ids = candidates.get(shard)
            if not ids:
                continue
            if not manual and not self._deduction_lock(shard):
                _logger.info("Deduction shard %s skipped: another run holds it.", shard)
                continue
            charged += self._deduct_shard(shard, ids, batch_size, commit)
        return charged

    @api.model
    def _deduct_shard(self, shard, ids, batch_size, commit):
        """Charge ``ids`` (meters of ``shard``, whose lock this transaction holds) batch by
        batch; return how many readings were charged."""
        charged, remaining = 0, len(ids)
        for start in range(0, len(ids), batch_size):
            # the lock is a transaction lock: each committed batch takes it again, and a run
            # that finds it taken by another one leaves the shard (that one charges the rest)
            if start and not self._deduction_lock(shard):
                _logger.info("Deduction shard %s left: another run took it over.", shard)
                break
            batch = ids[start : start + batch_size]
            if commit:
                done = self._deduct_batch_again_if_changed(shard, batch)
                if done is None:
                    _logger.info("Deduction shard %s left: another run took it over.", shard)
                    break
                charged += done
            else:
                with self.env.cr.savepoint():
                    charged += self._deduct_batch(batch)
            remaining -= len(batch)
            if commit:
                self.env["ir.cron"]._commit_progress(len(batch), remaining=remaining)
        return charged

    @api.model
    def _deduct_batch_again_if_changed(self, shard, batch, tries=DEDUCTION_TRIES):
        """Charge ``batch`` in this transaction; when one of its accounts or meters was
        changed meanwhile by another transaction (a recharge, the forecast, a relay
        command...), the batch is undone and started again with a new snapshot under the
        shard's lock taken again, instead of failing the whole run: on a busy site the
        charging and the desk never stop.  None when another run took the shard meanwhile."""

        def charge():
            with self.env.cr.savepoint():
                return self._deduct_batch(batch)

        def lock_again():
            _logger.info("Deduction shard %s: a batch changed meanwhile, again", shard)
            return self._deduction_lock(shard)

        return again_if_changed(self.env, charge, tries, lock_again)

    @api.model
    def _deduction_crons(self):
        """The active scheduled actions running the deduction: one per cron worker that may
        charge shards at the same time (Odoo runs a scheduled action in one worker at a
        time; a copy of it is one more worker)."""
        return self.env["ir.cron"]._copies_of("_cron_deduct")

    @api.model
    def _deduction_shard_count(self):
        """How many shards the deduction run splits the accounts into (at least one)."""
        value = self.env["ir.config_parameter"].sudo().get_param(DEDUCTION_SHARDS_PARAM)
        try:
            return max(int(value), 1) if value else DEDUCTION_SHARDS_DEFAULT
        except ValueError:
            _logger.warning("%s is not a number: %r", DEDUCTION_SHARDS_PARAM, value)
            return DEDUCTION_SHARDS_DEFAULT

    @api.model
    def _deduction_lock(self, shard=0):
        """Take the lock of ``shard`` for this transaction (R11); False if another run
        has it."""
        query = SQL("SELECT pg_try_advisory_xact_lock(%s, %s) AS locked", DEDUCTION_LOCK_KEY, shard)
        return self.env.execute_query_dict(query)[0]["locked"]

    @api.model
    def _deduction_lock_all(self, count, meter_ids=None):
        """Take the locks of the shards a manual run charges (every shard, or those of
        ``meter_ids``' accounts); refuse the run if one of them is being charged."""
        if meter_ids is None:
            shards = range(count)
        else:
            shards = sorted(self._deduction_shards(meter_ids, count))
        if not all(self._deduction_lock(shard) for shard in shards):
            raise UserError(
                self.env._("Deductions are being charged right now; try again in a moment.")
            )

    @api.model
    def _deduction_shards(self, meter_ids, count):
        """``{shard}`` of the meters ``meter_ids`` (see :meth:`_deduction_candidates`)."""
        query = SQL(
            "SELECT DISTINCT %s AS shard FROM prepaid_meter m WHERE m.id = ANY(%s)",
            self._deduction_shard_sql(count),
            list(meter_ids),
        )
        return {row["shard"] for row in self.env.execute_query_dict(query)}

    @api.model
    def _deduction_shard_sql(self, count):
        """The shard of meter ``m``: its open account's id modulo ``count`` (0 for a meter
        without one, which is not charged); every meter of an account is in its shard."""
        return SQL(
            """
            COALESCE((SELECT a.id FROM prepaid_tenancy t
                        JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
                       WHERE t.unit_id = m.unit_id AND t.state = 'open'
                       ORDER BY a.id LIMIT 1), 0) %% %s
            """,
            count,
        )

    @api.model
    def _deduction_candidates(self, meter_ids=None, count=1):
        """``{shard: [meter id]}`` (ids in order) of the meters with a reading newer than
        what they are charged up to, split into ``count`` shards; in one query, whatever
        the number of shards."""
        self.env["prepaid.meter"].flush_model()
        self.env["prepaid.meter.latest"].flush_model()
        query = SQL(
            """
            SELECT m.id, %s AS shard FROM prepaid_meter m
              JOIN prepaid_meter_latest l ON l.id = m.latest_id
             WHERE m.state != 'draft' AND l.last_reading_at IS NOT NULL
               AND (m.billing_charged_until IS NULL
                    OR l.last_reading_at > m.billing_charged_until)
               AND %s
             ORDER BY m.id
            """,
            self._deduction_shard_sql(count),
            SQL("m.id = ANY(%s)", list(meter_ids)) if meter_ids is not None else SQL("TRUE"),
        )
        candidates = {}
        for row in self.env.execute_query_dict(query):
            candidates.setdefault(row["shard"], []).append(row["id"])
        return candidates

    # === ONE BATCH: LOAD -> PRICE -> STORE === #
    @api.model
    def _deduct_batch(self, meter_ids):
        """Price the new readings of ``meter_ids``; write ledger, balances and cursors."""
        meters = self._deduct_load_meters(meter_ids)
        if not meters:
            return 0
        tariffs = self._deduct_load_tariffs(meters)
        readings = self._deduct_load_readings(meters, tariffs)
        books, cursors, charged = self._deduct_price(meters, tariffs, readings)
        self._deduct_store_lines(books)
        self._deduct_store_meters(cursors)
        meter_model = self.env["prepaid.meter"]
        meter_model.browse([row.meter_id for row in cursors])._evaluate_alarms(siblings=True)
        meter_model.browse(
            [row.meter_id for row in cursors if meters[row.meter_id]["billing_mode"] == "meter"]
        )._reconcile_meter_balance()
        return charged

    # --- load --- #
    @api.model
    def _deduct_load_meters(self, meter_ids):
        """``{meter id: row}`` of the meters of an open account whose tariff prices them,
        their accounts locked (the balances move in this transaction). A meter whose preset
        credit the account took over is charged from its first reading (B7: the preset paid
        for that use), any other one from the tenancy's start (``opened``)."""
        query = SQL(
            """
            SELECT m.id AS meter_id, a.id AS account_id, a.company_id,
                   m.billing_charged_until AS charged_until, m.billing_base_at AS base_at,
                   m.billing_state AS cycle_state, m.billing_tariff_id AS cycle_tariff_id,
                   pt.id AS tariff_id, m.billing_mode,
                   CASE WHEN m.preset_account_id = a.id THEN NULL
                        ELSE t.date_start::timestamp END AS opened,
                   COALESCE(m.multiplier, 1)::text AS multiplier
              FROM unnest(%s::int4[]) AS b(id)
              -- the batch's meters, tenancies and accounts by their indexes (a batch reads
              -- its own rows whatever the size of the fleet)
              JOIN prepaid_meter m ON m.id = b.id
              JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
              JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
              -- only a tariff of the meter's utility prices it (a water meter on an account
              -- with an electricity tariff waits for a water tariff of its own)
              LEFT JOIN prepaid_tariff pt
                ON pt.id = COALESCE(m.tariff_id, a.tariff_id) AND pt.utility = m.utility
             ORDER BY a.id, m.id
               FOR UPDATE OF a
            """,
            list(meter_ids),
        )
        return {
            row["meter_id"]: row for row in self.env.execute_query_dict(query) if row["tariff_id"]
        }

    @api.model
    def _deduct_load_tariffs(self, meters):
        """``{tariff id: BatchTariff}`` of the tariffs pricing ``meters``."""
        records = (
            self.env["prepaid.tariff"].sudo().browse({row["tariff_id"] for row in meters.values()})
        )
        return {
            record.id: BatchTariff(
                record,
                record._compiled(),
                (record.cycle_period, record.billing_day, record.billing_month),
                any(record.version_ids.mapped("use_tou")),
                record.utility,
            )
            for record in records
        }

    @api.model
    def _deduct_load_readings(self, meters, tariffs):
        """``{meter id: [Reading]}``: each meter's readings after its charged-until cursor,
        in time order; TOU registers only for meters on a time-of-use tariff."""
        ids = list(meters)
        query = SQL(
            """
            SELECT r.meter_id, r.read_at, r.consumption::text AS consumption, r.chargeable,
                   r.flags, %s
              FROM unnest(%s::int4[], %s::timestamp[]) AS c(meter_id, since)
              -- each meter's readings from its (meter, time) index, so that a batch reads
              -- its own readings whatever the size of the store (OFFSET 0: kept a
              -- subquery, not flattened into a join that may scan the store)
             CROSS JOIN LATERAL (
                   SELECT * FROM prepaid_meter_reading_store s
                    WHERE s.meter_id = c.meter_id
                      AND s.read_at > COALESCE(c.since, '-infinity')
                   OFFSET 0) r
             ORDER BY r.meter_id, r.read_at
            """,
            REGISTERS_SQL,
            ids,
            [meters[i]["charged_until"] for i in ids],
        )
        readings = {}
        for meter_id, rows in groupby(self.env.execute_query_dict(query), lambda r: r["meter_id"]):
            registers = tariffs[meters[meter_id]["tariff_id"]].registers
            readings[meter_id] = [
                deduction.Reading(
                    row["read_at"],
                    Decimal(row["consumption"]) if row["consumption"] else deduction.ZERO,
                    row["chargeable"],
                    bool(row["flags"] and "baseline" in row["flags"]),
                    {band: row[band] for band in REGISTER_BANDS} if registers else None,
                )
                for row in rows
            ]
        return readings

    @api.model
    def _deduct_base_registers(self, meters, readings):
        """``{meter id: registers}`` at the reading each meter's next interval starts at,
        for the meters whose new readings have registers at all (most fleets report none,
        or all of them)."""
        ids = [
            meter_id
            for meter_id, rows in readings.items()
            if meters[meter_id]["base_at"]
            and any(row.registers and any(row.registers.values()) for row in rows)
        ]
        if not ids:
            return {}
        query = SQL(
            """
            SELECT r.meter_id, %s
              FROM unnest(%s::int4[], %s::timestamp[]) AS c(meter_id, base)
              JOIN prepaid_meter_reading_store r
                ON r.meter_id = c.meter_id AND r.read_at = c.base
            """,
            REGISTERS_SQL,
            ids,
            [meters[i]["base_at"] for i in ids],
        )
        return {
            row["meter_id"]: {band: row[band] for band in REGISTER_BANDS}
            for row in self.env.execute_query_dict(query)
        }

    # --- price --- #
    @api.model
    def _deduct_price(self, meters, tariffs, readings):
        """Price each meter's new intervals; return the day books, the meters' new cursors
        (:class:`MeterCursorRow`) and how many readings were charged."""
        base_registers = self._deduct_base_registers(meters, readings)
        books, cursors, charged = {}, [], 0
        for meter_id, meter_readings in readings.items():
            meter = meters[meter_id]
            tariff = tariffs[meter["tariff_id"]]
            priced = self._deduct_price_meter(
                meter, tariff, tariffs, meter_readings, base_registers.get(meter_id)
            )
            if priced is None:
                continue
            new, run = priced
            account_id, company_id = meter["account_id"], meter["company_id"]
            deduction.book_run(books, account_id, company_id, meter_id, new, run, tariff.utility)
            charged += len(new.intervals)
            state = json.dumps(run.state.to_json()) if run.state is not None else None
            cursors.append(
                MeterCursorRow(
                    meter_id,
                    new.charged_until,
                    new.base_at,
                    state,
                    meter["tariff_id"],
                    run.amount,
                )
            )
        return books, cursors, charged

    @api.model
    def _deduct_price_meter(self, meter, tariff, tariffs, readings, base_registers):
        """``(NewIntervals, PricedRun)`` of one meter, or None when its tariff cannot price
        them (logged; the meter is left as it was, to be charged once its tariff is fixed)."""
        state = self._deduct_cycle_state(meter, tariff, tariffs)
        cursor = deduction.MeterCursor(
            meter["charged_until"],
            meter["base_at"],
            state.priced_until if state is not None else None,
            base_registers,
        )
        new = deduction.new_intervals(
            readings, cursor, meter["opened"], tariff.record._local, Decimal(meter["multiplier"])
        )
        try:
            run = tariff.pricer.price_run(state, new.intervals, split_unpriced=True)
        except engine.TariffError as exc:
            _logger.warning("Meter %s not charged: %s", meter["meter_id"], exc)
            return None
        return new, run

    @api.model
    def _deduct_cycle_state(self, meter, tariff, tariffs):
        """The meter's stored settlement-cycle state, if it is one of its tariff's cycle (a
        tariff change within the same cycle keeps it, B3); else None (a new cycle)."""
        stored = meter["cycle_state"]
        if not stored:
            return None
        before = tariffs.get(meter["cycle_tariff_id"])
        if meter["cycle_tariff_id"] == meter["tariff_id"] or (
            before is not None and before.cycle == tariff.cycle
        ):
            return engine.CycleState.from_json(stored)
        return None

    # --- store --- #
    @api.model
    def _deduct_store_lines(self, books):
        """One consumption line per account and day, created or added to; balances moved."""
        if not books:
            return
        existing = self._deduct_existing_lines(books)
        inserts, updates = [], {}
        for key, book in books.items():
            old = existing.get(key)
            if old is not None:
                updates[old["id"]] = book.added_to(
                    deduction.ConsumptionLine(
                        Decimal(old["amount"]),
                        Decimal(old["quantity"] or 0),
                        old["reading_from"],
                        old["reading_to"],
                        old["reading_count"],
                        old["detail"],
                    )
                )
            elif book.amount:
                inserts.append((key, book))
        self._deduct_insert_lines(inserts)
        self._deduct_update_lines(updates)
        self._deduct_move_balances(deduction.balance_moves(books))
        self.browse(list({key[0] for key in books})).invalidate_recordset(
            ["balance", "available_credit", "preset_outstanding"]
        )
        self.env["prepaid.account.line"].invalidate_model()

    @api.model
    def _deduct_existing_lines(self, books):
        """``{(account id, day): row}`` of the consumption lines the day books add to."""
        query = SQL(
            """
            SELECT id, account_id, date, amount::text AS amount, quantity::text AS quantity,
                   reading_from, reading_to, reading_count, detail
              FROM prepaid_account_line
             WHERE kind = 'deduction' AND account_id = ANY(%s) AND date = ANY(%s)
            """,
            list({key[0] for key in books}),
            list({key[1] for key in books}),
        )
        return {(row["account_id"], row["date"]): row for row in self.env.execute_query_dict(query)}

    @api.model
    def _deduct_insert_lines(self, inserts):
        """New consumption lines: ``[((account id, day), DayBook)]``."""
        if not inserts:
            return
        memos, rows = {}, []
        for (account_id, day), book in inserts:
            line = book.as_line()
            memo = memos.get(day) or memos.setdefault(day, self.env._("Consumption of %s", day))
            rows.append((account_id, book.company_id, day, memo, *line.figures()))
        self._stage(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_line_staging (account_id int4, "
            "company_id int4, date date, memo varchar, amount numeric, quantity numeric, "
            "reading_from timestamp, reading_to timestamp, reading_count int4, detail jsonb) "
            "ON COMMIT DROP",
            "TRUNCATE prepaid_line_staging",
            f"COPY prepaid_line_staging FROM STDIN {COPY_CSV}",
            rows,
        )
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO prepaid_account_line (account_id, company_id, date, memo, amount,
                    quantity, reading_from, reading_to, reading_count, detail, kind, posted_at,
                    create_uid, create_date, write_uid, write_date)
                SELECT account_id, company_id, date, memo, amount, quantity, reading_from,
                       reading_to, reading_count, detail, 'deduction', %(now)s,
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM prepaid_line_staging
                """,
                now=fields.Datetime.now(),
                uid=self.env.uid,
            )
        )

    @api.model
    def _deduct_update_lines(self, updates):
        """Consumption lines added to: ``{line id: ConsumptionLine}``."""
        if not updates:
            return
        self._stage(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_line_update_staging (id int4, "
            "amount numeric, quantity numeric, reading_from timestamp, "
            "reading_to timestamp, reading_count int4, detail jsonb) ON COMMIT DROP",
            "TRUNCATE prepaid_line_update_staging",
            f"COPY prepaid_line_update_staging FROM STDIN {COPY_CSV}",
            [(line_id, *line.figures()) for line_id, line in updates.items()],
        )
        self.env.cr.execute(
            """
            UPDATE prepaid_account_line l
               SET amount = v.amount, quantity = v.quantity, reading_from = v.reading_from,
                   reading_to = v.reading_to, reading_count = v.reading_count,
                   detail = v.detail, write_date = now() AT TIME ZONE 'UTC'
              FROM prepaid_line_update_staging v
             WHERE l.id = v.id
            """
        )

    @api.model
    def _deduct_move_balances(self, moves):
        """Move each account's balance by ``{account id: delta}`` (its new ledger amounts)."""
        if not moves:
            return
        self._stage(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_balance_staging (id int4, delta numeric) "
            "ON COMMIT DROP",
            "TRUNCATE prepaid_balance_staging",
            f"COPY prepaid_balance_staging FROM STDIN {COPY_CSV}",
            list(moves.items()),
        )
        self.env.cr.execute(
            "UPDATE prepaid_account a SET balance = COALESCE(a.balance, 0) + v.delta "
            "FROM prepaid_balance_staging v WHERE a.id = v.id"
        )

    @api.model
    def _deduct_store_meters(self, meter_rows):
        """Each meter's cursor (:class:`MeterCursorRow`): up to when it is charged, its last
        baseline, its cycle state, and the running total of money charged for it."""
        if not meter_rows:
            return
        self._stage(
            "CREATE TEMP TABLE IF NOT EXISTS prepaid_cursor_staging (id int4, until timestamp, "
            "base timestamp, state jsonb, tariff int4, charged numeric) ON COMMIT DROP",
            "TRUNCATE prepaid_cursor_staging",
            f"COPY prepaid_cursor_staging FROM STDIN {COPY_CSV}",
            meter_rows,
        )
        self.env.cr.execute(
            """
            UPDATE prepaid_meter m
               SET billing_charged_until = v.until, billing_base_at = v.base,
                   billing_state = v.state, billing_tariff_id = v.tariff,
                   billing_charged_amount = COALESCE(m.billing_charged_amount, 0) + v.charged
              FROM prepaid_cursor_staging v
             WHERE m.id = v.id
            """
        )
        self.env["prepaid.meter"].browse([row.meter_id for row in meter_rows]).invalidate_recordset(
            [
                "billing_charged_until",
                "billing_base_at",
                "billing_state",
                "billing_tariff_id",
                "billing_charged_amount",
            ]
        )

    @api.model
    def _stage(self, create, truncate, copy, rows):
        """Rows into a temporary table with COPY (bulk writes without building SQL text).
        Not analyzed: the planner sizes a table it has no statistics of from its pages."""
        cr = self.env.cr
        cr.execute(create)
        cr.execute(truncate)
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t").writerows(rows)
        buffer.seek(0)
        cr._obj.copy_expert(copy, buffer)
