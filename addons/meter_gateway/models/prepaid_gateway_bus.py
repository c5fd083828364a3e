from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_core import buses


class PrepaidGatewayBus(models.Model):
    """G2/G3: each bus is polled by a driver; drivers plug in like payment providers: they
    extend ``driver`` with ``selection_add`` and every override starts with a guard on it."""

    _inherit = "prepaid.gateway.bus"

    driver = fields.Selection(
        [("none", "None (devices push)")],
        compute="_compute_driver",
        store=True,
        readonly=False,
        required=True,
        precompute=True,
        help="How the gateway talks to the meters of this bus.",
    )

    @api.depends("protocol", "gateway_id.gateway_type")
    def _compute_driver(self):
        for bus in self:
            bus.driver = bus._get_default_driver()

    def _get_default_driver(self):
        """The driver for this bus's protocol; drivers override with a guard."""
        self.ensure_one()
        return "none"

    # === POLLING (overridden by drivers) === #
    def _get_poll_task(self, meter_jobs):
        """A callable without arguments doing the bus's I/O in a worker thread.

        It must not touch ``self.env``: it returns a plain result (``prepaid_core.buses``
        ``BusResult``) that the gateway writes in the main thread."""
        self.ensure_one()
        raise UserError(
            self.env._("Bus %(bus)s has no driver: its meters push their data.", bus=self.name)
        )

    # === FOR THE BUS DRIVERS === #
    def _link_settings(self, **values):
        """The settings of the link to this bus (driver's ``values`` added): the
        collector's TCP port on the gateway's host, or the local serial device, at the
        bus's line settings; the gateway's timeout and retries."""
        self.ensure_one()
        gateway = self.gateway_id
        if self.connection == "serial":
            values["url"] = self.device.strip()
        return buses.LinkSettings(
            host=gateway.host or "127.0.0.1",
            port=self.port,
            timeout=gateway.poll_timeout,
            retries=gateway.poll_retries,
            baudrate=int(self.baud_rate),
            parity=self.parity,
            stopbits=int(self.stop_bits),
            **values,
        )

    @api.model
    def _meter_job(self, meter, commands, **values):
        """A meter and its queued ``commands`` as a driver's plain job (``values`` added);
        a meter addressed otherwise (Modbus unit id, DLMS addresses) is named by its name in
        the driver's messages."""
        return buses.MeterJob(
            meter.id,
            meter.address or meter.name,
            [buses.CommandJob(c.id, c.kind, c.payload) for c in commands],
            **values,
        )

    @api.model
    def _reads_meter_balance(self, meter):
        """G8/B13: whether a poll reads the meter's own remaining balance: it bills by it
        (meter balance) or prices locally."""
        return meter.billing_mode == "meter" or meter.model_id.holds_settings
