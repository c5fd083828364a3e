from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..const import DEFAULT_READING_RETENTION_DAYS


class PrepaidMeterReadingDaily(models.Model):
    """M5: one frozen record per meter per day, kept for ever (history, reports, charts).

    Built from the raw readings by :meth:`_cron_freeze` (days are the company's local days);
    the current day is refreshed in place until it is over.
    """

    _name = "prepaid.meter.reading.daily"
    _description = "Daily Meter Reading"
    _order = "day desc, meter_id"
    _log_access = False
    _rec_name = "day"

    meter_id = fields.Many2one("prepaid.meter", required=True, ondelete="cascade", index=True)
    day = fields.Date(required=True)
    company_id = fields.Many2one("res.company", required=True, index=True)
    site_id = fields.Many2one("prepaid.site")
    building_id = fields.Many2one("prepaid.building")
    unit_id = fields.Many2one("prepaid.unit")
    utility = fields.Selection([("electricity", "Electricity"), ("water", "Water")])
    first_total = fields.Float(digits=(16, 4), aggregator=False)
    last_total = fields.Float(digits=(16, 4), aggregator=False)
    consumption = fields.Float(digits=(16, 4), help="Charged consumption of the day.")
    uncharged = fields.Float(
        digits=(16, 4), help="Consumption of flagged readings, not charged (spikes)."
    )
    max_power = fields.Float(digits=(12, 4), aggregator="max", string="Max Power (kW)")
    last_meter_balance = fields.Float(digits=(16, 4), aggregator=False)
    reading_count = fields.Integer()
    flagged_count = fields.Integer()

    _meter_day_uniq = models.UniqueIndex("(meter_id, day)")
    _day_company_idx = models.Index("(company_id, day)")

    @api.model
    def _freeze(self, since):
        """Aggregate the raw readings of the local days that began at or after ``since``
        (UTC) into daily records.  A day that began before is left as it was frozen while
        its readings were all read: its readings since ``since`` alone would overwrite it
        with a part of the day (east of UTC, a UTC midnight falls inside a local day)."""
        self.env["prepaid.meter.reading"].flush_model()
        self.env["res.partner"].flush_model(["tz"])  # (the companies' time zones, read below)
        self.env.cr.execute(
            SQL(
                """
                WITH zone AS (
                    -- each company's time zone and first local day that begins at or after
                    -- since (since itself, when it is a local midnight)
                    SELECT c.id, z.tz,
                           ((%(since)s::timestamp AT TIME ZONE 'UTC' AT TIME ZONE z.tz)
                            - interval '1 microsecond')::date + 1 AS first_day
                      FROM res_company c
                      JOIN res_partner p ON p.id = c.partner_id
                     CROSS JOIN LATERAL (SELECT COALESCE(p.tz, 'UTC') AS tz) z
                ), local AS (
                    SELECT r.*, (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE z.tz)::date AS day,
                           z.first_day
                      FROM prepaid_meter_reading r
                      JOIN zone z ON z.id = r.company_id
                     WHERE r.read_at >= %(since)s
                )
                INSERT INTO prepaid_meter_reading_daily AS d (
                    meter_id, day, company_id, site_id, building_id, unit_id, utility,
                    first_total, last_total, consumption, uncharged, max_power,
                    last_meter_balance, reading_count, flagged_count)
                SELECT l.meter_id, l.day, l.company_id, m.site_id, m.building_id, m.unit_id,
                       m.utility,
                       (array_agg(l.total ORDER BY l.read_at))[1],
                       (array_agg(l.total ORDER BY l.read_at DESC))[1],
                       COALESCE(SUM(l.consumption) FILTER (WHERE l.chargeable), 0),
                       COALESCE(SUM(l.consumption) FILTER (
                           WHERE NOT l.chargeable AND l.flags LIKE '%%spike%%'), 0),
                       MAX(l.power),
                       (array_agg(l.meter_balance ORDER BY l.read_at DESC)
                            FILTER (WHERE l.meter_balance IS NOT NULL))[1],
                       COUNT(*),
                       COUNT(*) FILTER (WHERE l.flags IS NOT NULL)
                  FROM local l
                  JOIN prepaid_meter m ON m.id = l.meter_id
                 WHERE l.day >= l.first_day
                 GROUP BY l.meter_id, l.day, l.company_id, m.site_id, m.building_id, m.unit_id,
                          m.utility
                ON CONFLICT (meter_id, day) DO UPDATE SET
                    first_total = LEAST(d.first_total, EXCLUDED.first_total),
                    last_total = EXCLUDED.last_total,
                    consumption = EXCLUDED.consumption,
                    uncharged = EXCLUDED.uncharged,
                    max_power = EXCLUDED.max_power,
                    last_meter_balance = EXCLUDED.last_meter_balance,
                    reading_count = EXCLUDED.reading_count,
                    flagged_count = EXCLUDED.flagged_count
                """,
                since=since,
            )
        )
        self.invalidate_model()
        return self.env.cr.rowcount

    @api.model
    def _cron_freeze(self):
        """Freeze yesterday and today (whole local days), then purge old raw readings."""
        now = fields.Datetime.now()
        # yesterday began at most 48 hours ago in every time zone (49 on the night the
        # clocks go back); the day before, begun earlier, is not touched
        count = self._freeze(now - timedelta(hours=50))
        retention = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_meter.reading_retention_days", DEFAULT_READING_RETENTION_DAYS)
        )
        self.env["prepaid.meter.reading"]._drop_partitions_before(
            (now - timedelta(days=retention)).date()
        )
        self.env["prepaid.meter.reading"]._ensure_partitions([now, now + timedelta(days=31)])
        return count
