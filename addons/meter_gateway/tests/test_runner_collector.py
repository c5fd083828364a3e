"""G2/M2: the gateway runner reads a collector's DL/T645 meters as Odoo's own poll does
(the way that worked last, the register that bills, the meter's own balance), through the
real device API of this test server and the simulator's collector over TCP."""

from datetime import timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from prepaid_core.gateway_runner.api import DeviceApiClient
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.protocols.dlt645_data import is_block

from .common import MeterGatewayCommon

KEY = "runner-read-way-key-0123456789"


@tagged("post_install", "-at_install")
class TestCollectorRunnerReadWay(HttpCase, MeterGatewayCommon):
    def setUp(self):
        super().setUp()
        # other collectors (the common one, demo data) have no simulator behind them
        self.env["prepaid.gateway"].search([("gateway_type", "=", "tcp_collector")]).active = False
        self.sim = self._start_simulator()

    def _tick(self, runner):
        self.env.flush_all()  # the server reads the database, not this test's cache
        with self.allow_requests(all_requests=True):
            done = runner.tick()
        self.env.invalidate_all()
        return done

    def test_runner_reads_single_items_and_odoo_keeps_the_way(self):
        """A meter refusing blocks is read item by item; Odoo keeps that way on the meter
        from the runner's reading, and a meter billing itself has its balance read."""
        collector = self.sim.collector([["001700000001", "001700000002"]])
        responder = collector.buses[0].responders[1]
        responder.refuses_blocks = True
        gateway, meters = self._gateway_for(collector, "Read way", self.unit)
        plain = meters.filtered(lambda m: m.address == "001700000001")
        quirky = meters - plain
        plain.billing_mode = "meter"
        gateway._set_api_key(KEY)
        api = DeviceApiClient(self.base_url(), gateway.id, KEY, retries=1, backoff=0.05)
        runner = CollectorRunner(api, CollectorSettings())
        self.addCleanup(runner.close)
        self.assertEqual((self._tick(runner)["readings"], runner.stats.stored), (2, 2))
        self.assertEqual((plain.dlt645_read_mode, quirky.dlt645_read_mode), ("block", "items"))
        Reading = self.env["prepaid.meter.reading"]
        self.assertTrue(Reading.search([("meter_id", "=", plain.id)]).meter_balance)
        self.assertFalse(Reading.search([("meter_id", "=", quirky.id)]).meter_balance)
        # a new runner takes the way from the config: it asks the meter no block at all
        runner.close()
        runner = CollectorRunner(api, CollectorSettings())
        self.addCleanup(runner.close)
        responder.reads.clear()
        gateway.next_poll_at = fields.Datetime.now() - timedelta(minutes=1)
        self.assertEqual(self._tick(runner)["readings"], 2)
        self.assertTrue(responder.reads)
        self.assertFalse([di for di in responder.reads if is_block(di, 2007)])
        self.assertEqual(Reading.search_count([("meter_id", "in", meters.ids)]), 4)

    def test_a_way_odoo_does_not_know_is_refused(self):
        """The device API stays strict: a reading's ``read_mode`` is ``block`` or
        ``items``; another value refuses that reading, with its reason."""
        collector = self.sim.collector([["001800000001"]])
        gateway, meter = self._gateway_for(collector, "Strict", self.unit)
        gateway._set_api_key(KEY)
        api = DeviceApiClient(self.base_url(), gateway.id, KEY, retries=0)
        reading = {"address": meter.address, "read_at": "2026-03-01T00:00:00Z"}
        push = {"readings": [{**reading, "forward_total": "1.00", "read_mode": "bulk"}]}
        self.env.flush_all()
        with self.allow_requests(all_requests=True):
            answer = api.post("push", push)
        self.env.invalidate_all()
        self.assertEqual(answer["stored"], 0)
        self.assertIn("read_mode", answer["rejected"][0]["reason"])
        self.assertFalse(meter.dlt645_read_mode)
