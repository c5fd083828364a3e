import time

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_core.protocols.dlt645_data import is_block

from .common import UJ_PER_KWH, MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestDlt645Fallback(MeterGatewayCommon):
    """G2/M2/X1: DL/T645 meters as real ones speak, polled over real TCP against the
    simulated collector: blocks refused, the register that bills, the meter's balance,
    read address (13H)."""

    def _bus_of(self, count):
        sim = self._start_simulator()
        collector = sim.collector([[f"0064500000{n:02d}" for n in range(1, count + 1)]])
        gateway, meters = self._gateway_for(collector, "DL/T645 Collector", self.unit)
        return sim, collector.buses[0], gateway, meters

    def _reading(self, meter):
        return self.env["prepaid.meter.reading"].search([("meter_id", "=", meter.id)], limit=1)

    def test_meter_refusing_blocks_read_by_single_items_and_remembered(self):
        sim, bus, gateway, meters = self._bus_of(2)
        quirky = bus.responders[1]
        quirky.refuses_blocks = True
        report = gateway._poll()
        self.assertEqual(report["stored"], 2)
        self.assertEqual(meters.mapped("dlt645_read_mode"), ["block", "items"])
        for meter in meters:
            expected = float(sim.meter(meter.address).snapshot().forward_kwh)
            self.assertAlmostEqual(self._reading(meter).forward_total, expected, delta=0.02)
        self.assertIn(0x0000FF00, quirky.reads)
        # the second poll goes straight to single items: no block asked of that meter
        quirky.reads.clear()
        sim.meter(meters[1].address).import_uj += 4 * UJ_PER_KWH
        time.sleep(1.1)  # a new reading instant
        report = gateway._poll()
        self.assertEqual(report["stored"], 2)
        self.assertTrue(quirky.reads)
        self.assertFalse([di for di in quirky.reads if is_block(di)])
        self.assertIn(0x00000000, quirky.reads)
        expected = float(sim.meter(meters[1].address).snapshot().forward_kwh)
        self.assertAlmostEqual(self._reading(meters[1]).forward_total, expected, delta=0.02)
        self.assertEqual(set(meters.mapped("poll_failures")), {0})
        # another device (address or model changed): the way is found again
        meters[1].address = "006450000099"
        self.assertFalse(meters[1].dlt645_read_mode)
        meters[0].model_id = self.ddsy.copy({"code": "DDSY-Q"})
        self.assertFalse(meters[0].dlt645_read_mode)

    def test_meter_refusing_both_ways_reports_the_slave_error_and_is_not_lost(self):
        _sim, bus, gateway, meters = self._bus_of(2)
        refusing = bus.responders[0]
        refusing.refuses_blocks = True
        refusing.missing = {n << 8 for n in range(5)}  # no combined energy at all
        gateway.lost_after_failures = 1
        with mute_logger("prepaid_core.buses.common"):
            report = gateway._poll()
        self.assertEqual(report["stored"], 1)
        (failed,) = report["failed"]
        self.assertEqual(failed["address"], meters[0].address)
        self.assertIn("refused its energy as a block and as single items", failed["error"])
        self.assertIn("NO_DATA", failed["error"])
        self.assertIn("refused its energy", gateway.last_poll_summary)
        self.assertFalse(self._reading(meters[0]))
        self.assertNotEqual(meters[0].connection_state, "lost")
        self.assertEqual(meters[0].poll_failures, 0)

    def test_billing_register_forward_reverse_and_meter_balance(self):
        sim, _bus, gateway, meters = self._bus_of(2)
        bidirectional = self.ddsy.copy(
            {"code": "DDSU-BI", "bidirectional": True, "billing_register": "forward_reverse"}
        )
        meters[0].model_id = bidirectional
        virtual = sim.meter(meters[0].address)
        virtual.import_uj, virtual.export_uj = 50 * UJ_PER_KWH, 5 * UJ_PER_KWH
        meters[1].billing_mode = "meter"
        gateway._poll()
        both = self._reading(meters[0])
        self.assertAlmostEqual(both.forward_total, 50.0, delta=0.01)
        self.assertAlmostEqual(both.reverse_total, 5.0, delta=0.01)
        self.assertAlmostEqual(both.total, 55.0, delta=0.01)
        self.assertFalse(both.meter_balance)  # its model keeps no balance: not read
        own = self._reading(meters[1])
        balance = float(sim.meter(meters[1].address).snapshot().balance)
        self.assertTrue(own.meter_balance)
        self.assertAlmostEqual(own.meter_balance, balance, delta=0.02)
        self.assertFalse(own.reverse_total)  # the default: combined energy, no reverse

    def test_read_address_of_the_only_meter_of_a_bus(self):
        sim, _bus, gateway, meters = self._bus_of(1)
        answer = meters.address
        meters.write({"address": "000000000000"})
        action = gateway.bus_ids.action_read_address()
        self.assertEqual(meters.address, answer)
        self.assertIn(answer, action["params"]["message"])
        # a bus of several meters: refused before anything is sent
        collector = sim.collector([["006460000001", "006460000002"]])
        other, _meters = self._gateway_for(collector, "Two Meters", self.unit)
        with self.assertRaisesRegex(UserError, "exactly one meter"):
            other.bus_ids.action_read_address()

    def test_reply_for_another_item_stores_nothing_and_names_the_field(self):
        _sim, bus, gateway, meters = self._bus_of(3)
        bus.responders[1].wrong_item_replies = 1000  # answers every read with another item
        with mute_logger("prepaid_core.buses.common"):
            report = gateway._poll()
        self.assertEqual(report["stored"], 2)
        (failed,) = report["failed"]
        self.assertEqual(failed["address"], meters[1].address)
        self.assertIn("data identifier: reply for 00900200H, 0000FF00H asked", failed["error"])
        self.assertFalse(self._reading(meters[1]))
        self.assertTrue(self._reading(meters[0]) and self._reading(meters[2]))
        self.assertEqual(meters[1].poll_failures, 1)  # no answer to what was asked
