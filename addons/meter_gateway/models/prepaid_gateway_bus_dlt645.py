"""The DL/T645 driver, plugged in on the bus like a payment provider (selection_add + guard)."""

import functools

import serial

from odoo import fields, models
from odoo.exceptions import UserError

from prepaid_core import buses
from prepaid_core.buses import dlt645_tcp
from prepaid_core.protocols.dlt645_data import DLT645Error

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

    def _dlt645_link_settings(self):
        gateway = self.gateway_id
        return self._link_settings(
            password=gateway.meter_password or "02000000",
            operator=gateway.operator_code or "00000000",
            utc_offset_minutes=gateway.meter_utc_offset,
        )

    def _get_poll_task(self, meter_jobs):
        if self.driver != "dlt645_tcp":
            return super()._get_poll_task(meter_jobs)
        gateway = self.gateway_id
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
                **self._dlt645_reading_values(meter),
            )
            for meter, commands in meter_jobs
        ]
        return functools.partial(buses.poll_bus, self.protocol, self._dlt645_link_settings(), jobs)

    def _dlt645_reading_values(self, meter):
        """G2/M2: how the meter's energy is read (its model's way and, when that is
        ``auto``, the way that worked last), the register that bills, its own balance
        when it keeps one (it bills or prices itself) and its model's wake-up bytes."""
        model = meter.model_id
        return {
            "read_mode": meter.dlt645_read_mode or "",
            "billing_register": model.billing_register or "combined",
            "read_balance": self._reads_meter_balance(meter),
            "read_way": model.dlt645_read_way or "auto",
            "wake_up_bytes": model.dlt645_wake_up_bytes if model else 4,
        }

    def action_read_address(self):
        """G2: commissioning: the address of the only meter on this bus, read with read
        address (13H, which every meter of a bus would answer at once) and stored on it."""
        self.ensure_one()
        meter = self._the_only_meter()
        meter.check_access("write")
        if self.driver != "dlt645_tcp" or self.protocol != "dlt645_2007":
            raise UserError(
                self.env._("Read Address (13H) is a DL/T645-2007 request over a collector.")
            )
        try:
            address = dlt645_tcp.read_bus_address(self._dlt645_link_settings())
        except (buses.Timeout, DLT645Error, OSError, serial.SerialException) as exc:
            raise UserError(
                self.env._("No address read on bus %(bus)s: %(error)s", bus=self.name, error=exc)
            ) from exc
        if meter.address != address:
            meter.address = address
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._(
                    "Meter %(meter)s answers with address %(address)s.",
                    meter=meter.display_name,
                    address=address,
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _the_only_meter(self):
        meters = self.env["prepaid.meter"].search(
            [("bus_id", "=", self.id), ("state", "!=", "removed")]
        )
        if len(meters) != 1:
            raise UserError(
                self.env._(
                    "Read Address needs exactly one meter on bus %(bus)s (it has %(count)s): "
                    "every meter of the bus answers it at once.",
                    bus=self.name,
                    count=len(meters),
                )
            )
        return meters
