"""The DL/T645 driver, plugged in on the bus like a payment provider (selection_add + guard)."""

import functools

from odoo import fields, models

from prepaid_core import buses

DLT645_PROTOCOLS = ("dlt645_2007", "dlt645_1997")


class PrepaidGatewayBus(models.Model):
    _inherit = "prepaid.gateway.bus"

    driver = fields.Selection(
        selection_add=[("dlt645_tcp", "DL/T645 over TCP")],
        ondelete={"dlt645_tcp": lambda buses: buses.write({"driver": "none"})},
    )

    def _get_default_driver(self):
        if self.protocol not in DLT645_PROTOCOLS or self.gateway_id.gateway_type != "tcp_collector":
            return super()._get_default_driver()
        return "dlt645_tcp"

    def _get_poll_task(self, meter_jobs):
        if self.driver != "dlt645_tcp":
            return super()._get_poll_task(meter_jobs)
        gateway = self.gateway_id
        settings = self._link_settings(
            password=gateway.meter_password or "02000000",
            operator=gateway.operator_code or "00000000",
            utc_offset_minutes=gateway.meter_utc_offset,
        )
        # G3: the clock of the meters due for a check and, from DL/T645-2007 meters (1997
        # ones keep no daily freeze) whose day lacks it, the last daily freeze
        meters = self.env["prepaid.meter"].union(*(meter for meter, _commands in meter_jobs))
        clock_due = gateway._meters_clock_due(meters)
        frozen_due = set()
        if self.protocol == "dlt645_2007":
            Daily = self.env["prepaid.meter.reading.daily"]
            frozen_due = Daily._meters_missing_frozen(meters, Daily._frozen_day(gateway))
        jobs = [
            self._meter_job(
                meter,
                commands,
                read_daily_frozen=meter.id in frozen_due,
                read_clock=meter.id in clock_due,
            )
            for meter, commands in meter_jobs
        ]
        return functools.partial(buses.poll_bus, self.protocol, settings, jobs)
