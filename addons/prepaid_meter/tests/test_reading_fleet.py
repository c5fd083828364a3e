"""M5: the bulk path's fleet batch -- one reading of each meter, named by id, as a gateway
sends one interval of its meters -- is judged without sorting, and a large batch is parsed
while PostgreSQL looks its meters up (a helper thread).  Both must give exactly what the
sorted path gives a meter's series."""

import sys
from datetime import timedelta
from unittest.mock import patch

import psycopg2
from dateutil.relativedelta import relativedelta

from odoo.tests import tagged
from odoo.tools import SQL, mute_logger

from prepaid_core.reading_batch import pipeline
from prepaid_core.reading_batch.judge import Followup

from ..models import prepaid_meter_reading as reading_module
from .common import PrepaidMeterCommon

#: (minutes after t0, forward total) series, one per meter, covering the flags that do not
#: depend on the order of arrival: a baseline, normal steps, rollback, spike, gap, register
#: rollover (a late reading is late only as it arrives: tested apart)
SERIES = {
    "normal": [(0, 100), (30, 101.5), (60, 102.25), (90, 103)],
    "rollback": [(0, 100), (30, 99), (60, 100.5), (90, 101)],
    "spike": [(0, 100), (30, 150), (60, 101), (90, 102)],
    "gap": [(0, 100), (30, 100.5), (600, 110), (630, 110.5)],
    "rollover": [(0, 999998.5), (30, 999999.5), (60, 0.7), (90, 1.2)],
}


@tagged("post_install", "-at_install")
class TestReadingFleetBatch(PrepaidMeterCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fleet, cls.series = {}, {}
        for n, name in enumerate(SERIES):
            for way in ("fleet", "series"):
                # a CT meter among them: the total is forward x 40
                model = cls.dtsy_ct if name == "normal" else cls.ddsy
                getattr(cls, way)[name] = cls._create_meter(
                    f"{way} {name}", f"{9000 + n:06d}{len(way):06d}", cls.unit2, model=model
                )

    def setUp(self):
        super().setUp()
        # the large-batch ways (helper-thread look-up, latest states read back from the
        # store) for these few meters
        for name in ("LARGE_BATCH", "FLEET_LOOKUP"):  # and the fleet's merge-join look-up
            large = patch.object(reading_module, name, 2)
            large.start()
            self.addCleanup(large.stop)

    def _rows(self, meter, points, **extra):
        return [
            {
                "meter_id": meter.id,
                "read_at": self.t0 + timedelta(minutes=minutes),
                "forward_total": total,
                **extra,
            }
            for minutes, total in points
        ]

    def _judged(self, meter):
        readings = self._readings(meter)
        return {
            "flags": readings.mapped("flags"),
            "consumption": [round(c, 4) for c in readings.mapped("consumption")],
            "chargeable": readings.mapped("chargeable"),
            "total": [round(t, 4) for t in readings.mapped("total")],
            "baseline": (round(meter.baseline_total, 4), meter.baseline_at),
            "last": (round(meter.last_total, 4), meter.last_reading_at),
        }

    def test_fleet_batches_judge_like_a_meter_series(self):
        """Each interval sent as one fleet batch (one row per meter, through the helper
        thread) gives, reading for reading, what each meter's whole series sent at once
        (sorted path) gives: flags, consumption, charged or not, baseline, latest."""
        readings = self.env["prepaid.meter.reading"]
        for step in range(4):
            batch = []
            for name, meter in self.fleet.items():
                batch += self._rows(meter, [SERIES[name][step]], power=0.5)
            result = readings._ingest(batch)
            self.assertEqual(result["stored"], len(SERIES))
            self.assertFalse(result["rejected"])
        for name, meter in self.series.items():
            result = readings._ingest(self._rows(meter, SERIES[name], power=0.5))
            self.assertEqual(result["stored"], 4)
        for name in SERIES:
            self.assertEqual(self._judged(self.fleet[name]), self._judged(self.series[name]), name)
        # the cases are what they claim to be
        flags = {name: self._readings(meter).mapped("flags") for name, meter in self.fleet.items()}
        self.assertEqual(flags["rollback"][1], "rollback")
        self.assertEqual(flags["spike"][1], "spike")
        self.assertEqual(flags["gap"][2], "gap")
        self.assertEqual(flags["rollover"][2], "rollover")
        self.assertEqual(self.fleet["normal"].last_power, 0.5 * 40, "primary side: x CT 40")
        self.assertAlmostEqual(self._readings(self.fleet["normal"])[1].consumption, 1.5 * 40)

    def test_fleet_batch_rejects_bad_rows_one_by_one(self):
        """Bad rows of a fleet batch (helper thread) are refused with their reason, the rest
        stored: unknown or removed meters, bad values; nothing is dropped silently."""
        removed = self._create_meter("Gone", "000000009999", self.unit2, state="removed")
        good = list(self.fleet.values())
        batch = [
            {"meter_id": good[0].id, "read_at": self.t0, "forward_total": 10.0},
            {"meter_id": 987654321, "read_at": self.t0, "forward_total": 10.0},
            {"meter_id": removed.id, "read_at": self.t0, "forward_total": 10.0},
            {"meter_id": good[1].id, "read_at": self.t0, "forward_total": -1},
            {"meter_id": good[2].id, "read_at": "not a time", "forward_total": 1},
            {"meter_id": good[3].id, "read_at": self.t0, "forward_total": 1, "voltage": "nan"},
            {"meter_id": good[4].id, "read_at": self.t0, "forward_total": 1, "relay_state": "x"},
            # an unknown meter with a bad value too: the meter is what is wrong first
            {"meter_id": 987654322, "read_at": self.t0, "forward_total": "lots"},
            {
                "meter_id": self.meter.id,
                "read_at": "2026-03-02T00:00:00Z",
                "forward_total": "12.5",
                "voltage": 230,
            },
        ]
        result = self.env["prepaid.meter.reading"]._ingest(batch)
        self.assertEqual(result["stored"], 2)
        reasons = {r["index"]: r["reason"] for r in result["rejected"]}
        self.assertEqual(sorted(reasons), [1, 2, 3, 4, 5, 6, 7])
        self.assertIn("Unknown meter", reasons[1])
        self.assertIn("Unknown meter", reasons[2])
        self.assertIn("negative", reasons[3])
        self.assertIn("read_at", reasons[4])
        self.assertIn("voltage", reasons[5])
        self.assertIn("relay_state", reasons[6])
        self.assertIn("Unknown meter", reasons[7])
        rejections = self.env["prepaid.meter.reading.rejection"].search([])
        self.assertEqual(len(rejections), 7)
        self.assertEqual(good[0].last_forward_total, 10.0)
        self.assertEqual(self.meter.last_total, 12.5)
        self.assertEqual(self._readings(self.meter).voltage, 230)

    def test_fleet_batch_resent_is_stored_once(self):
        """R-idempotency on the fleet path: the same interval again, with one new meter,
        stores only the new reading; nothing is charged twice."""
        readings = self.env["prepaid.meter.reading"]
        meters = list(self.fleet.values())
        first = [{"meter_id": m.id, "read_at": self.t0, "forward_total": 100.0} for m in meters]
        second = [
            {"meter_id": m.id, "read_at": self.t0 + timedelta(minutes=30), "forward_total": 101.0}
            for m in meters[:-1]
        ]
        readings._ingest(first[:-1])
        readings._ingest(second)
        resent = readings._ingest([*second, first[-1]])
        self.assertEqual(resent["stored"], 1)
        self.assertEqual(len(resent["rejected"]), len(meters) - 1)
        self.assertTrue(all(r["reason"] == "Duplicate reading." for r in resent["rejected"]))
        for meter in meters[:-1]:
            self.assertEqual(self._readings(meter).mapped("chargeable"), [False, True])
            self.assertEqual(meter.baseline_total, 101.0 * (40 if meter.multiplier == 40 else 1))
        self.assertEqual(meters[-1].baseline_total, 100.0)

    def test_fleet_batch_relay_and_connection_events(self):
        """In a fleet batch, a relay that changes and a lost meter heard again are events; a
        relay reported for the first time against what was asked is a mismatch."""
        cut, back, first = (self.fleet[name] for name in ("normal", "rollback", "spike"))
        readings = self.env["prepaid.meter.reading"]
        readings._ingest(
            self._rows(cut, [(0, 10)], relay_state="on")
            + self._rows(back, [(0, 10)], relay_state="on")
        )
        back.connection_state = "lost"
        first._set_desired_relay("off", "Credit exhausted")
        readings._ingest(
            self._rows(cut, [(30, 10.1)], relay_state="off")
            + self._rows(back, [(30, 10.1)], relay_state="on")
            + self._rows(first, [(30, 10.1)], relay_state="on")
        )
        self.assertEqual(cut.actual_relay_state, "off")
        self.assertIn("relay_off", cut.event_ids.mapped("event_type"))
        self.assertEqual(back.connection_state, "online")
        self.assertIn("connection_restored", back.event_ids.mapped("event_type"))
        self.assertNotIn("relay_on", back.event_ids.mapped("event_type"))
        self.assertEqual(first.actual_relay_state, "on")
        self.assertTrue(first.relay_mismatch)
        self.assertTrue(cut.relay_mismatch)  # off while on is asked

    def test_fleet_batch_late_reading(self):
        """A fleet batch older than a meter's latest reading: stored, flagged late, not
        charged; the meter's latest reading and baseline stay."""
        meter = self.fleet["spike"]
        readings = self.env["prepaid.meter.reading"]
        readings._ingest(self._rows(meter, [(60, 100)]) + self._rows(self.meter, [(60, 5)]))
        result = readings._ingest(self._rows(meter, [(30, 99)]) + self._rows(self.meter, [(90, 6)]))
        self.assertEqual(result["stored"], 2)
        self.assertEqual(result["flagged"], 1)
        late = self._readings(meter)[0]
        self.assertEqual(late.flags, "late")
        self.assertFalse(late.chargeable)
        self.assertEqual(meter.last_reading_at, self.t0 + timedelta(minutes=60))
        self.assertEqual((meter.last_total, meter.baseline_total), (100, 100))
        self.assertTrue(meter.last_contact_at)
        self.assertEqual(self.meter.baseline_total, 6)

    def test_fleet_chunks_judged_by_column_as_row_by_row(self):
        """A fleet batch's plain rows are judged a chunk at a time, column by column,
        without their meters' states; the rows (to the COPY line and the Decimal's
        exponent) and what the latest states' UPDATE needs are those of the row by row
        judgement, chunks of one row mixing both ways (flagged rows, a CT meter, a relay
        reported off while asked on)."""
        readings = self.env["prepaid.meter.reading"]
        received = "2026-03-01 12:00:00"
        taken = 0
        for step in range(4):
            batch = []
            for name, meter in self.fleet.items():
                relay = "off" if name == "normal" else "on"
                batch += self._rows(
                    meter, [SERIES[name][step]], voltage=221.5, power=0.25, relay_state=relay
                )
            measures = readings._batch_measures(batch)
            parsed, errors = readings._parse_rows(batch, "push", measures)
            self.assertFalse(errors)
            judged = {}
            for way in ("fleet", "rows"):
                meters = readings._load_meter_states(batch)
                followup = Followup()
                if way == "fleet":
                    judge = readings._batch_judge(meters, [], measures, followup)
                    judge.received = received
                    judge.batch_source = "push"
                    rows = []
                    for item in parsed:  # (chunks of one row)
                        one = judge.fleet_chunk([item])
                        taken += one is not None
                        rows += one or judge.rows([item])
                else:
                    judge = readings._batch_judge(meters, [], measures)
                    judge.received = received
                    rows = list(judge.rows(parsed))
                    for row in rows:
                        followup.add(
                            meters.by_id[row.meter_id].profile,
                            row.meter_id,
                            row.read_at,
                            row.flags,
                            row.moves,
                            row.relay_state,
                        )
                judged[way] = (
                    repr(rows),
                    followup.late,
                    followup.kept,
                    followup.mismatched,
                    followup.changes,
                )
            self.assertEqual(judged["fleet"], judged["rows"], f"interval {step}")
            readings._ingest(batch)
        # every reading went the column way (the first ones as baselines) but the four
        # flagged ones (a rollback, a spike, a gap, a rollover: one in each series but the
        # normal one)
        self.assertEqual(taken, 4 * len(SERIES) - 4)
        self.assertEqual(self.fleet["normal"].relay_mismatch, True)

    def test_fleet_batch_latest_states_read_back_from_the_store(self):
        """A fleet batch's latest states are read back from the store (nothing staged);
        should the store not give back every row, they are staged instead, same result."""
        model = type(self.env["prepaid.meter.reading"])
        meters = list(self.fleet.values())
        readings = self.env["prepaid.meter.reading"]
        batch = [{"meter_id": m.id, "read_at": self.t0, "forward_total": 7.0} for m in meters]
        with patch.object(model, "_update_latest_staged", side_effect=AssertionError("staged")):
            readings._ingest(batch)
        self.assertEqual({m.last_forward_total for m in meters}, {7.0})

        def not_all_found(*args, **kwargs):
            raise reading_module._NotAllFound("test")

        later = self.t0 + timedelta(minutes=30)
        batch = [{"meter_id": m.id, "read_at": later, "forward_total": 7.5} for m in meters]
        with (
            patch.object(model, "_update_latest_from_store", not_all_found),
            mute_logger(reading_module.__name__),
        ):
            result = readings._ingest(batch)
        self.assertEqual(result["stored"], len(meters))
        self.assertEqual({m.last_forward_total for m in meters}, {7.5})
        self.assertEqual({m.baseline_at for m in meters}, {later})

    def test_after_ingest_hook_gets_the_meters_stored(self):
        seen = []
        model = type(self.env["prepaid.meter.reading"])
        meters = list(self.fleet.values())[:3]
        batch = [{"meter_id": m.id, "read_at": self.t0, "forward_total": 5.0} for m in meters]
        batch.append({"meter_id": 987654321, "read_at": self.t0, "forward_total": 5.0})
        with patch.object(model, "_after_ingest", lambda self, ids: seen.append(set(ids))):
            self.env["prepaid.meter.reading"]._ingest(batch)
        self.assertEqual(seen, [{m.id for m in meters}])

    @mute_logger("odoo.sql_db")
    def test_meter_lookup_failure_in_helper_thread_is_raised(self):
        """The look-up runs from a helper thread: its error reaches the caller, after the
        work done meanwhile (nothing is left running on the cursor)."""
        done = []
        readings = self.env["prepaid.meter.reading"]
        with self.assertRaises(psycopg2.errors.DivisionByZero), self.env.cr.savepoint():
            readings._execute_meanwhile(SQL("SELECT 1 / 0"), lambda: done.append(True))
        self.assertEqual(done, [True])
        self.env.cr.execute("SELECT 1")
        self.assertEqual(self.env.cr.fetchone(), (1,))
        # without error: the rows (fetched by the helper) and the work's result
        self.assertEqual(
            readings._execute_meanwhile(SQL("SELECT n FROM generate_series(1, 3) n"), lambda: 7),
            ([(1,), (2,), (3,)], 7),
        )

    def test_fleet_batch_copied_into_its_month_partition(self):
        """A batch of one month is copied into that month's partition (no routing of each
        row); one across two months into the store, which routes each row."""
        model = type(self.env["prepaid.meter.reading"])
        copy_rows = model._copy_rows
        targets = []

        def spy(self, validated, rejections, measures=(), table=reading_module.STORE):
            targets.append(table)
            return copy_rows(self, validated, rejections, measures, table)

        meters = list(self.fleet.values())
        readings = self.env["prepaid.meter.reading"]
        month_end = self.t0.replace(day=1, hour=0, minute=0) + relativedelta(months=1)
        one_month = [
            {"meter_id": m.id, "read_at": month_end - timedelta(hours=1), "forward_total": 3.0}
            for m in meters
        ]
        two_months = [
            {"meter_id": m.id, "read_at": month_end + timedelta(minutes=n), "forward_total": 4.0}
            for n, m in enumerate(meters)
        ]
        two_months[0]["read_at"] = month_end - timedelta(minutes=30)
        with patch.object(model, "_copy_rows", spy):
            self.assertEqual(readings._ingest(one_month)["stored"], len(meters))
            self.assertEqual(readings._ingest(two_months)["stored"], len(meters))
        self.assertEqual(
            targets, [readings._partition_name(month_end - timedelta(days=1)), reading_module.STORE]
        )
        self.env.cr.execute(
            f"SELECT tableoid::regclass::text, count(*) FROM {reading_module.STORE} "
            "WHERE meter_id = ANY(%s) GROUP BY 1 ORDER BY 1",
            [[m.id for m in meters]],
        )
        self.assertEqual(
            self.env.cr.fetchall(),
            [
                (readings._partition_name(month_end - timedelta(days=1)), len(meters) + 1),
                (readings._partition_name(month_end), len(meters) - 1),
            ],
        )
        self.assertEqual({m.last_forward_total for m in meters}, {4.0})

    def test_latest_state_keyed_by_its_meter(self):
        """Each meter's latest state names its meter (the fleet batch's update joins on
        it), one state per meter."""
        for meter in self.fleet.values():
            self.assertEqual(meter.latest_id.meter_id, meter)
        meters = list(self.fleet.values())
        with self.assertRaises(psycopg2.errors.UniqueViolation), mute_logger("odoo.sql_db"):
            with self.env.cr.savepoint():
                self.env.cr.execute(
                    "UPDATE prepaid_meter_latest SET meter_id = %s WHERE id = %s",
                    [meters[0].id, meters[1].latest_id.id],
                )

    def test_large_batch_hands_threads_the_interpreter_quickly(self):
        """While a large batch is ingested the interpreter switches threads every
        ``SWITCH_INTERVAL``; the setting is restored afterwards, also when batches nest."""
        model = type(self.env["prepaid.meter.reading"])
        seen = []
        before = sys.getswitchinterval()
        meters = list(self.fleet.values())
        batch = [{"meter_id": m.id, "read_at": self.t0, "forward_total": 2.0} for m in meters]
        with patch.object(
            model, "_after_ingest", lambda self, ids: seen.append(sys.getswitchinterval())
        ):
            with pipeline.quick_thread_switches():
                self.env["prepaid.meter.reading"]._ingest(batch)
                seen.append(sys.getswitchinterval())
        self.assertEqual(seen, [pipeline.SWITCH_INTERVAL] * 2)
        self.assertEqual(sys.getswitchinterval(), before)
