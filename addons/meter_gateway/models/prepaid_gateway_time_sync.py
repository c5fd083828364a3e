"""G3: daily time sync and clock checks of a collector's meters.

Once a day, at the gateway's chosen hour, each in-service DL/T645 meter gets a ``time_sync``
command through the command queue; between syncs the polls read the meters' clocks now and
then, and a clock drifting beyond the gateway's threshold is logged and synced at once.
Modbus-RTU meters have no clock to check.

See docs/design.md (Clocks and time sync).
"""

import logging
import math
from datetime import datetime, time, timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .prepaid_gateway_bus_dlt645 import DLT645_PROTOCOLS

_logger = logging.getLogger(__name__)

#: clocks read on one bus by one poll at least (see ``_meters_clock_due``)
MIN_CLOCKS_PER_BUS = 4


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    time_sync_daily = fields.Boolean(
        string="Daily Time Sync",
        default=True,
        help="Set the clock of every in-service meter of the collector's DL/T645 buses "
        "once a day, at the chosen hour (the meters' local time).",
    )
    time_sync_hour = fields.Integer(
        default=3,
        help="Hour of the day (0 to 23, the meters' local time) from which the day's time "
        "sync is queued, with the next poll.",
    )
    time_sync_next_at = fields.Datetime(
        string="Next Time Sync",
        compute="_compute_time_sync_next_at",
        store=True,
        readonly=False,
        copy=False,
        help="The first poll from then on queues the time sync of the meters.",
    )
    time_sync_queued_at = fields.Datetime(string="Last Time Sync Queued", readonly=True, copy=False)
    clock_drift_threshold = fields.Integer(
        string="Clock Drift Threshold (s)",
        default=60,
        help="A poll that finds a DL/T645 meter's clock off by more than this many "
        "seconds queues a time sync for it at once; 0: clocks are not checked.",
    )
    clock_check_hours = fields.Integer(
        string="Check Clocks Every (hours)",
        default=24,
        help="How often each meter's clock is read (two short reads on the bus): the first "
        "poll after that time reads it.",
    )

    _clock_drift_threshold_positive = models.Constraint(
        "CHECK (clock_drift_threshold >= 0)", "The clock drift threshold cannot be negative."
    )
    _clock_check_hours_positive = models.Constraint(
        "CHECK (clock_check_hours >= 1)", "Clocks are checked at most once an hour."
    )

    @api.constrains("time_sync_hour")
    def _check_time_sync_hour(self):
        for gateway in self:
            if not 0 <= gateway.time_sync_hour <= 23:
                raise ValidationError(self.env._("The time sync hour goes from 0 to 23."))

    @api.depends("time_sync_daily", "time_sync_hour", "meter_utc_offset", "gateway_type")
    def _compute_time_sync_next_at(self):
        now = fields.Datetime.now()
        for gateway in self:
            gateway.time_sync_next_at = (
                gateway._time_sync_slot_after(now)
                if gateway.time_sync_daily and gateway.gateway_type == "tcp_collector"
                else False
            )

    def _time_sync_slot_after(self, now):
        """UTC time (naive) of the first daily time sync slot after ``now``."""
        self.ensure_one()
        offset = timedelta(minutes=self.meter_utc_offset or 0)
        local_now = now + offset
        hour = min(max(self.time_sync_hour, 0), 23)
        slot = datetime.combine(local_now.date(), time(hour))
        if slot <= local_now:
            slot += timedelta(days=1)
        return slot - offset

    def _meters_clock_due(self, meters, now=None):
        """Ids of ``meters`` (of this gateway) whose clock the next poll reads: DL/T645 meters
        (2007 and 1997) not checked for ``clock_check_hours`` (none when the threshold is 0), the
        longest unchecked first, spread over the polls of the interval: on each bus at most
        the share of one poll (at least ``MIN_CLOCKS_PER_BUS``), so no poll of the day is
        much longer than the others."""
        self.ensure_one()
        if self.clock_drift_threshold <= 0:
            return set()
        since = (now or fields.Datetime.now()) - timedelta(hours=self.clock_check_hours)
        polls = max(self.clock_check_hours * 60 / (self.poll_interval or 30), 1)
        due = set()
        for bus in meters.bus_id.filtered(lambda b: b.protocol in DLT645_PROTOCOLS):
            on_bus = meters.filtered(lambda m, bus=bus: m.bus_id == bus)
            share = max(math.ceil(len(on_bus) / polls), MIN_CLOCKS_PER_BUS)
            unchecked = on_bus.filtered(
                lambda m: not m.clock_checked_at or m.clock_checked_at <= since
            ).sorted(lambda m: (m.clock_checked_at or datetime.min, m.id))
            due.update(unchecked[:share].ids)
        return due

    def _record_clocks(self, clocks):
        """G3: what a poll measured of meters' clocks, ``{meter id: {"drift_seconds",
        "checked_at"}}`` (``checked_at`` UTC; ``drift_seconds`` None: the meter tells no
        clock, checked all the same so that it does not take the turn of others): kept on
        the meter; a clock off by more than
        the threshold is logged and gets a time sync at once, unless a drift sync confirmed
        since the last regular check did not correct it.  A measurement older than the one
        kept is ignored (a message delivered again).  Returns the time syncs queued."""
        self.ensure_one()
        Command = self.env["meter.gateway.command"].sudo()
        Meter = self.env["prepaid.meter"].sudo()
        threshold = self.clock_drift_threshold
        window = timedelta(hours=self.clock_check_hours)
        # one statement for every meter of the poll (a collector has thousands)
        ids, drifts, times = [], [], []
        for meter_id, clock in clocks.items():
            ids.append(meter_id)
            drift = clock["drift_seconds"]
            drifts.append(None if drift is None else int(drift))
            times.append(clock["checked_at"])
        Meter.flush_model(["clock_checked_at", "clock_drift_seconds", "clock_drifting"])
        self.env.cr.execute(
            """
            UPDATE prepaid_meter m
               SET clock_drift_seconds = v.drift, clock_checked_at = v.checked_at,
                   clock_drifting = COALESCE(%s > 0 AND abs(v.drift) > %s, FALSE)
              FROM unnest(%s::int[], %s::int[], %s::timestamp[]) AS v(id, drift, checked_at)
             WHERE m.id = v.id
               AND (m.clock_checked_at IS NULL OR m.clock_checked_at < v.checked_at)
            RETURNING m.id, m.clock_drifting
            """,
            (threshold, threshold, ids, drifts, times),
        )
        rows = self.env.cr.fetchall()
        Meter.browse([row[0] for row in rows]).invalidate_recordset(
            ["clock_checked_at", "clock_drift_seconds", "clock_drifting"]
        )
        drifting = Meter.browse([meter_id for meter_id, off in rows if off])
        if not drifting:
            return Command
        synced = Command.search(
            [
                ("meter_id", "in", drifting.ids),
                ("kind", "=", "time_sync"),
                ("origin", "=", "drift"),
                ("state", "=", "confirmed"),
                ("done_at", ">=", fields.Datetime.now() - window),
            ]
        )
        commands = Command
        for meter in drifting:
            drift = meter.clock_drift_seconds
            measured = self.env._(
                "clock %(seconds)s s %(way)s (threshold %(threshold)s s)",
                seconds=abs(drift),
                way=self.env._("ahead") if drift > 0 else self.env._("behind"),
                threshold=threshold,
            )
            if meter in synced.meter_id:
                # R9/R12: the last drift sync did not help; no other before the next check
                reason = self.env._(
                    "%(measured)s; a time sync for drift was confirmed less than %(hours)s "
                    "hours ago: none again before the next check",
                    measured=measured,
                    hours=self.clock_check_hours,
                )
                _logger.info("meter %s: %s", meter.id, reason)
            else:
                commands |= Command._queue(meter, "time_sync", measured, origin="drift")
                reason = self.env._("%s; time sync queued", measured)
            meter._log_event(
                "clock_drift", reason=reason, event_at=meter.clock_checked_at, source="system"
            )
        commands._send_soon()
        return commands

    def _queue_due_time_sync(self, now=None):
        """Queue the day's time sync of this collector's meters when its slot has come and
        it was not queued since; returns the new commands."""
        Command = self.env["meter.gateway.command"].sudo()
        commands = Command
        now = now or fields.Datetime.now()
        for gateway in self:
            if (
                not gateway.time_sync_daily
                or gateway.gateway_type != "tcp_collector"
                or not gateway.time_sync_next_at
                or gateway.time_sync_next_at > now
            ):
                continue
            meters = (
                self.env["prepaid.meter"]
                .sudo()
                .search(
                    [
                        ("gateway_id", "=", gateway.id),
                        ("bus_id.protocol", "in", DLT645_PROTOCOLS),
                        ("state", "=", "in_service"),
                        ("address", "!=", False),
                    ]
                )
            )
            commands |= Command._queue(
                meters, "time_sync", self.env._("daily time sync"), origin="schedule"
            )
            gateway.write(
                {
                    "time_sync_queued_at": now,
                    "time_sync_next_at": gateway._time_sync_slot_after(now),
                }
            )
        return commands
