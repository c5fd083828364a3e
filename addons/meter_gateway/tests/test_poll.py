import logging
import time
from datetime import timedelta

import psycopg2
from psycopg2 import IntegrityError

from odoo import fields, sql_db
from odoo.tests import tagged
from odoo.tools import mute_logger

from ..const import POLL_LOCK_KEY
from .common import UJ_PER_KWH, MeterGatewayCommon

_logger = logging.getLogger(__name__)


@tagged("post_install", "-at_install")
class TestPoll(MeterGatewayCommon):
    """G1/G3/G4 over real TCP against simulated collectors (prepaid_core.simulator)."""

    def _sim_one_bus(self, count=4):
        sim = self._start_simulator()
        collector = sim.collector([[f"0090000000{n:02d}" for n in range(1, count + 1)]])
        gateway, meters = self._gateway_for(collector, "Sim Collector", self.unit)
        return sim, collector, gateway, meters

    def test_poll_64_meters_on_two_collectors(self):
        sim = self._start_simulator()
        collectors, expected = self._sim_collectors_of_32(sim, (1, 2))
        pairs = [
            self._gateway_for(collector, f"Sim {i}", self.unit)
            for i, collector in enumerate(collectors, start=1)
        ]
        ours = pairs[0][0] | pairs[1][0]
        # other collectors (the common one, demo data) have no simulator behind them
        self.env["prepaid.gateway"].search([("id", "not in", ours.ids)]).active = False
        started = time.monotonic()
        polled = self.env["prepaid.gateway"]._cron_poll()
        elapsed = time.monotonic() - started
        self.assertEqual(len(polled), 2)
        meters = pairs[0][1] | pairs[1][1]
        self.assertEqual(len(meters), 64)
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(len(readings), 64)
        for reading in readings:
            self.assertAlmostEqual(
                reading.forward_total, expected[reading.meter_id.address], delta=0.05
            )
            self.assertEqual(reading.source, "poll")
            self.assertEqual(reading.relay_state, "on")
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})
        self.assertEqual(set(meters.mapped("actual_relay_state")), {"on"})
        for gateway, _meters in pairs:
            self.assertEqual(gateway.connection_state, "online")
            self.assertIn("32 meters answered", gateway.last_poll_summary)
            self.assertTrue(gateway.next_poll_at)
        # buses of a collector are polled concurrently: far less than 4 buses in a row
        slowest_bus = max(gateway.last_poll_seconds for gateway, _meters in pairs)
        _logger.info(
            "64 meters on 2 collectors (8 buses of 8, 9600 baud): %.2f s wall, slowest bus %.2f s",
            elapsed,
            slowest_bus,
        )
        self.assertLess(elapsed, 2 * 2.5 * slowest_bus)
        # not due again before its interval
        self.assertFalse(self.env["prepaid.gateway"]._cron_poll())

    def test_cut_reaches_meter_and_read_back_confirms(self):
        sim, _collector, gateway, meters = self._sim_one_bus()
        target, other = meters[0], meters[1]
        gateway._poll()
        self.assertEqual(target.actual_relay_state, "on")
        target._set_desired_relay("off", "credit exhausted")
        command = self.Command._cron_reconcile(meters)
        self.assertEqual(command.kind, "relay_off")
        gateway._poll()
        sim_meter = sim.meter(target.address)
        self.assertEqual(sim_meter.relay, "off")
        self.assertEqual(sim.meter(other.address).relay, "on")
        self.assertEqual(command.state, "confirmed")
        self.assertIn("read-back confirms", command.reason_log)
        self.assertEqual(target.actual_relay_state, "off")
        self.assertFalse(target.relay_mismatch)
        self.assertTrue(target.event_ids.filtered(lambda e: e.event_type == "relay_off"))
        # and back on
        target._set_desired_relay("on", "recharge")
        restore = self.Command._cron_reconcile(meters)
        gateway._poll()
        self.assertEqual((restore.state, sim_meter.relay), ("confirmed", "on"))
        self.assertEqual(sim_meter.relay_toggles, 2)

    def test_r8_ack_lost_read_back_one_toggle(self):
        sim, collector, gateway, meters = self._sim_one_bus(2)
        meter = meters[0]
        meter._set_desired_relay("off", "credit exhausted")
        command = self.Command._queue(meter, "relay_off", "credit exhausted", origin="billing")
        collector.buses[0].drop_replies = 1  # the meter executes, its answer is lost
        gateway._poll()
        sim_meter = sim.meter(meter.address)
        self.assertEqual(sim_meter.relay, "off")
        self.assertEqual(sim_meter.relay_toggles, 1)
        self.assertEqual((command.state, command.attempts), ("confirmed", 1))
        self.assertIn("answer lost; read-back shows the command executed", command.state_reason)
        self.assertEqual(meter.actual_relay_state, "off")
        gateway._poll()
        self.assertEqual(sim_meter.relay_toggles, 1)

    def test_r6_outage_off_on_off_only_last_applied(self):
        sim, collector, gateway, meters = self._sim_one_bus(2)
        meter = meters[0]
        gateway._poll()
        sim.run(collector.close())  # the collector goes offline
        meter._set_desired_relay("off", "credit exhausted")
        off1 = self.Command._queue(meter, "relay_off", "credit exhausted", origin="billing")
        meter._set_desired_relay("on", "recharge")
        on = self.Command._queue(meter, "relay_on", "recharge", origin="billing")
        meter._set_desired_relay("off", "manager force off")
        off2 = self.Command._queue(meter, "relay_off", "manager force off", origin="manual")
        gateway._poll()  # nothing reaches the meter
        self.assertEqual(gateway.poll_failures, 1)
        self.assertEqual((off2.state, off2.attempts), ("queued", 0))
        self.assertIn("not delivered", off2.state_reason)
        sim.run(collector.start())  # back on the same ports
        gateway._poll()
        sim_meter = sim.meter(meter.address)
        self.assertEqual(sim_meter.relay, "off")
        self.assertEqual(sim_meter.relay_toggles, 1)
        self.assertEqual(
            (off1.state, on.state, off2.state), ("superseded", "superseded", "confirmed")
        )
        self.assertEqual(gateway.connection_state, "online")

    def test_lost_after_repeated_failures(self):
        sim, collector, gateway, meters = self._sim_one_bus(2)
        gateway._poll()
        self.assertEqual(gateway.connection_state, "online")
        sim.run(collector.close())
        for _poll in range(3):
            gateway._poll()
        self.assertEqual(gateway.connection_state, "lost")
        self.assertTrue(
            any("Lost Connection: cannot connect" in (m.body or "") for m in gateway.message_ids)
        )
        self.assertEqual(set(meters.mapped("connection_state")), {"lost"})
        self.assertTrue(meters[0].event_ids.filtered(lambda e: e.event_type == "connection_lost"))
        sim.run(collector.start())
        time.sleep(1.1)  # a new reading instant
        gateway._poll()
        self.assertEqual(gateway.connection_state, "online")
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})
        self.assertEqual(set(meters.mapped("poll_failures")), {0})

    def test_silent_meter_times_out_others_answer(self):
        sim, _collector, gateway, meters = self._sim_one_bus(3)
        sim.meter(meters[1].address).power_fail()
        gateway._poll()
        self.assertEqual(meters[1].poll_failures, 1)
        self.assertEqual((meters[0] | meters[2]).mapped("connection_state"), ["online"] * 2)
        self.assertIn("2 meters answered, 1 did not", gateway.last_poll_summary)

    @mute_logger(
        "prepaid_core.buses.common", "odoo.addons.meter_gateway.models.prepaid_gateway_poll"
    )
    def test_garbled_meter_and_unusable_command_never_stop_the_others(self):
        """X1: on one bus a meter answers garbage (digits that are not BCD) and
        another has a command the driver cannot use: each fails alone, with its reason
        in the poll's report and summary; every other meter is read and stored."""
        _sim, collector, gateway, meters = self._sim_one_bus(4)
        garbled = collector.buses[0].responders[1]
        garbled.corrupt_reads = 10_000
        command = self.Command.create(
            {"meter_id": meters[2].id, "kind": "thresholds", "payload": ["not", "a", "mapping"]}
        )
        report = gateway._poll()
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(readings.meter_id, meters - meters[1])
        self.assertEqual(report["stored"], 3)
        (failed,) = report["failed"]
        self.assertEqual(failed["address"], meters[1].address)
        self.assertIn("not BCD", failed["error"])
        self.assertIn("3 meters answered, 1 did not", gateway.last_poll_summary)
        self.assertIn(f"Failed: {meters[1].address}: ", gateway.last_poll_summary)
        self.assertEqual(meters.mapped("poll_failures"), [0, 1, 0, 0])
        self.assertEqual(command.state, "failed")
        self.assertIn("TypeError", command.state_reason)
        # the meter answers properly again: read at the next poll
        garbled.corrupt_reads = 0
        time.sleep(1.1)  # a new reading instant
        report = gateway._poll()
        self.assertEqual((report["stored"], report["failed"]), (4, []))
        self.assertEqual(meters[1].poll_failures, 0)

    @mute_logger("odoo.sql_db")
    def test_poll_interval_range(self):
        with self.assertRaises(IntegrityError):
            self.gateway.poll_interval = 0
            self.gateway.flush_recordset()

    def test_r9_long_outage_no_command_storm(self):
        """R9: credit runs out for every meter during a long outage: one command per meter,
        whatever the number of polls and reconciliations; after recovery each meter toggles
        once."""
        sim, collector, gateway, meters = self._sim_one_bus(6)
        gateway._poll()
        sim.run(collector.close())
        meters._set_desired_relay("off", "credit exhausted")
        self.assertEqual(len(self.Command._cron_reconcile(meters)), 6)
        for _round in range(5):
            gateway._poll()
            self.assertFalse(self.Command._cron_reconcile(meters))
        self.assertEqual(gateway.connection_state, "lost")
        commands = self.Command.search([("meter_id", "in", meters.ids)])
        self.assertEqual(len(commands), 6)
        self.assertEqual(set(commands.mapped("state")), {"queued"})
        self.assertEqual(set(commands.mapped("attempts")), {0})
        sim.run(collector.start())
        gateway._poll()
        self.assertEqual(set(commands.mapped("state")), {"confirmed"})
        for meter in meters:
            sim_meter = sim.meter(meter.address)
            self.assertEqual((sim_meter.relay, sim_meter.relay_toggles), ("off", 1))
        self.assertEqual(set(meters.mapped("actual_relay_state")), {"off"})
        self.assertFalse(self.Command._cron_reconcile(meters))
        self.assertEqual(self.Command.search_count([("meter_id", "in", meters.ids)]), 6)

    def test_modbus_bus_poll_cut_and_lost_ack(self):
        """G2: the Modbus-RTU driver plugs in on the same bus model; readings, a cut with
        read-back, and a lost answer confirmed by read-back (R8)."""
        sim = self._start_simulator()
        collector = sim.collector([[f"00800000000{n}" for n in range(1, 4)]], protocol="modbus")
        sim.meter("008000000001").import_uj = 42 * UJ_PER_KWH
        gateway, meters = self._gateway_for(collector, "Modbus", self.unit, "modbus_rtu")
        self.assertEqual(gateway.bus_ids.driver, "modbus_tcp")
        meters[0]._set_desired_relay("off", "credit exhausted")
        cut = self.Command._queue(meters[0], "relay_off", "credit exhausted", origin="billing")
        meters[1]._set_desired_relay("off", "credit exhausted")
        lost = self.Command._queue(meters[1], "relay_off", "credit exhausted", origin="billing")
        collector.buses[0].drop_replies = 1  # the first write's answer (meter 1) is lost
        gateway._poll()
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(len(readings), 3)
        first = readings.filtered(lambda r: r.meter_id == meters[0])
        self.assertAlmostEqual(first.forward_total, 42, delta=0.05)
        self.assertEqual(cut.state, "confirmed")
        self.assertIn("answer lost", cut.state_reason)
        self.assertEqual(lost.state, "confirmed")
        self.assertIn("read-back confirms", lost.state_reason)
        for meter in meters[:2]:
            sim_meter = sim.meter(meter.address)
            self.assertEqual((sim_meter.relay, sim_meter.relay_toggles), ("off", 1))
            self.assertEqual(meter.actual_relay_state, "off")
        self.assertEqual(sim.meter(meters[2].address).relay, "on")
        self.assertEqual(meters[2].actual_relay_state, "on")

    def test_read_now_one_meter_by_an_operator(self):
        _sim, _collector, gateway, meters = self._sim_one_bus(3)
        operator = self._user("gw_reader", "prepaid_meter.group_prepaid_user")
        meters[1].with_user(operator).action_read_now()
        readings = self.env["prepaid.meter.reading"].search([("meter_id", "in", meters.ids)])
        self.assertEqual(readings.meter_id, meters[1])
        self.assertFalse(gateway.next_poll_at)  # the schedule is left alone
        self.assertEqual(meters[1].connection_state, "online")

    def test_one_poll_per_gateway_at_a_time(self):
        _sim, _collector, gateway, meters = self._sim_one_bus(2)
        Reading = self.env["prepaid.meter.reading"]
        # another node's poll holds the gateway's lock on its own connection
        _db, dsn = sql_db.connection_info_for(self.env.cr.dbname)
        other = psycopg2.connect(**dsn)
        with other.cursor() as other_cr:
            other_cr.execute("SELECT pg_advisory_lock(%s, %s)", [POLL_LOCK_KEY, gateway.id])
        self.assertTrue(gateway._poll().get("skipped"))
        self.assertTrue(gateway._api_poll_state()["busy"])
        self.assertFalse(Reading.search([("meter_id", "in", meters.ids)]))
        other.close()  # that poll's process dies (or the database restarts)
        # the lease it left shows a poll running for minutes; the next poll goes ahead
        gateway.poll_lease_until = fields.Datetime.now() + timedelta(minutes=10)
        self.assertFalse(gateway._api_poll_state()["busy"])
        self.assertEqual(gateway._poll()["stored"], 2)
        self.assertFalse(gateway.poll_lease_until)

    def test_dlt645_1997_bus_energy_read_and_unsupported_relay(self):
        """G2: a DL/T645-1997 bus is read with the 1997 read (01H); a relay command, which
        that standard has not, fails at once with its reason instead of being retried."""
        sim = self._start_simulator()
        collector = sim.collector([["009700000001", "009700000002"]])
        gateway, meters = self._gateway_for(
            collector, "1997 Collector", self.unit, protocol="dlt645_1997"
        )
        self.assertEqual(gateway.bus_ids.driver, "dlt645_tcp")
        meters[0]._set_desired_relay("off", "test")
        command = self.Command._queue(meters[0], "relay_off", "test")
        report = gateway._poll()
        self.assertEqual(report["stored"], 2)
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", meters[0].id)])
        expected = float(sim.meter("009700000001").snapshot().forward_kwh)
        self.assertAlmostEqual(reading.forward_total, expected, places=1)
        self.assertFalse(reading.relay_state)
        self.assertEqual(command.state, "failed")
        self.assertIn("not supported over DL/T645-1997", command.state_reason)
        self.assertEqual(sim.meter("009700000001").relay, "on")
