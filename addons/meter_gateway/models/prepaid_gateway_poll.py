"""G1/G3: polling of TCP collectors by Odoo's scheduled action (and *Poll Now*).

A poll runs in three steps so that no database lock is held while devices answer:

1. main thread: expire and supersede stale commands, pick the queued ones, mark them sent,
   build plain jobs per bus (and commit, when run by the scheduler);
2. one worker thread per bus, each with its own socket, polls the bus's meters in turn
   (buses concurrently, meters of one bus one after the other); no ORM access there;
3. main thread: one ``prepaid.meter.reading._ingest`` call for every reading, command
   outcomes, failure counters and online/lost states.

A collector whose gateway runner calls the device API is polled by the runner only; its
report (``runner/report``) is recorded by the same ``_record_poll``.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.prepaid_meter.utils import selection_label

from prepaid_core import buses as bus_drivers
from prepaid_core.buses import POLLED_VALUES

from ..const import ACTIVE_STATES, POLL_LOCK_KEY
from .prepaid_gateway import RUNNER_GRACE_MINUTES
from .prepaid_meter_model_dlms import DLMS_PROTOCOLS

_logger = logging.getLogger(__name__)

#: failed meters named in a gateway's poll summary (the others are counted)
MAX_FAILURES_SHOWN = 20
#: how long a poll is shown as running at most (the lock, not this, keeps polls apart)
POLL_LEASE_MINUTES = 15


@dataclass
class PollHarvest:
    """What the worker threads' results become on the main thread: reading rows of the
    meters that answered, failed meters (``{meter id: reason}``), meters that answered,
    failed meters that answered with a refusal (reachable: not counted towards lost),
    clocks read (``{meter id: clock}``), and the commands whose outcome was written."""

    rows: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    answered: set = field(default_factory=set)
    refused: set = field(default_factory=set)
    clocks: dict = field(default_factory=dict)
    handled: set = field(default_factory=set)


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    def action_poll_now(self):
        for gateway in self:
            gateway._poll()

    @api.model
    def _cron_poll(self):
        """G3: poll every collector that is due, committing after each one."""
        now = fields.Datetime.now()
        gateways = self.search(
            [
                ("gateway_type", "=", "tcp_collector"),
                "|",
                ("next_poll_at", "=", False),
                ("next_poll_at", "<=", now),
                "|",
                ("runner_seen_at", "=", False),
                ("runner_seen_at", "<", now - timedelta(minutes=RUNNER_GRACE_MINUTES)),
            ]
        )
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        for index, gateway in enumerate(gateways):
            gateway._poll()
            if in_cron:
                self.env["ir.cron"]._commit_progress(1, remaining=len(gateways) - index - 1)
        return gateways

    def _commit_if_cron(self):
        if self.env.context.get("ir_cron_progress_id"):
            self.env["ir.cron"]._commit_progress(0)

    def _poll(self, only_meters=None):
        """Poll this collector's buses once: commands, readings, connection states.

        ``only_meters``: poll just these meters of the gateway ("read now"); the schedule
        is left as it is."""
        self.ensure_one()
        started = fields.Datetime.now()
        if self.served_by_runner:
            # the runner holds the buses: it polls at once when the poll is due
            self.next_poll_at = started
            _logger.info("gateway %s: served by its runner, poll brought forward", self.id)
            return {"stored": 0, "rejected": [], "skipped": True, "runner": True}
        with self._poll_lock() as locked:
            if not locked or not self._take_poll_lease(started):
                _logger.info("gateway %s: a poll is already running, skipped", self.id)
                return {"stored": 0, "rejected": [], "skipped": True}
            try:
                return self._poll_locked(started, only_meters)
            finally:
                self.poll_lease_until = False

    @contextmanager
    def _poll_lock(self):
        """One poll per gateway at a time, over every Odoo node: a PostgreSQL advisory lock
        held for the poll's length by a transaction of its own (the poll commits as it
        goes).  A poll that dies (its process killed, the database restarted) lets go of
        the lock with its connection: the next poll never waits for a lease to expire."""
        with self.env.registry.cursor() as lock_cr:
            lock_cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [POLL_LOCK_KEY, self.id])
            yield lock_cr.fetchone()[0]

    def _poll_running(self):
        """Whether a poll of this gateway (another transaction's) holds its lock now, on any
        Odoo node."""
        self.ensure_one()
        query = SQL(
            """
            SELECT EXISTS (SELECT 1 FROM pg_locks
                            WHERE locktype = 'advisory' AND granted AND objsubid = 2
                              AND classid = %s AND objid = %s
                              AND pid <> pg_backend_pid()) AS running
            """,
            POLL_LOCK_KEY,
            self.id,
        )
        return self.env.execute_query_dict(query)[0]["running"]

    def _take_poll_lease(self, now):
        """Once the poll's lock is held: show the poll as running (a lease left by a poll
        that died is overwritten), never while a gateway runner serves the collector (the
        runner's calls write the same row: one of two concurrent transactions waits)."""
        self.flush_recordset(["poll_lease_until", "runner_seen_at"])
        taken = self.env.execute_query(
            SQL(
                """
                UPDATE prepaid_gateway SET poll_lease_until = %(lease_until)s
                 WHERE id = %(gateway_id)s
                   AND (runner_seen_at IS NULL OR runner_seen_at < %(runner_gone)s)
                RETURNING id
                """,
                lease_until=now + timedelta(minutes=POLL_LEASE_MINUTES),
                gateway_id=self.id,
                runner_gone=now - timedelta(minutes=RUNNER_GRACE_MINUTES),
            )
        )
        self.invalidate_recordset(["poll_lease_until"])
        return bool(taken)

    def _polled_buses_and_meters(self, only_meters=None, states=("in_service",)):
        """The collector's buses with a driver and their meters in ``states`` (or just
        ``only_meters`` of them), in poll order: by bus, then address."""
        self.ensure_one()
        buses = self.bus_ids.filtered(
            lambda b: b.driver != "none" and (b.port or b.connection == "serial")
        )
        domain = [
            ("bus_id", "in", buses.ids),
            ("state", "in", states),
            # a Modbus-RTU meter is addressed by its unit id, a DLMS one by its logical and
            # physical addresses, the others by their address
            "|",
            "|",
            ("address", "!=", False),
            ("model_id.protocol", "in", DLMS_PROTOCOLS),
            "&",
            ("model_id.protocol", "=", "modbus_rtu"),
            ("modbus_unit_id", ">", 0),
        ]
        if only_meters is not None:
            domain.append(("id", "in", only_meters.ids))
        return buses, self.env["prepaid.meter"].search(
            domain,
            order="bus_id, address, modbus_unit_id, dlms_physical_address, dlms_logical_address",
        )

    def _poll_locked(self, started, only_meters):
        """The poll itself, once its lease is taken: commands and jobs, devices (nothing
        locked meanwhile), then the results."""
        buses, meters = self._polled_buses_and_meters(only_meters)
        commands = self._poll_commands(meters, started, scheduled=only_meters is None)
        tasks = self._poll_tasks(buses, meters, commands)
        if only_meters is None:
            self.write(
                {
                    "next_poll_at": started + timedelta(minutes=self.poll_interval or 30),
                    "last_poll_at": started,
                }
            )
        # nothing is locked while the devices answer
        self._commit_if_cron()
        return self._apply_poll_results(_run_poll_tasks(tasks), meters, commands)

    def _poll_commands(self, meters, started, scheduled):
        """The commands this poll delivers to ``meters``, marked sent, once the queue is up
        to date (expired and contradicting ones out, settings and a due time sync in)."""
        Command = self.env["meter.gateway.command"]
        Command._expire()
        Command._supersede_contradicting(meters)
        Command._issue_device_settings(meters)
        if scheduled:
            self._queue_due_time_sync(started)
        commands = Command._next_for_meters(meters)
        commands._mark_sent()
        return commands

    @staticmethod
    def _poll_tasks(buses, meters, commands):
        """``{bus: job}``: the plain job of each bus with meters, run by a worker thread."""
        tasks = {}
        for bus in buses:
            bus_meters = meters.filtered(lambda m, bus=bus: m.bus_id == bus)
            if bus_meters:
                tasks[bus] = bus._get_poll_task(
                    [
                        (meter, commands.filtered(lambda c, meter=meter: c.meter_id == meter))
                        for meter in bus_meters
                    ]
                )
        return tasks

    # === RESULTS === #
    def _apply_poll_results(self, results, meters, commands):
        """Write what the worker threads brought back (main thread only).

        Each meter's result is written on its own (a savepoint each): one that cannot be
        written (a value the store refuses, a bug) fails that meter only, with its
        reason, logged; the other meters' readings are stored.  The report lists the
        failed meters (``failed``: address and reason)."""
        self.ensure_one()
        harvest = PollHarvest()
        for bus, result in results.items():
            self._harvest_bus(bus, result, meters, harvest)
        self._requeue_undelivered(commands, harvest)
        report = self._poll_ingest(harvest.rows, harvest.failed, harvest.answered)
        if harvest.clocks:
            self._record_clocks(
                {key: clock for key, clock in harvest.clocks.items() if key in harvest.answered}
            )
        self._record_poll(
            harvest.answered,
            harvest.failed,
            connected=any(result.connected for result in results.values()) if results else None,
            errors={r.error for r in results.values() if r.error},
            seconds=max((r.seconds for r in results.values()), default=0.0),
            stored=report["stored"],
            refused=harvest.refused,
        )
        # a meter known by other addresses (Modbus unit id, DLMS) is named by its key or name
        addresses = {meter.id: meter._device_key() or meter.name for meter in meters}
        report["failed"] = [
            {"address": addresses.get(meter_id), "error": error}
            for meter_id, error in sorted(harvest.failed.items())
        ]
        return report

    def _harvest_bus(self, bus, result, meters, harvest):
        """One bus's result: a bus not reached fails all its meters."""
        if not result.connected:
            for meter in meters.filtered(lambda m: m.bus_id == bus):
                harvest.failed[meter.id] = result.error
            return
        for meter_result in result.meters:
            self._harvest_meter(meter_result, meters, harvest)

    def _harvest_meter(self, meter_result, meters, harvest):
        """One meter's result: its commands' outcomes written, its reading row kept."""
        Command = self.env["meter.gateway.command"]
        meter_id, address = meter_result.meter_id, meter_result.address
        for outcome in meter_result.outcomes:
            if self._poll_guarded(
                meter_id,
                address,
                harvest.failed,
                lambda outcome=outcome: self._apply_outcome(
                    Command.browse(outcome.command_id), outcome
                ),
            ):
                harvest.handled.add(outcome.command_id)
        if not meter_result.ok:
            harvest.failed[meter_id] = meter_result.error
            if meter_result.answered:
                harvest.refused.add(meter_id)
            return
        row = self._poll_guarded(
            meter_id,
            address,
            harvest.failed,
            lambda: self._poll_meter_row(meter_result, meters, harvest.clocks),
        )
        if row:
            harvest.answered.add(meter_id)
            harvest.rows.append(row)

    def _requeue_undelivered(self, commands, harvest):
        """Commands that never went on the wire go back to the queue without using an
        attempt."""
        for command in commands.filtered(
            lambda c: c.id not in harvest.handled and c.state == "sent"
        ):
            command._update_state(
                ("sent",),
                "queued",
                self.env._(
                    "not delivered (%s); queued again",
                    harvest.failed.get(command.meter_id.id) or self.env._("meter not reached"),
                ),
                extra_vals={"attempts": max(command.attempts - 1, 0)},
            )

    def _poll_guarded(self, meter_id, address, failed, write):
        """``write()`` in a savepoint; on any failure but a concurrency error (retried
        with the whole transaction) the meter is failed with the reason, logged (R12),
        and None is returned."""
        try:
            with self.env.cr.savepoint():
                return write() or True
        except psycopg2.OperationalError:
            raise
        except Exception as exc:
            reason = self.env._(
                "result not stored: %(error)s: %(message)s",
                error=type(exc).__name__,
                message=exc,
            )
            _logger.warning("gateway %s: meter %s: %s", self.id, address, reason, exc_info=True)
            failed[meter_id] = reason
            return None

    def _poll_meter_row(self, meter_result, meters, clocks):
        """The reading row of a meter that answered; its daily freeze is stored and its
        clock noted (``clocks``) on the way."""
        values = meter_result.values
        if values.get("daily_frozen"):
            self.env["prepaid.meter.reading.daily"]._store_frozen(
                meters.browse(meter_result.meter_id),
                values["daily_frozen"],
                self.meter_utc_offset,
            )
        if values.get("clock"):
            clocks[meter_result.meter_id] = values["clock"]
        if values.get("read_mode"):
            meters.browse(meter_result.meter_id)._remember_read_mode(values["read_mode"])
        return {
            "meter_id": meter_result.meter_id,
            "read_at": meter_result.read_at,
            "source": "poll",
            **{key: values[key] for key in POLLED_VALUES if key in values},
        }

    def _poll_ingest(self, rows, failed, answered):
        """Store the readings of a poll in one batch; should the batch fail as a whole,
        each reading alone: the one that fails fails its meter, never the others."""
        Reading = self.env["prepaid.meter.reading"]
        report = {"stored": 0, "rejected": []}
        if not rows:
            return report
        try:
            with self.env.cr.savepoint():
                return Reading._ingest(rows, source="poll")
        except psycopg2.OperationalError:
            raise
        except Exception:
            _logger.warning("gateway %s: poll batch failed, stored one by one", self.id)
        for row in rows:
            done = self._poll_guarded(
                row["meter_id"],
                self.env["prepaid.meter"].browse(row["meter_id"]).address,
                failed,
                lambda row=row: Reading._ingest([row], source="poll"),
            )
            if done:
                report["stored"] += done["stored"]
                report["rejected"] += done["rejected"]
            else:
                answered.discard(row["meter_id"])
        return report

    def _apply_outcome(self, command, outcome):
        """A command's outcome on the wire: not delivered (queued again, or failed when
        permanent), refused for good, or the meter's answer; a relay the device switched
        is recorded as the meter's actual state (R7)."""
        if not outcome.delivered and command.state == "sent":
            command._update_state(
                ("sent",),
                "failed" if outcome.permanent else "queued",
                outcome.reason,
                extra_vals={"last_error": outcome.reason},
            )
        elif outcome.permanent and not outcome.success:
            command._update_state(
                ACTIVE_STATES, "failed", outcome.reason, extra_vals={"last_error": outcome.reason}
            )
            if command.state != "failed":
                command._log_decision(outcome.reason)
        else:
            command._mark_result(outcome.success, outcome.reason)
        target = command._relay_target()
        if outcome.success and target:
            # the device did it, even when a newer intent superseded the command meanwhile
            # (R7): the actual state is recorded, reconciliation corrects it
            command.meter_id._record_actual_relay(target)

    # === WHAT A POLL TELLS === #
    def _record_poll(self, answered, failed, connected, errors, seconds, stored, refused=()):
        """What one poll tells, by the scheduled poll or the gateway runner's report:
        meters that answered (ids), did not (``{id: error}``; those of ``refused``
        answered with a refusal: reachable, their failure is not counted towards lost),
        whether the collector could be reached (``None``: nothing was polled), its
        errors, the slowest bus's seconds."""
        self.ensure_one()
        Meter = self.env["prepaid.meter"]
        reached = Meter.browse(set(answered) | set(refused))
        reached.filtered("poll_failures").write({"poll_failures": 0})
        for meter_id, error in failed.items():
            if meter_id not in refused:
                Meter.browse(meter_id)._register_poll_failure(error, self.lost_after_failures)
        vals = {
            "last_poll_seconds": seconds,
            "last_poll_summary": self._poll_summary(answered, failed, stored),
            **self._poll_connection_vals(connected),
        }
        previous = self.connection_state
        self.write(vals)
        if self.connection_state != previous and self.connection_state in ("online", "lost"):
            self.message_post(
                body=self.env._(
                    "%(state)s: %(summary)s",
                    state=selection_label(self, "connection_state", self.connection_state),
                    summary="; ".join(sorted(errors)) or vals["last_poll_summary"],
                )
            )

    def _poll_summary(self, answered, failed, stored):
        """The poll's summary for the gateway: counts, and the first failed meters with
        their reason (every failure is logged)."""
        summary = self.env._(
            "%(ok)s meters answered, %(failed)s did not, %(stored)s readings stored",
            ok=len(answered),
            failed=len(failed),
            stored=stored,
        )
        if not failed:
            return summary
        Meter = self.env["prepaid.meter"]
        names = {m.id: m._device_key() or m.name for m in Meter.browse(list(failed))}
        shown = sorted(failed.items())[:MAX_FAILURES_SHOWN]
        summary += self.env._(
            ". Failed: %(meters)s", meters="; ".join(f"{names[i]}: {e}" for i, e in shown)
        )
        if len(failed) > len(shown):
            summary += self.env._(" (and %s more)", len(failed) - len(shown))
        for meter_id, error in sorted(failed.items()):
            _logger.info("gateway %s: meter %s failed: %s", self.id, names[meter_id], error)
        return summary

    def _poll_connection_vals(self, connected):
        """The collector's connection after a poll: reached, not reached (lost after
        ``lost_after_failures`` polls in a row), or unchanged (``None``: nothing polled)."""
        if connected:
            return {
                "last_contact_at": fields.Datetime.now(),
                "connection_state": "online",
                "poll_failures": 0,
            }
        if connected is None:
            return {}
        failures = self.poll_failures + 1
        if failures >= self.lost_after_failures:
            return {"poll_failures": failures, "connection_state": "lost"}
        return {"poll_failures": failures}


def _run_poll_tasks(tasks):
    """``{bus: BusResult}``: each bus's job run by a worker thread of its own."""
    if not tasks:
        return {}
    with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="poll") as pool:
        futures = {bus: pool.submit(task) for bus, task in tasks.items()}
        return {bus: _poll_task_result(bus, future) for bus, future in futures.items()}


def _poll_task_result(bus, future):
    """What a bus's worker thread brought back; a failure of the thread itself fails that
    bus (its meters, with the reason), never the others."""
    try:
        return future.result()
    except Exception as exc:
        _logger.exception("bus %s: poll failed", bus.id)
        return bus_drivers.BusResult(
            False, f"poll of bus {bus.name} failed: {type(exc).__name__}: {exc}"
        )
