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
        """Aggregate raw readings read at or after ``since`` (UTC) into daily records."""
        self.env["prepaid.meter.reading"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH local AS (
                    SELECT r.*, (r.read_at AT TIME ZONE 'UTC'
                                 AT TIME ZONE COALESCE(p.tz, 'UTC'))::date AS day
                      FROM prepaid_meter_reading r
                      JOIN res_company c ON c.id = r.company_id
                      JOIN res_partner p ON p.id = c.partner_id
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
        # a day and a half back covers yesterday in every time zone
        since = (now - timedelta(hours=50)).replace(hour=0, minute=0, second=0)
        count = self._freeze(since)
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
