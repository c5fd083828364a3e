from datetime import datetime, timedelta, timezone
from decimal import Decimal

from psycopg2 import IntegrityError

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_core.simulator.meter import DailyFreeze

from .common import MeterGatewayCommon

UTC = timezone.utc  # datetime.UTC is Python 3.11+


@tagged("post_install", "-at_install")
class TestTimeSync(MeterGatewayCommon):
    """G3: the daily time sync of a collector's meters, over real TCP to the simulator."""

    def _sim_gateway(self):
        """A simulated collector with one bus of two meters, and its gateway."""
        sim = self._start_simulator()
        collector = sim.collector([[f"0091000000{n:02d}" for n in (1, 2)]])
        gateway, meters = self._gateway_for(collector, "Sim Time Sync", self.unit)
        return sim, gateway, meters

    def test_daily_time_sync_sets_meter_clocks_once_a_day(self):
        sim, gateway, meters = self._sim_gateway()
        sim_meters = [sim.meter(address) for address in meters.mapped("address")]
        for sim_meter in sim_meters:
            sim_meter.time_offset = timedelta(minutes=-37)  # a drifted clock
        # the daily schedule alone (a drifting clock would get its own sync: TestClockDrift)
        gateway.clock_drift_threshold = 0
        # a new gateway syncs at its next slot, not at once
        self.assertTrue(gateway.time_sync_daily)
        self.assertGreater(gateway.time_sync_next_at, fields.Datetime.now())
        gateway._poll()
        self.assertFalse(
            self.Command.search([("meter_id", "in", meters.ids), ("kind", "=", "time_sync")])
        )
        # the slot has come: the next poll queues and delivers the time sync
        gateway.time_sync_next_at = fields.Datetime.now() - timedelta(minutes=1)
        gateway._poll()
        commands = self.Command.search([("meter_id", "in", meters.ids), ("kind", "=", "time_sync")])
        self.assertEqual(commands.meter_id, meters)
        self.assertEqual(set(commands.mapped("state")), {"confirmed"})
        self.assertEqual(set(commands.mapped("origin")), {"schedule"})
        # the simulated meter keeps its clock in UTC (it converts the local time it is sent)
        for sim_meter in sim_meters:
            drift = abs(sim_meter.local_now() - datetime.now(UTC))
            self.assertLess(drift, timedelta(seconds=10), sim_meter.address)
        # the next slot is tomorrow at the chosen hour of the meters' local time
        next_local = gateway.time_sync_next_at + timedelta(minutes=gateway.meter_utc_offset)
        self.assertEqual((next_local.hour, next_local.minute), (gateway.time_sync_hour, 0))
        self.assertGreater(gateway.time_sync_next_at, fields.Datetime.now())
        self.assertLessEqual(gateway.time_sync_next_at, fields.Datetime.now() + timedelta(days=1))
        self.assertTrue(gateway.time_sync_queued_at)
        # polled again the same day: not queued twice
        gateway.next_poll_at = False
        gateway._poll()
        self.assertEqual(
            self.Command.search_count([("meter_id", "in", meters.ids), ("kind", "=", "time_sync")]),
            2,
        )

    def test_time_sync_supersedes_an_older_one_and_can_be_turned_off(self):
        _sim, gateway, meters = self._sim_gateway()
        older = self.Command._queue(meters[0], "time_sync", "manual")
        gateway.time_sync_next_at = fields.Datetime.now() - timedelta(minutes=1)
        new = gateway._queue_due_time_sync()
        self.assertEqual(new.meter_id, meters)
        self.assertEqual(older.state, "superseded")
        self.assertIn(older.superseded_by_id, new)
        # due again only at the next slot
        self.assertFalse(gateway._queue_due_time_sync())
        # turned off: never queued, no next slot
        gateway.time_sync_daily = False
        self.assertFalse(gateway.time_sync_next_at)
        self.assertFalse(gateway._queue_due_time_sync(fields.Datetime.now() + timedelta(days=3)))
        gateway.time_sync_daily = True
        self.assertTrue(gateway.time_sync_next_at)

    def test_time_sync_slot_in_meter_local_time(self):
        gateway = self.env["prepaid.gateway"].create(
            {
                "name": "Slots",
                "gateway_type": "tcp_collector",
                "site_id": self.site.id,
                "meter_utc_offset": 480,
                "time_sync_hour": 3,
            }
        )
        # 18:30 UTC is 02:30 local: the slot is 03:00 local the same local day (19:00 UTC)
        self.assertEqual(
            gateway._time_sync_slot_after(datetime(2026, 1, 1, 18, 30)),
            datetime(2026, 1, 1, 19, 0),
        )
        # 19:00 UTC exactly is the slot: the next one is a day later
        self.assertEqual(
            gateway._time_sync_slot_after(datetime(2026, 1, 1, 19, 0)),
            datetime(2026, 1, 2, 19, 0),
        )
        with self.assertRaises(ValidationError):
            gateway.time_sync_hour = 24


@tagged("post_install", "-at_install")
class TestDailyFrozen(MeterGatewayCommon):
    """G3: the meter's daily frozen energy, read by the poll over real TCP once a day."""

    def test_poll_reads_the_daily_freeze_once(self):
        sim = self._start_simulator()
        collector = sim.collector([["009200000001", "009200000002"]])
        gateway, meters = self._gateway_for(collector, "Sim Frozen", self.unit)
        Daily = self.env["prepaid.meter.reading.daily"]
        day = Daily._frozen_day(gateway)
        frozen_local = datetime.combine(day + timedelta(days=1), datetime.min.time())
        tou = {"sharp": Decimal(1), "peak": Decimal(2), "flat": Decimal(3), "valley": Decimal(4)}
        first = sim.meter("009200000001")
        first.daily_freeze = DailyFreeze(frozen_local, Decimal("123.45"), tou)
        # the second meter has frozen nothing yet: it answers "no data" and is still read
        gateway._poll()
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})
        record = Daily.search([("meter_id", "=", meters[0].id), ("day", "=", day)])
        self.assertEqual(len(record), 1)
        self.assertAlmostEqual(record.frozen_total, 123.45, places=4)
        self.assertEqual(
            record.frozen_at, frozen_local - timedelta(minutes=gateway.meter_utc_offset)
        )
        self.assertEqual(record.company_id, meters[0].company_id)
        self.assertFalse(Daily.search([("meter_id", "=", meters[1].id), ("day", "=", day)]))
        self.assertEqual(Daily._meters_missing_frozen(meters, day), {meters[1].id})
        # the day holds it: not read again (a changed freeze is not picked up today)
        first.daily_freeze = DailyFreeze(frozen_local, Decimal("999.00"), tou)
        sim.meter("009200000002").daily_freeze = DailyFreeze(frozen_local, Decimal("7.00"), tou)
        gateway._poll()
        self.assertAlmostEqual(record.frozen_total, 123.45, places=4)
        second = Daily.search([("meter_id", "=", meters[1].id), ("day", "=", day)])
        self.assertAlmostEqual(second.frozen_total, 7.0, places=4)


@tagged("post_install", "-at_install")
class TestClockDrift(MeterGatewayCommon):
    """G3: a clock found off by more than the threshold gets a time sync at once, over real
    TCP to the simulator; clocks are read once per check interval, not at every poll."""

    def _drift_syncs(self, meters):
        return self.Command.search(
            [("meter_id", "in", meters.ids), ("kind", "=", "time_sync"), ("origin", "=", "drift")]
        )

    def test_poll_measures_drift_and_queues_a_time_sync_at_once(self):
        sim = self._start_simulator()
        collector = sim.collector([["009300000001", "009300000002"]])
        gateway, meters = self._gateway_for(collector, "Sim Drift", self.unit)
        drifting, steady = meters
        sim.meter(drifting.address).time_offset = timedelta(minutes=5)  # ahead
        # the day's scheduled sync still waits for its answer: the drift one supersedes it
        scheduled = self.Command._queue(drifting, "time_sync", "daily", origin="schedule")
        scheduled._mark_sent()
        self.assertEqual(gateway.clock_drift_threshold, 60)
        self.assertEqual(gateway._meters_clock_due(meters), set(meters.ids))
        gateway._poll()
        self.assertAlmostEqual(drifting.clock_drift_seconds, 300, delta=3)
        self.assertLessEqual(abs(steady.clock_drift_seconds), 3)
        self.assertEqual((drifting.clock_drifting, steady.clock_drifting), (True, False))
        self.assertTrue(steady.clock_checked_at)
        sync = self._drift_syncs(meters)
        self.assertEqual((sync.meter_id, sync.state), (drifting, "queued"))
        self.assertRegex(sync.reason, r"clock (29[7-9]|30[0-3]) s ahead \(threshold 60 s\)")
        self.assertEqual(scheduled.state, "superseded")
        self.assertEqual(scheduled.superseded_by_id, sync)
        event = drifting.event_ids.filtered(lambda e: e.event_type == "clock_drift")
        self.assertEqual(len(event), 1)
        self.assertIn("time sync queued", event.reason)
        self.assertFalse(steady.event_ids.filtered(lambda e: e.event_type == "clock_drift"))
        self.assertIn(drifting, self.env["prepaid.meter"].search([("clock_drifting", "=", True)]))
        # checked: not read again before the check interval
        self.assertEqual(gateway._meters_clock_due(meters), set())
        # the next poll delivers the sync; once confirmed, the clock is checked again
        steady_checked = steady.clock_checked_at
        gateway._poll()
        self.assertEqual(sync.state, "confirmed", sync.reason_log)
        self.assertFalse(drifting.clock_checked_at)
        gateway._poll()
        self.assertLessEqual(abs(drifting.clock_drift_seconds), 3)
        self.assertFalse(drifting.clock_drifting)
        self.assertEqual(steady.clock_checked_at, steady_checked)  # not read again
        self.assertEqual(len(self._drift_syncs(meters)), 1)

    def test_dlt645_1997_meter_drift_gets_a_time_sync(self):
        """A DL/T645-1997 meter's clock (C010H/C011H) is checked like a 2007 one: off by
        more than the threshold, it gets a time sync (the broadcast, 08H) at once."""
        sim = self._start_simulator()
        collector = sim.collector([["009300000041", "009300000042"]])
        gateway, meters = self._gateway_for(
            collector, "Sim Drift 1997", self.unit, protocol="dlt645_1997"
        )
        drifting, steady = meters
        simulated = sim.meter(drifting.address)
        simulated.time_offset = timedelta(minutes=-4)  # behind
        self.assertEqual(gateway._meters_clock_due(meters), set(meters.ids))
        # the gateway runner's command fetch names them too (it reads no 1997 freeze)
        reads = gateway._api_poll_reads_due()
        self.assertEqual(sorted(reads["clock_due"]), sorted(meters.mapped("address")))
        self.assertEqual(reads["daily_frozen_due"], [])
        gateway._poll()
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})
        self.assertAlmostEqual(drifting.clock_drift_seconds, -240, delta=3)
        self.assertLessEqual(abs(steady.clock_drift_seconds), 3)
        self.assertEqual((drifting.clock_drifting, steady.clock_drifting), (True, False))
        sync = self._drift_syncs(meters)
        self.assertEqual((sync.meter_id, sync.state), (drifting, "queued"))
        self.assertRegex(sync.reason, r"clock (23[7-9]|24[0-3]) s behind \(threshold 60 s\)")
        # the next poll delivers it; the poll after checks the clock again: corrected
        gateway._poll()
        self.assertEqual(sync.state, "confirmed", sync.reason_log)
        self.assertLess(abs(simulated.local_now() - datetime.now(UTC)), timedelta(seconds=10))
        gateway._poll()
        self.assertLessEqual(abs(drifting.clock_drift_seconds), 3)
        self.assertFalse(drifting.clock_drifting)
        self.assertEqual(len(self._drift_syncs(meters)), 1)

    def test_a_clock_the_sync_does_not_correct_gets_no_storm(self):
        sim = self._start_simulator()
        collector = sim.collector([["009300000011"]])
        gateway, meter = self._gateway_for(collector, "Sim Stubborn", self.unit)
        simulated = sim.meter(meter.address)
        simulated.time_offset = timedelta(minutes=-3)
        gateway._poll()  # measured: a sync queued
        gateway._poll()  # delivered and confirmed: checked again at the next poll
        simulated.time_offset = timedelta(minutes=-3)  # the meter drifts again at once
        gateway._poll()
        self.assertAlmostEqual(meter.clock_drift_seconds, -180, delta=3)
        self.assertTrue(meter.clock_drifting)
        syncs = self._drift_syncs(meter)
        self.assertEqual(syncs.mapped("state"), ["confirmed"])
        events = meter.event_ids.filtered(lambda e: e.event_type == "clock_drift")
        self.assertEqual(len(events), 2)
        self.assertIn("none again before the next check", events.sorted("id")[-1].reason)
        # the next regular check (a day later) tries again
        meter.clock_checked_at = fields.Datetime.now() - timedelta(hours=25)
        syncs.done_at = fields.Datetime.now() - timedelta(hours=25)
        gateway._poll()
        self.assertEqual(len(self._drift_syncs(meter)), 2)

    def test_threshold_zero_reads_no_clock(self):
        sim = self._start_simulator()
        collector = sim.collector([["009300000021"]])
        gateway, meter = self._gateway_for(collector, "Sim No Clock", self.unit)
        sim.meter(meter.address).time_offset = timedelta(hours=1)
        gateway.clock_drift_threshold = 0
        gateway._poll()
        self.assertEqual(meter.connection_state, "online")
        self.assertFalse(meter.clock_checked_at)
        self.assertFalse(self._drift_syncs(meter))
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            gateway.clock_check_hours = 0
            gateway.flush_recordset()

    def test_clock_checks_spread_over_the_polls(self):
        """A poll reads the clocks of a few meters of each bus, the longest unchecked first:
        the whole bus within the check interval, no poll of the day much longer."""
        gateway = self.env["prepaid.gateway"].create(
            {"name": "Spread", "gateway_type": "tcp_collector", "site_id": self.site.id}
        )
        bus = self.env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": 1, "port": 9101, "protocol": "dlt645_2007"}
        )
        meters = self.env["prepaid.meter"].create(
            [
                {
                    "name": f"Spread {n}",
                    "address": f"0097000000{n:02d}",
                    "model_id": self.ddsy.id,
                    "gateway_id": gateway.id,
                    "bus_id": bus.id,
                    "state": "in_service",
                }
                for n in range(1, 11)
            ]
        )
        # 10 meters, 48 polls a day: the minimum share of a poll, 4
        first = gateway._meters_clock_due(meters)
        self.assertEqual(first, set(meters[:4].ids))
        now = fields.Datetime.now()
        meters[:4].write({"clock_checked_at": now})
        self.assertEqual(gateway._meters_clock_due(meters), set(meters[4:8].ids))
        meters[4:].write({"clock_checked_at": now})
        self.assertEqual(gateway._meters_clock_due(meters), set())
        meters[9].clock_checked_at = now - timedelta(hours=25)
        meters[8].clock_checked_at = now - timedelta(hours=26)
        self.assertEqual(gateway._meters_clock_due(meters), set(meters[8:].ids))
        # a check every hour with 5-minute polls: 12 polls for 10 meters -> still 4; with
        # 2 polls an hour, 5 a poll
        gateway.write({"clock_check_hours": 1, "poll_interval": 5})
        meters.clock_checked_at = False
        self.assertEqual(len(gateway._meters_clock_due(meters)), 4)
        gateway.poll_interval = 30
        self.assertEqual(len(gateway._meters_clock_due(meters)), 5)
        # Modbus-RTU meters have no clock in their register maps: never due
        modbus_bus = self.env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": 2, "port": 9102, "protocol": "modbus_rtu"}
        )
        modbus_meter = self.env["prepaid.meter"].create(
            {
                "name": "Spread Modbus",
                "address": "009700000099",
                "model_id": self.ddsy.id,
                "gateway_id": gateway.id,
                "bus_id": modbus_bus.id,
                "state": "in_service",
            }
        )
        self.assertNotIn(modbus_meter.id, gateway._meters_clock_due(meters | modbus_meter))
        gateway.clock_drift_threshold = 0
        self.assertEqual(gateway._meters_clock_due(meters), set())
