"""The Modbus-RTU driver, plugged in on the bus like a payment provider (selection_add + guard).

Meters are addressed by their unit id; each is read by its model's register map."""

import functools

from odoo import fields, models

from prepaid_core import buses
from prepaid_core.protocols import modbus


class PrepaidGatewayBus(models.Model):
    _inherit = "prepaid.gateway.bus"

    driver = fields.Selection(
        selection_add=[("modbus_tcp", "Modbus-RTU over TCP")],
        ondelete={"modbus_tcp": lambda buses: buses.write({"driver": "none"})},
    )

    def _get_default_driver(self):
        if self.protocol != "modbus_rtu" or self.gateway_id.gateway_type != "tcp_collector":
            return super()._get_default_driver()
        return "modbus_tcp"

    def _get_poll_task(self, meter_jobs):
        if self.driver != "modbus_tcp":
            return super()._get_poll_task(meter_jobs)
        # one RegisterMap per meter model, built (and checked) once per poll
        maps = {}
        for meter, _commands in meter_jobs:
            if meter.model_id not in maps:
                maps[meter.model_id] = modbus.register_map(
                    meter.model_id._modbus_register_map_data()
                )
        jobs = [
            self._meter_job(
                meter,
                commands,
                unit_id=meter.modbus_unit_id,
                register_map=maps[meter.model_id],
            )
            for meter, commands in meter_jobs
        ]
        return functools.partial(buses.poll_bus, "modbus_rtu", self._link_settings(), jobs)
