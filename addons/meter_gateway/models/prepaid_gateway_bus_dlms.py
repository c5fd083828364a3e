"""The DLMS/COSEM driver (G9), plugged in on the bus like a payment provider
(selection_add + guard): HDLC meters on an RS-485 bus behind a collector (or a local
adapter), or meters and DLMS gateways on TCP (wrapper)."""

import functools

from odoo import fields, models

from prepaid_core import buses

from .prepaid_meter_model_dlms import DLMS_PROTOCOLS

#: bus protocol -> the DLMS interface its meters speak
DLMS_INTERFACES = {"dlms_hdlc": "hdlc", "dlms_wrapper": "wrapper"}


class PrepaidGatewayBus(models.Model):
    _inherit = "prepaid.gateway.bus"

    driver = fields.Selection(
        selection_add=[("dlms", "DLMS/COSEM")],
        ondelete={"dlms": lambda buses: buses.write({"driver": "none"})},
    )

    def _get_default_driver(self):
        if self.protocol not in DLMS_PROTOCOLS or self.gateway_id.gateway_type != "tcp_collector":
            return super()._get_default_driver()
        return "dlms"

    def _get_poll_task(self, meter_jobs):
        if self.driver != "dlms":
            return super()._get_poll_task(meter_jobs)
        interface = DLMS_INTERFACES[self.protocol]
        jobs = [
            self._meter_job(
                meter,
                commands,
                dlms=meter._dlms_settings(interface),
                read_balance=self._reads_meter_balance(meter),
            )
            for meter, commands in meter_jobs
        ]
        return functools.partial(buses.poll_bus, self.protocol, self._link_settings(), jobs)

    def _dlms_collector_values(self, meter):
        """G9: what a gateway runner needs to read the DLMS meter ``meter`` of this bus:
        its association settings (the secrets in hexadecimal, sent only over the runner's
        signed device API) and whether its own balance is read."""
        settings = meter._dlms_settings(DLMS_INTERFACES[self.protocol])
        return {"dlms": settings.to_config(), "read_balance": self._reads_meter_balance(meter)}
