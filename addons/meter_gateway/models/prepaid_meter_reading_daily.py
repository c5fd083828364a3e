"""G3: the meter's own daily frozen energy, read by the poll once a day.

DL/T645-2007 meters freeze their forward active energy at their local midnight.  The poll
of a collector asks each meter for its last freeze until the daily record of the day it
closes holds it; the value is kept beside the day's totals built from the raw readings,
so the two can be compared (a reading missed during the day does not hide the day's end).
"""

from datetime import timedelta

from odoo import api, fields, models


class PrepaidMeterReadingDaily(models.Model):
    _inherit = "prepaid.meter.reading.daily"

    frozen_total = fields.Float(
        string="Meter Frozen Total",
        digits=(16, 4),
        aggregator=False,
        help="Forward active energy the meter froze at the end of the day (its own daily "
        "freeze, read by the poll).",
    )
    frozen_at = fields.Datetime(help="When the meter froze it (the meter's midnight, in UTC).")

    @api.model
    def _frozen_day(self, gateway, now=None):
        """The day the last freeze of the gateway's meters closes (their local yesterday)."""
        now = now or fields.Datetime.now()
        return (now + timedelta(minutes=gateway.meter_utc_offset or 0)).date() - timedelta(days=1)

    @api.model
    def _meters_missing_frozen(self, meters, day):
        """Ids of ``meters`` whose daily record of ``day`` has no frozen total yet."""
        done = self.sudo().search(
            [("meter_id", "in", meters.ids), ("day", "=", day), ("frozen_at", "!=", False)]
        )
        return set(meters.ids) - set(done.meter_id.ids)

    @api.model
    def _store_frozen(self, meter, frozen, utc_offset_minutes):
        """Keep a meter's daily freeze (``frozen_at`` in the meter's local time) on the
        daily record of the day it closes, created when the day has none yet."""
        local_at = frozen["frozen_at"]
        day = (local_at - timedelta(minutes=1)).date()  # a freeze at 00:00 closes the day before
        vals = {
            "frozen_total": float(frozen["forward_total"]),
            "frozen_at": local_at - timedelta(minutes=utc_offset_minutes or 0),
        }
        Daily = self.sudo()
        record = Daily.search([("meter_id", "=", meter.id), ("day", "=", day)], limit=1)
        if record:
            record.write(vals)
            return record
        return Daily.create(
            {
                "meter_id": meter.id,
                "day": day,
                "company_id": meter.company_id.id,
                "site_id": meter.site_id.id,
                "building_id": meter.building_id.id,
                "unit_id": meter.unit_id.id,
                "utility": meter.utility,
                **vals,
            }
        )
