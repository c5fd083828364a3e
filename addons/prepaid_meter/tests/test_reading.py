import itertools
from datetime import date, timedelta
from unittest.mock import patch

from lxml import etree

from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

from odoo.addons.prepaid_meter.models import prepaid_meter_reading as reading_module

from prepaid_core.reading_batch.rows import MeterRecord

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestReading(PrepaidMeterCommon):
    def test_ingest_charges_consumption_and_updates_latest_state(self):
        result = self._ingest(self.meter, (0, 100), (30, 101.5), (60, 102.0))
        self.assertEqual(result["stored"], 3)
        self.assertFalse(result["rejected"])
        readings = self._readings(self.meter)
        self.assertEqual(readings.mapped("flags"), ["baseline", False, False])
        self.assertEqual(readings.mapped("chargeable"), [False, True, True])
        self.assertEqual([round(c, 4) for c in readings.mapped("consumption")], [0, 1.5, 0.5])
        self.assertEqual(self.meter.last_total, 102.0)
        self.assertEqual(self.meter.baseline_total, 102.0)
        self.assertEqual(self.meter.last_reading_at, self.t0 + timedelta(minutes=60))
        self.assertEqual(self.meter.connection_state, "online")
        self.assertTrue(self.meter.last_contact_at)

    def test_meters_close_together_or_far_apart_are_read_alike(self):
        """A batch's meters are read as a range of the meters' ingest index when their ids
        lie close together, one by one when far apart: the same states either way, and
        meters of no batch row (between two far apart) are not read."""
        meters = self.env["prepaid.meter"]
        for n in range(10):
            meters |= self._create_meter(f"Power R-{n}", f"0000000012{n:02d}")
        self._ingest(meters[3], (0, 100), (30, 101.5))
        Reading = self.env["prepaid.meter.reading"]
        first, third, last = meters[0], meters[3], meters[-1]
        self.assertIsNotNone(Reading._dense_id_span(set(meters.ids)))
        self.assertIsNone(Reading._dense_id_span({first.id, last.id}))
        self.assertIsNone(Reading._dense_id_span({first.id, "7"}))
        dense, _by_address, _state_of = Reading._load_meter_states(
            [{"meter_id": meter.id} for meter in meters]
        )
        sparse, _by_address, _state_of = Reading._load_meter_states(
            [{"meter_id": meter_id} for meter_id in (first.id, third.id, last.id + 1000)]
        )
        self.assertEqual(set(dense), set(meters.ids))
        self.assertEqual(set(sparse), {first.id, third.id})
        for meter in (first, third):
            self.assertEqual(dense[meter.id], sparse[meter.id])
        self.assertEqual(dense[third.id].baseline_total, "101.5")  # (text)
        result = self._ingest(third, (60, 102.0))
        self.assertEqual((result["stored"], result["flagged"]), (1, 0))

    def test_meter_lookup_columns_are_the_records_fields(self):
        """The batch's meter look-up is read into MeterRecord by position: its columns
        are named as the record's fields, in the same order."""
        self.env.cr.execute(
            SQL(
                "%s FROM prepaid_meter m %s LIMIT 0",
                reading_module._METER_COLUMNS,
                reading_module._METER_JOINS,
            )
        )
        names = tuple(column.name for column in self.env.cr.description)
        self.assertEqual(names, MeterRecord._fields)

    def test_batch_out_of_order_is_sorted(self):
        self._ingest(self.meter, (60, 102.0), (0, 100), (30, 101.5))
        self.assertEqual(self._readings(self.meter).mapped("flags"), ["baseline", False, False])

    def test_rollback_flagged_not_charged_baseline_kept(self):
        self._ingest(self.meter, (0, 100), (30, 99.0), (60, 100.5))
        readings = self._readings(self.meter)
        self.assertEqual(readings[1].flags, "rollback")
        self.assertFalse(readings[1].chargeable)
        self.assertIn("below the previous total", readings[1].flag_reason)
        self.assertAlmostEqual(readings[2].consumption, 0.5)  # against 100, not 99
        self.assertEqual(self.meter.last_total, 100.5)

    def test_rollover(self):
        self._ingest(self.meter, (0, 999999.50), (30, 0.70))
        reading = self._readings(self.meter)[1]
        self.assertEqual(reading.flags, "rollover")
        self.assertTrue(reading.chargeable)
        self.assertAlmostEqual(reading.consumption, 1.2)

    def test_spike_beyond_rated_current(self):
        # DDSY: 13.2 kW at most -> 6.6 kWh in 30 minutes
        self._ingest(self.meter, (0, 100), (30, 150), (60, 101))
        readings = self._readings(self.meter)
        self.assertEqual(readings[1].flags, "spike")
        self.assertFalse(readings[1].chargeable)
        self.assertAlmostEqual(readings[2].consumption, 1.0)
        self.assertTrue(readings[2].chargeable)

    def test_gap_flagged_and_charged(self):
        self._ingest(self.meter, (0, 100), (600, 110))
        reading = self._readings(self.meter)[1]
        self.assertEqual(reading.flags, "gap")
        self.assertTrue(reading.chargeable)

    def test_multiplier_and_bidirectional(self):
        meter = self._create_meter(
            "CT", "000000000202", self.unit2, model=self.dtsy_ct, bus=self.bus2
        )
        self.env["prepaid.meter.reading"]._ingest(
            [
                {"meter_id": meter.id, "read_at": self.t0, "forward_total": 10, "reverse_total": 1},
                {
                    "meter_id": meter.id,
                    "read_at": self.t0 + timedelta(minutes=30),
                    "forward_total": 10.05,
                    "reverse_total": 1.01,
                },
            ]
        )
        reading = self._readings(meter)[1]
        # (0.05 forward + 0.01 reverse) x CT 40
        self.assertAlmostEqual(reading.consumption, 2.4)
        self.assertAlmostEqual(reading.total, 442.4)

    def test_resolve_by_gateway_and_address(self):
        result = self.env["prepaid.meter.reading"]._ingest(
            [
                {
                    "address": self.meter.address,
                    "gateway_id": self.gateway.id,
                    "read_at": "2026-03-02T00:00:00Z",
                    "forward_total": "12.5",
                }
            ]
        )
        self.assertEqual(result["stored"], 1)
        self.assertEqual(self.meter.last_total, 12.5)

    def test_bad_input_rejected_with_reason_and_kept(self):
        rows = [
            {"address": "123456789012", "read_at": self.t0, "forward_total": 1},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": -3},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": "lots"},
            {"meter_id": self.meter.id, "read_at": "yesterday", "forward_total": 5},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 5, "relay_state": "x"},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 7},
            # values that would break the COPY of the whole batch are refused one by one
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 8, "voltage": "nan"},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 8, "power": 1e999},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 8, "source": "x\ty"},
            {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 8, "status_word": "?"},
        ]
        result = self.env["prepaid.meter.reading"]._ingest(rows)
        self.assertEqual(result["stored"], 1)
        reasons = {r["index"]: r["reason"] for r in result["rejected"]}
        self.assertEqual(set(reasons), {0, 1, 2, 3, 4, 6, 7, 8, 9})
        self.assertIn("Unknown meter", reasons[0])
        self.assertIn("negative", reasons[1])
        self.assertIn("not a number", reasons[2])
        self.assertIn("read_at", reasons[3])
        self.assertIn("relay_state", reasons[4])
        self.assertIn("voltage", reasons[6])
        self.assertIn("power", reasons[7])
        self.assertIn("source", reasons[8])
        self.assertIn("status_word: '?' is not an integer", reasons[9])
        rejections = self.env["prepaid.meter.reading.rejection"].search([], order="id")
        self.assertEqual(len(rejections), 9)
        self.assertIn("123456789012", rejections[0].payload)

    def test_duplicates_rejected_in_batch_and_on_resend(self):
        first = self._ingest(self.meter, (0, 100), (30, 101), (30, 101))
        self.assertEqual(first["stored"], 2)
        self.assertEqual([r["reason"] for r in first["rejected"]], ["Duplicate reading."])
        resend = self._ingest(self.meter, (0, 100), (30, 101), (60, 102))
        self.assertEqual(resend["stored"], 1)
        self.assertEqual(len(resend["rejected"]), 2)
        self.assertTrue(all(r["reason"] == "Duplicate reading." for r in resend["rejected"]))
        self.assertEqual(len(self._readings(self.meter)), 3)
        self.assertEqual(self.meter.baseline_total, 102)

    def test_relay_change_and_connection_restored_are_events(self):
        self._ingest(self.meter, (0, 100), relay_state="on")
        self.assertEqual(self.meter.actual_relay_state, "on")
        self.meter.connection_state = "lost"
        self._ingest(self.meter, (30, 101), relay_state="off")
        self.assertEqual(self.meter.actual_relay_state, "off")
        self.assertEqual(self.meter.connection_state, "online")
        types = self.meter.event_ids.mapped("event_type")
        self.assertIn("relay_off", types)
        self.assertIn("connection_restored", types)

    def test_manual_reading_validated_like_ingest(self):
        readings = self.env["prepaid.meter.reading"]
        readings.create({"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 50})
        manual = readings.create(
            {
                "meter_id": self.meter.id,
                "read_at": self.t0 + timedelta(hours=1),
                "forward_total": 49,
            }
        )
        self.assertEqual(manual.flags, "rollback")
        self.assertEqual(manual.source, "manual")
        with self.assertRaisesRegex(UserError, "negative"):
            readings.create({"meter_id": self.meter.id, "read_at": self.t0, "forward_total": -1})

    def test_create_runs_the_after_ingest_hook_once(self):
        """Readings entered through ``create`` reach the hook other add-ons extend (the
        portal's read-now requests, billing's charge), once per call, as ``_ingest``'s do."""
        seen = []
        model = type(self.env["prepaid.meter.reading"])
        with patch.object(model, "_after_ingest", lambda self, ids: seen.append(set(ids))):
            self.env["prepaid.meter.reading"].create(
                [
                    {"meter_id": self.meter.id, "read_at": self.t0, "forward_total": 50},
                    {
                        "meter_id": self.meter.id,
                        "read_at": self.t0 + timedelta(hours=1),
                        "forward_total": 51,
                    },
                ]
            )
        self.assertEqual(seen, [{self.meter.id}])

    def test_relay_mismatch_of_the_bulk_path_is_the_orm_compute(self):
        """A meter's first relay report sets ``relay_mismatch`` in the latest states'
        UPDATE (staged, and read back from the store for a large batch): the value the
        ORM compute gives, over every meter state, relay or not, relay asked and reported."""
        self.ddsy.has_relay, self.water.has_relay = True, False
        combinations = list(
            itertools.product(
                ["draft", "in_service"], [self.ddsy, self.water], ["on", "off"], ["on", "off"]
            )
        )
        for large in (False, True):
            meters, rows = self.env["prepaid.meter"], []
            for n, (state, model, desired, reported) in enumerate(combinations):
                meter = self._create_meter(
                    f"Relay {large} {n}",
                    f"77{int(large)}{n:09d}",
                    model=model,
                    bus=self.bus2 if large else self.bus1,
                    state=state,
                )
                meter.desired_relay_state = desired
                meters |= meter
                rows.append(
                    {
                        "meter_id": meter.id,
                        "read_at": self.t0,
                        "forward_total": 10.0,
                        "relay_state": reported,
                    }
                )
            with (
                patch.object(reading_module, "LARGE_BATCH", 2 if large else 5000),
                patch.object(reading_module, "FLEET_LOOKUP", 2 if large else 20000),
            ):
                self.assertEqual(self.env["prepaid.meter.reading"]._ingest(rows)["stored"], 16)
            stored = meters.mapped("relay_mismatch")
            self.assertIn(True, stored)
            latest = meters.latest_id
            self.env.add_to_compute(latest._fields["relay_mismatch"], latest)
            latest.flush_recordset()
            meters.invalidate_recordset()
            self.assertEqual(meters.mapped("relay_mismatch"), stored, f"large: {large}")

    def test_accept_baseline(self):
        self._ingest(self.meter, (0, 100), (30, 10))  # meter zeroed: rollback
        flagged = self._readings(self.meter)[1]
        self.assertEqual(flagged.flags, "rollback")
        flagged.action_accept_baseline()
        self.assertTrue(flagged.reviewed)  # (it leaves the review queue)
        self._ingest(self.meter, (60, 11))
        last = self._readings(self.meter)[2]
        self.assertTrue(last.chargeable)
        self.assertAlmostEqual(last.consumption, 1.0)
        self.assertIn("baseline", self.meter.event_ids.mapped("event_type"))

    def test_lost_connection_cron(self):
        self._ingest(self.meter, (0, 100))
        self.meter.sudo().write({"last_contact_at": self.t0 - timedelta(days=1)})
        lost = self.env["prepaid.meter"]._cron_update_connection_state()
        self.assertIn(self.meter, lost)
        self.assertEqual(self.meter.connection_state, "lost")
        self.assertEqual(self.meter.status, "lost")
        self.assertIn("connection_lost", self.meter.event_ids.mapped("event_type"))

    def test_daily_freeze(self):
        # 48 readings over one day, 0.5 each after the baseline, one spike
        points = [(30 * i, 100 + 0.5 * i) for i in range(48)]
        points[10] = (300, 500)
        self._ingest(self.meter, *points)
        daily = self.env["prepaid.meter.reading.daily"]
        daily._freeze(self.t0 - timedelta(days=1))
        day = daily.search([("meter_id", "=", self.meter.id)])
        self.assertEqual(len(day), 1)
        self.assertEqual(day.reading_count, 48)
        self.assertEqual(day.flagged_count, 2)  # baseline + spike
        # charged: 47 steps of 0.5, the spike interval and the next are judged against the
        # baseline kept before the spike: readings 9 -> 11 charge 1.0 together
        self.assertAlmostEqual(day.consumption, 23.5)
        self.assertEqual(day.unit_id, self.unit)
        # running it again updates in place
        daily._freeze(self.t0 - timedelta(days=1))
        self.assertEqual(daily.search_count([("meter_id", "=", self.meter.id)]), 1)

    def test_daily_freeze_leaves_a_day_begun_before_since_whole(self):
        """East of UTC a UTC midnight falls inside a local day.  The hourly freeze reads the
        last 50 hours: it must not overwrite the day before yesterday, frozen whole before,
        with that day's last hours only."""
        self.meter.company_id.partner_id.tz = "Asia/Shanghai"  # UTC+8, no daylight saving
        start = self.t0 - timedelta(hours=8)  # 2 March, 00:00 local
        # a reading every hour over 2 and 3 March (local), 1 unit each after the first
        self._ingest(self.meter, *((60 * hour - 480, 100 + hour) for hour in range(48)))
        daily = self.env["prepaid.meter.reading.daily"]
        self.assertEqual(daily._freeze(start), 2)  # both days begin at or after start

        def days():
            records = daily.search([("meter_id", "=", self.meter.id)], order="day")
            return [(str(d.day), d.reading_count, d.consumption) for d in records]

        whole = [("2026-03-02", 24, 23.0), ("2026-03-03", 24, 24.0)]
        self.assertEqual(days(), whole)
        # from t0, 08:00 local on 2 March: the 3rd refreshed, the 2nd left whole
        self.assertEqual(daily._freeze(self.t0), 1)
        self.assertEqual(days(), whole)

    def _keep_raw_readings_since_t0(self):
        days = (fields.Datetime.now() - self.t0).days + 30
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_meter.reading_retention_days", str(days)
        )

    def test_hourly_freeze_takes_the_days_that_received_readings_late_ones_too(self):
        """The hourly freeze aggregates again the local days that received readings since
        its last run, whenever they were read: a collector's backlog of five days ago
        reaches the daily history (the former cron read the last 50 hours only).  A day
        that received nothing is not read, and a day is frozen with all its readings, not
        only those that came since the last run."""
        self._keep_raw_readings_since_t0()
        self.meter.company_id.partner_id.tz = "Asia/Shanghai"  # UTC+8
        daily = self.env["prepaid.meter.reading.daily"]

        def days():
            records = daily.search([("meter_id", "=", self.meter.id)], order="day")
            return [(str(d.day), d.reading_count, d.consumption) for d in records]

        # 2 March local: readings every hour from 08:00 (t0) to 23:00, 1 unit each
        self._ingest(self.meter, *((60 * hour, 200 + hour) for hour in range(16)))
        daily._cron_freeze()
        self.assertEqual(days(), [("2026-03-02", 16, 15.0)])
        self.assertEqual(daily._cron_freeze(), 0)  # nothing new: nothing read
        # the day's last reading comes after the freeze: the day again, whole
        self._ingest(self.meter, (60 * 16 - 1, 216))  # 23:59 local
        self.assertEqual(daily._cron_freeze(), 1)
        self.assertEqual(days(), [("2026-03-02", 17, 16.0)])
        # the collector's backlog of 25 February (local), read hourly from 00:00 to 09:00
        start = -60 * (5 * 24 + 8)
        self._ingest(self.meter, *((start + 60 * hour, 100 + hour) for hour in range(10)))
        # a day that received nothing is left as it is (not read)
        self.env.cr.execute(
            "UPDATE prepaid_meter_reading_daily SET reading_count = 99 WHERE meter_id = %s",
            [self.meter.id],
        )
        daily.invalidate_model()
        self.assertEqual(daily._cron_freeze(), 1)
        self.assertEqual(days(), [("2026-02-25", 10, 0.0), ("2026-03-02", 99, 16.0)])
        backlog = daily.search([("meter_id", "=", self.meter.id), ("day", "=", "2026-02-25")])
        self.assertEqual((backlog.first_total, backlog.last_total), (100.0, 109.0))
        self.assertEqual(daily._freeze_queued(), 0)

    def test_upgrade_queues_what_the_former_cron_would_have_frozen_next(self):
        """A database upgraded from the former cron (the last 50 hours every hour) gets the
        queue with those hours in it: today and yesterday are frozen by the next run."""
        now = fields.Datetime.now().replace(microsecond=0)
        rows = [
            {
                "meter_id": self.meter.id,
                "read_at": now - timedelta(hours=hours),
                "forward_total": 100 - hours,
            }
            for hours in (60, 30, 1)
        ]
        self.env["prepaid.meter.reading"]._ingest(rows)
        daily = self.env["prepaid.meter.reading.daily"]
        self.env.cr.execute("DROP TABLE prepaid_meter_reading_daily_queue")
        daily.init()
        self.env.cr.execute(
            "SELECT company_id, first_at, last_at FROM prepaid_meter_reading_daily_queue"
        )
        self.assertEqual(
            self.env.cr.fetchall(),
            [(self.company.id, now - timedelta(hours=30), now - timedelta(hours=1))],
        )

    def test_hourly_freeze_reads_the_days_of_the_companies_that_received_readings(self):
        """A company's readings queue its own days, in its time zone: another company's
        same days are not read again."""
        self._keep_raw_readings_since_t0()
        other = self.env["res.company"].create({"name": "Other landlord"})
        other.partner_id.tz = "America/New_York"
        self._ingest(self.meter, (0, 100), (30, 101))
        daily = self.env["prepaid.meter.reading.daily"]
        read = []
        freeze_from = type(daily)._freeze_from

        def spy(model, local):
            read.append(local.params[:3])  # the companies, their days and time zones
            return freeze_from(model, local)

        with patch.object(type(daily), "_freeze_from", spy):
            self.assertEqual(daily._freeze_queued(), 1)
        tz = self.company.partner_id.tz or "UTC"
        self.assertEqual(read, [[[self.company.id], [self.t0.date()], [tz]]])

    def test_hourly_freeze_leaves_days_past_the_retention_period(self):
        """A late reading of a day whose raw readings were purged does not replace the
        day's frozen record with that one reading."""
        self._keep_raw_readings_since_t0()
        daily = self.env["prepaid.meter.reading.daily"]
        self._ingest(self.meter, *((60 * hour, 200 + hour) for hour in range(5)))
        daily._cron_freeze()
        record = daily.search([("meter_id", "=", self.meter.id)])
        self.assertEqual(record.reading_count, 5)
        # the retention period now ends on t0's day: its raw readings are gone
        kept = (fields.Datetime.now() - self.t0).days
        self.env["ir.config_parameter"].sudo().set_param(
            "prepaid_meter.reading_retention_days", str(kept)
        )
        self._ingest(self.meter, (60 * 5, 205))
        self.assertEqual(daily._freeze_queued(), 0)
        record.invalidate_recordset()
        self.assertEqual(record.reading_count, 5)

    def test_review_queue_and_time_ranges_are_read_through_indexes(self):
        """The Readings menu opens on the readings to review (flagged and not charged, but
        not a meter's first reading). That filter, in the menu's order, is read through an index of
        every partition, not by scanning every reading of every month: checked on the plan
        with sequential scans priced out (PostgreSQL still scans a partition when no index
        of it serves the condition, e.g. a partial index whose condition the filter's SQL
        no longer implies). Time ranges (the daily freeze, date filters) have a BRIN index
        of read_at on every partition, a new month's too."""
        # baseline, rollback, normal, normal, a gap (flagged, charged: not to review)
        self._ingest(self.meter, (0, 100), (30, 99.0), (60, 100.5), (90, 101.0), (690, 110))
        Reading = self.env["prepaid.meter.reading"]
        self.assertEqual(self._readings(self.meter)[-1].flags, "gap")
        Reading._ensure_partitions([date(2090, 1, 1)])
        action = self.env.ref("prepaid_meter.prepaid_meter_reading_action")
        self.assertEqual(safe_eval(action.context), {"search_default_to_review": 1})
        arch = etree.fromstring(Reading.get_views([(False, "search")])["views"]["search"]["arch"])
        (review,) = arch.xpath("//filter[@name='to_review']")
        domain = safe_eval(review.get("domain"))
        queue = Reading.search([*domain, ("meter_id", "=", self.meter.id)])
        self.assertEqual(queue.mapped("flags"), ["rollback"])  # not the baseline, the gap...
        # reviewed, it leaves the queue (an operator may not mark it)
        with self.assertRaisesRegex(UserError, "manager"):
            operator = self._user("op-review", "prepaid_meter.group_prepaid_user")
            queue.with_user(operator).action_mark_reviewed()
        queue.action_mark_reviewed()
        self.assertTrue(queue.reviewed)
        self.assertEqual(queue.flags, "rollback")
        self.assertFalse(Reading.search([*domain, ("meter_id", "=", self.meter.id)]))
        # a meter's readings (its form's button) open without the filter
        self.assertNotIn("search_default_to_review", self.meter.action_view_readings()["context"])
        cr = self.env.cr
        cr.execute("SET LOCAL enable_seqscan = off")
        query = Reading._search(domain, order=Reading._order, limit=80).select()
        cr.execute(SQL("EXPLAIN (FORMAT JSON) %s", query))
        scans = list(self._store_scans(cr.fetchone()[0][0]["Plan"]))
        cr.execute("RESET enable_seqscan")
        cr.execute(
            "SELECT count(*) FROM pg_inherits "
            "WHERE inhparent = 'prepaid_meter_reading_store'::regclass"
        )
        partitions = cr.fetchone()[0]
        self.assertGreaterEqual(partitions, 3)
        self.assertEqual(len(scans), partitions)  # each partition, none pruned
        for node_type, index in scans:
            self.assertIn(node_type, ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"))
            self.assertEqual(self._index_method_and_column(index), ("btree", "read_at"), index)
        # a BRIN index of read_at on every partition
        cr.execute(
            """
            SELECT p.relname, array_agg(c.relname)
              FROM pg_inherits h
              JOIN pg_class p ON p.oid = h.inhrelid
              JOIN pg_index i ON i.indrelid = p.oid
              JOIN pg_class c ON c.oid = i.indexrelid
             WHERE h.inhparent = 'prepaid_meter_reading_store'::regclass
             GROUP BY p.relname
            """
        )
        for partition, indexes in cr.fetchall():
            found = {self._index_method_and_column(index) for index in indexes}
            self.assertIn(("brin", "read_at"), found, partition)

    def test_a_page_newest_first_is_looked_for_among_the_last_readings(self):
        """A page of readings newest first with no time bound (the Readings list without its
        filter) that PostgreSQL estimates costly is read from the first window back from now
        (1 hour, 1 day, 8 days, 64 days) that holds the whole page, else from every reading:
        the same page as without the bound, with the older months' partitions pruned.  A
        meter's readings are not bounded (the (meter, time) index serves them); nor is a page
        estimated cheap (a test's few readings, unless the threshold is lowered)."""
        unit = self.env["prepaid.unit"].create(
            {"name": "Window", "building_id": self.building.id, "floor_id": self.floor.id}
        )
        meter = self._create_meter("Window", "000000099001", unit=unit)
        now = fields.Datetime.now().replace(second=0, microsecond=0)
        self.t0 = now - timedelta(days=69, minutes=50)
        minutes = [day * 1440 for day in range(70)] + [69 * 1440 + 20, 69 * 1440 + 40]
        self._ingest(meter, *((m, 100 + i) for i, m in enumerate(minutes)))
        Reading = self.env["prepaid.meter.reading"]
        domain = [("unit_id", "=", unit.id)]
        every = Reading.search(domain)  # (no limit: never bounded)
        self.assertEqual(len(every), 72)
        self.assertEqual(every[0].read_at, now - timedelta(minutes=10))
        # a few readings: estimated cheap, not bounded (the ORM's own query)
        page = Reading._search(domain, limit=3, order=Reading._order).select()
        plain = models.BaseModel._search(Reading, domain, limit=3, order=Reading._order).select()
        self.assertEqual((page.code, page.params), (plain.code, plain.params))
        # as if they were many (the estimate over the threshold)
        self.patch(reading_module, "NEWEST_FIRST_COST", -1)
        for offset, limit, hours in (
            (0, 3, 1),  # the last hour holds 3 readings
            (0, 4, 24 * 8),  # the last day no fourth: the last 8 days (10)
            (5, 5, 24 * 8),
            (0, 11, 24 * 64),
            (0, 67, None),  # 66 in the last 64 days: every reading
            (70, 5, None),  # the last 2
        ):
            since = Reading._newest_first_since(domain, offset + limit, {})
            if hours is None:
                self.assertIsNone(since, (offset, limit))
            else:
                expected = fields.Datetime.now() - timedelta(hours=hours)
                self.assertLess(abs(since - expected), timedelta(minutes=1), (offset, limit))
            page = Reading.search(domain, offset=offset, limit=limit)
            self.assertEqual(page, every[offset : offset + limit], (offset, limit))
        # another order: not bounded (the oldest 3 are not in the last hour)
        oldest = Reading.search(domain, limit=3, order="read_at")
        self.assertEqual(oldest, every[-3:].sorted("read_at"))
        cr = self.env.cr
        # the bound prunes the partitions of the older months
        query = Reading._search(domain, limit=3, order=Reading._order).select()
        cr.execute(SQL("EXPLAIN (FORMAT JSON) %s", query))
        scanned = {name for name, _type in self._store_relations(cr.fetchone()[0][0]["Plan"])}
        self.assertTrue(scanned, "the plan reads a partition of the store")
        self.assertNotIn(Reading._partition_name(self.t0), scanned)
        # a meter's readings: not bounded, read newest first through the (meter, time) index
        query = Reading._search([("meter_id", "=", meter.id)], limit=3, order=Reading._order)
        cr.execute(SQL("EXPLAIN (FORMAT JSON) %s", query.select()))
        scanned = {name for name, _type in self._store_relations(cr.fetchone()[0][0]["Plan"])}
        self.assertIn(Reading._partition_name(self.t0), scanned)
        self.assertEqual(Reading.browse(query), every[:3])

    @classmethod
    def _store_relations(cls, node):
        """(relation, node type) of each scan of a partition of the readings store."""
        if node.get("Relation Name", "").startswith("prepaid_meter_reading_store"):
            yield node["Relation Name"], node["Node Type"]
            return
        for child in node.get("Plans", ()):
            yield from cls._store_relations(child)

    def _index_method_and_column(self, index):
        """(access method, first column) of the index named ``index``."""
        self.env.cr.execute(
            """
            SELECT am.amname, a.attname
              FROM pg_class c
              JOIN pg_am am ON am.oid = c.relam
              JOIN pg_index i ON i.indexrelid = c.oid
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE c.relname = %s
            """,
            [index],
        )
        return self.env.cr.fetchone()

    @classmethod
    def _store_scans(cls, node):
        """(node type, index) of each scan of a partition of the readings store in a plan."""
        if node.get("Relation Name", "").startswith("prepaid_meter_reading_store"):
            index = node.get("Index Name")
            if index is None and node["Node Type"] == "Bitmap Heap Scan":
                (child,) = node["Plans"]  # one Bitmap Index Scan (no BitmapOr/And here)
                index = child.get("Index Name")
            yield node["Node Type"], index
            return
        for child in node.get("Plans", ()):
            yield from cls._store_scans(child)

    def test_partitions_by_month_and_retention(self):
        """Readings land in monthly partitions; retention drops whole months."""
        old = self.t0.replace(year=2019, month=1)
        readings = self.env["prepaid.meter.reading"]
        cr = self.env.cr
        # no partition for January 2019: the batch creates it
        self._ingest(self.meter, (0, 100))
        readings._ingest(
            [{"meter_id": self.meter.id, "read_at": old, "forward_total": 50}]
        )  # late: stored, flagged, in its own month
        cr.execute("SELECT count(*) FROM prepaid_meter_reading_store_2019_01")
        self.assertEqual(cr.fetchone()[0], 1)
        # a row that reached the default partition is moved when its month gets a partition
        cr.execute(
            "INSERT INTO prepaid_meter_reading_store_default "
            "(meter_id, company_id, read_at, source, forward_total) "
            "VALUES (%s, %s, %s, 'import', 1)",
            [self.meter.id, self.company.id, old.replace(year=2018)],
        )
        readings._ensure_partitions([old.replace(year=2018)])
        cr.execute("SELECT count(*) FROM prepaid_meter_reading_store_2018_01")
        self.assertEqual(cr.fetchone()[0], 1)
        self.assertEqual(readings.search_count([("meter_id", "=", self.meter.id)]), 3)
        dropped = readings._drop_partitions_before(old.date().replace(month=3))
        self.assertEqual(
            sorted(dropped),
            ["prepaid_meter_reading_store_2018_01", "prepaid_meter_reading_store_2019_01"],
        )
        self.assertEqual(readings.search_count([("meter_id", "=", self.meter.id)]), 1)

    def test_large_batch_streams_in_chunks_and_resend_is_idempotent(self):
        """More rows than one COPY chunk, several meters, out of order; then the same rows
        again with a few new ones: only the new ones are stored, each reading charged once."""
        meters = self.env["prepaid.meter"].create(
            [
                {"name": f"Bulk {i}", "model_id": self.ddsy.id, "unit_id": self.unit2.id}
                for i in range(60)
            ]
        )
        rows = [
            {
                "meter_id": meter.id,
                "read_at": self.t0 + timedelta(minutes=30 * step),
                "forward_total": 100 + step * 0.25,
                "power": 0.5,
            }
            for step in range(45)
            for meter in meters
        ]
        rows.reverse()
        readings = self.env["prepaid.meter.reading"]
        first = readings._ingest(rows)
        self.assertEqual(first["stored"], 60 * 45)
        self.assertFalse(first["rejected"])
        again = readings._ingest(
            rows[:100]
            + [
                {
                    "meter_id": meter.id,
                    "read_at": self.t0 + timedelta(minutes=30 * 45),
                    "forward_total": 100 + 45 * 0.25,
                }
                for meter in meters[:10]
            ]
        )
        self.assertEqual(again["stored"], 10)
        self.assertEqual(len(again["rejected"]), 100)
        self.env.cr.execute(
            "SELECT sum(consumption) FROM prepaid_meter_reading WHERE meter_id = ANY(%s) "
            "AND chargeable",
            [meters.ids],
        )
        # 60 meters x 44 charged intervals x 0.25, plus 10 meters x one more interval
        self.assertAlmostEqual(float(self.env.cr.fetchone()[0]), 60 * 44 * 0.25 + 10 * 0.25)
        self.assertEqual(set(meters[:10].mapped("baseline_total")), {111.25})
        self.assertEqual(set(meters[10:].mapped("baseline_total")), {111.0})
