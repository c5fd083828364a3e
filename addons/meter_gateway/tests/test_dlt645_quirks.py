"""G2: the DL/T645 habits real meters differ on are kept on the meter model (read way,
wake-up bytes), handed to Odoo's poll and to the gateway runner's collector config."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from prepaid_core.gateway_runner import collector

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestDlt645Quirks(MeterGatewayCommon):
    def test_defaults_keep_the_block_first_and_four_wake_up_bytes(self):
        model = self.env["prepaid.meter.model"].create({"name": "Plain", "code": "PLAIN-645"})
        self.assertEqual((model.dlt645_read_way, model.dlt645_wake_up_bytes), ("auto", 4))

    def test_wake_up_bytes_are_0_to_4(self):
        model = self.ddsy.copy({"code": "DDSY-WAKE"})
        for good in (0, 4):
            model.dlt645_wake_up_bytes = good
        with self.assertRaisesRegex(ValidationError, "wake-up bytes"):
            model.dlt645_wake_up_bytes = 5

    def test_the_model_s_habits_reach_both_poll_paths(self):
        model = self.ddsy.copy(
            {"code": "DDSY-ITEMS", "dlt645_read_way": "items", "dlt645_wake_up_bytes": 1}
        )
        meter = self._create_meter("Quirky", "000000007701", self.unit2, model=model)
        bus = meter.bus_id
        # Odoo's own poll: the meter's job
        job = bus._meter_job(meter, [], **bus._dlt645_reading_values(meter))
        self.assertEqual((job.read_way, job.wake_up_bytes), ("items", 1))
        plain = bus._meter_job(self.meter, [], **bus._dlt645_reading_values(self.meter))
        self.assertEqual((plain.read_way, plain.wake_up_bytes), ("auto", 4))
        # the gateway runner's: the collector config, then the runner's job template
        [config] = [
            m
            for b in self.gateway._api_collector_config()["buses"]
            for m in b["meters"]
            if m["address"] == meter.address
        ]
        self.assertEqual((config["read_way"], config["wake_up_bytes"]), ("items", 1))
        template = collector._meter_template(0, config)
        self.assertEqual((template.read_way, template.wake_up_bytes), ("items", 1))
