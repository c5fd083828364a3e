"""G3: daily time sync of a collector's meters.

Once a day, at the hour chosen on the gateway (the meters' local time), the first poll (or
command fetch of the gateway runner) from then on queues one ``time_sync`` command for each
in-service meter of the gateway's DL/T645 buses.  It goes through the command queue: a newer
time sync supersedes an older one still waiting for the same meter, and the poll delivers it
before reading the meter.
"""

from datetime import datetime, time, timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .prepaid_gateway_bus_dlt645 import DLT645_PROTOCOLS


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
