from datetime import datetime, timedelta

from odoo import api, fields, models
from odoo.tools import SQL, sql

from ..const import DEFAULT_READING_RETENTION_DAYS

#: readings stored since the last freeze: the time span of each batch's UTC days, by company
QUEUE = "prepaid_meter_reading_daily_queue"


class PrepaidMeterReadingDaily(models.Model):
    """M5: one frozen record per meter per day, kept for ever (history, reports, charts).

    Built from the raw readings by :meth:`_cron_freeze` (days are the company's local days):
    each hour, the days that received readings since the last run are aggregated again --
    the current day until it is over, and any earlier day a late reading comes for.
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

    def init(self):
        super().init()
        cr = self.env.cr
        cr.execute("SELECT to_regclass(%s)", [QUEUE])
        if cr.fetchone()[0]:
            return
        cr.execute(
            SQL(
                "CREATE TABLE %s (company_id int4 NOT NULL, first_at timestamp NOT NULL, "
                "last_at timestamp NOT NULL)",
                SQL.identifier(QUEUE),
            )
        )
        if sql.table_kind(cr, "prepaid_meter_reading") is None:
            return  # (a new database: no reading yet)
        # a database frozen by the former cron (the last 50 hours every hour): the days it
        # would have frozen next
        cr.execute(
            SQL(
                "INSERT INTO %s SELECT company_id, min(read_at), max(read_at) "
                "FROM prepaid_meter_reading "
                "WHERE read_at >= now() AT TIME ZONE 'UTC' - interval '50 hours' "
                "GROUP BY company_id",
                SQL.identifier(QUEUE),
            )
        )

    # === WHAT TO FREEZE === #
    @api.model
    def _queue_readings(self, readings):
        """Readings of ``(company id, read time)`` were just stored (in this transaction):
        their days are to be frozen again.  Kept as the time span of each UTC day of each
        company, in a table of which :meth:`_freeze_queued` takes what is committed: a
        batch's days are seen with its readings, never before, whatever the order in which
        transactions commit."""
        spans = {}
        for company_id, read_at in readings:
            key = (company_id, read_at.date())
            span = spans.get(key)
            if span is None:
                spans[key] = [read_at, read_at]
            elif read_at < span[0]:
                span[0] = read_at
            elif read_at > span[1]:
                span[1] = read_at
        if spans:
            companies = [company_id for company_id, _day in spans]
            firsts, lasts = zip(*spans.values(), strict=True)
            self.env.cr.execute(
                SQL(
                    "INSERT INTO %s SELECT * FROM unnest(%s::int[], %s::timestamp[], "
                    "%s::timestamp[])",
                    SQL.identifier(QUEUE),
                    companies,
                    list(firsts),
                    list(lasts),
                )
            )

    @api.model
    def _freeze_queued(self):
        """Freeze again every local day of a company that received readings since the last
        run (the company's days, in its time zone, not another's): today as the readings
        come, yesterday's last ones, and late readings of any earlier day (a collector's
        backlog after an outage); nothing else is read.  Days whose raw readings are past
        the retention period are left as they were frozen (their other readings are gone).
        Returns the number of daily records written."""
        cr = self.env.cr
        self.env["res.partner"].flush_model(["tz"])
        cr.execute(
            SQL(
                """
                WITH queued AS (DELETE FROM %(queue)s RETURNING company_id, first_at, last_at)
                SELECT DISTINCT z.id, d::date, z.tz
                  FROM queued q
                  JOIN (
                        SELECT c.id, COALESCE(p.tz, 'UTC') AS tz
                          FROM res_company c JOIN res_partner p ON p.id = c.partner_id
                       ) z ON z.id = q.company_id
                 CROSS JOIN LATERAL generate_series(
                        (q.first_at AT TIME ZONE 'UTC' AT TIME ZONE z.tz)::date,
                        (q.last_at AT TIME ZONE 'UTC' AT TIME ZONE z.tz)::date,
                        interval '1 day') d
                 WHERE d::date >= %(kept)s
                 ORDER BY 1, 2
                """,
                queue=SQL.identifier(QUEUE),
                # (a local day whose raw readings are all kept, in any time zone)
                kept=self._retention_start() + timedelta(days=1),
            )
        )
        days = cr.fetchall()
        if not days:
            return 0
        companies, dates, zones = zip(*days, strict=True)
        return self._freeze_from(
            SQL(
                """
                WITH days AS (
                    SELECT company_id, day, tz,
                           day::timestamp AT TIME ZONE tz AT TIME ZONE 'UTC' AS start_at,
                           (day + 1)::timestamp AT TIME ZONE tz AT TIME ZONE 'UTC' AS end_at
                      FROM unnest(%(companies)s::int[], %(days)s::date[], %(zones)s::text[])
                           AS d(company_id, day, tz)
                ), local AS (
                    SELECT r.*, (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE d.tz)::date AS day
                      FROM days d
                      JOIN prepaid_meter_reading r
                        ON r.company_id = d.company_id
                       AND r.read_at >= d.start_at AND r.read_at < d.end_at
                     WHERE r.read_at >= %(first)s AND r.read_at < %(last)s
                )
                """,
                companies=list(companies),
                days=list(dates),
                zones=list(zones),
                # (the span of every day in any time zone: partitions pruned when planned)
                first=datetime.combine(min(dates), datetime.min.time()) - timedelta(hours=15),
                last=datetime.combine(max(dates), datetime.min.time()) + timedelta(hours=39),
            )
        )

    @api.model
    def _freeze(self, since):
        """Aggregate the raw readings of the local days that began at or after ``since``
        (UTC) into daily records.  A day that began before is left as it was frozen while
        its readings were all read: its readings since ``since`` alone would overwrite it
        with a part of the day (east of UTC, a UTC midnight falls inside a local day)."""
        self.env["res.partner"].flush_model(["tz"])  # (the companies' time zones, read below)
        return self._freeze_from(
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
                    SELECT r.*, (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE z.tz)::date AS day
                      FROM prepaid_meter_reading r
                      JOIN zone z ON z.id = r.company_id
                     WHERE r.read_at >= %(since)s
                       AND (r.read_at AT TIME ZONE 'UTC' AT TIME ZONE z.tz)::date >= z.first_day
                )
                """,
                since=since,
            )
        )

    @api.model
    def _freeze_from(self, local):
        """Write the daily records of the meter-days of ``local``, a ``WITH`` clause whose
        ``local`` holds every reading of those days with its local ``day``."""
        self.env["prepaid.meter.reading"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                %s
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
                    first_total = EXCLUDED.first_total,
                    last_total = EXCLUDED.last_total,
                    consumption = EXCLUDED.consumption,
                    uncharged = EXCLUDED.uncharged,
                    max_power = EXCLUDED.max_power,
                    last_meter_balance = EXCLUDED.last_meter_balance,
                    reading_count = EXCLUDED.reading_count,
                    flagged_count = EXCLUDED.flagged_count
                """,
                local,
            )
        )
        self.invalidate_model()
        return self.env.cr.rowcount

    @api.model
    def _retention_start(self):
        """The first day whose raw readings are kept (the retention period)."""
        retention = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("prepaid_meter.reading_retention_days", DEFAULT_READING_RETENTION_DAYS)
        )
        return (fields.Datetime.now() - timedelta(days=retention)).date()

    @api.model
    def _cron_freeze(self):
        """Freeze the days that received readings since the last run, then purge old raw
        readings."""
        now = fields.Datetime.now()
        count = self._freeze_queued()
        self.env["prepaid.meter.reading"]._drop_partitions_before(self._retention_start())
        self.env["prepaid.meter.reading"]._ensure_partitions([now, now + timedelta(days=31)])
        return count
