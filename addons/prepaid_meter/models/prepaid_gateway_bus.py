from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..const import PROTOCOLS

#: RS-485 allows 32 unit loads on one bus
MAX_METERS_PER_BUS = 32

#: protocol -> its usual serial line: (baud rate, parity, stop bits), 8 data bits
SERIAL_LINE_DEFAULTS = {
    "dlt645_2007": ("2400", "E", "1"),
    "dlt645_1997": ("2400", "E", "1"),
    "modbus_rtu": ("9600", "N", "1"),
    "dlms_hdlc": ("9600", "N", "1"),
}
#: the line fields follow the protocol until set by hand
_SERIAL_LINE_FIELD = {
    "compute": "_compute_serial_line",
    "store": True,
    "readonly": False,
    "precompute": True,
    "required": True,
}


class PrepaidGatewayBus(models.Model):
    """G1: one RS-485 bus of a collector, at most 32 meters; reached through the
    collector's TCP port for it or, with an RS-485 adapter on the server, a local serial
    device at the bus's baud rate, parity and stop bits (its protocol's usual line)."""

    _name = "prepaid.gateway.bus"
    _description = "Gateway Bus"
    _order = "gateway_id, number"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    number = fields.Integer(required=True, default=1, help="Serial port number on the collector.")
    gateway_id = fields.Many2one(
        "prepaid.gateway", required=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="gateway_id.company_id", store=True, index=True)
    connection = fields.Selection(
        [("tcp", "TCP Port"), ("serial", "Serial Device")],
        default="tcp",
        required=True,
        help="TCP Port: the collector's serial server port for this bus. Serial Device: an "
        "RS-485 adapter plugged into the server (USB or built in).",
    )
    port = fields.Integer(string="TCP Port", help="Port of the serial server for this bus.")
    device = fields.Char(
        string="Serial Device",
        help="Path of the RS-485 adapter on the server, e.g. /dev/ttyUSB0.",
    )
    protocol = fields.Selection(PROTOCOLS, default="dlt645_2007", required=True)
    baud_rate = fields.Selection(
        [("1200", "1200"), ("2400", "2400"), ("4800", "4800"), ("9600", "9600")],
        **_SERIAL_LINE_FIELD,
    )
    parity = fields.Selection([("N", "None"), ("E", "Even"), ("O", "Odd")], **_SERIAL_LINE_FIELD)
    stop_bits = fields.Selection([("1", "1"), ("2", "2")], **_SERIAL_LINE_FIELD)
    meter_ids = fields.One2many("prepaid.meter", "bus_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _number_gateway_uniq = models.UniqueIndex(
        "(gateway_id, number)", "A bus number must be unique on its collector."
    )

    @api.depends("gateway_id.name", "number")
    def _compute_name(self):
        for bus in self:
            bus.name = f"{bus.gateway_id.name} / COM{bus.number}"

    @api.depends("protocol")
    def _compute_serial_line(self):
        """The protocol's usual line: DL/T645 2400 8E1, Modbus-RTU 9600 8N1."""
        for bus in self:
            bus.baud_rate, bus.parity, bus.stop_bits = SERIAL_LINE_DEFAULTS.get(
                bus.protocol, SERIAL_LINE_DEFAULTS["dlt645_2007"]
            )

    @api.constrains("connection", "device")
    def _check_device(self):
        for bus in self:
            if bus.connection == "serial" and not (bus.device or "").strip():
                raise ValidationError(
                    self.env._("Bus %(bus)s: give the path of its serial device.", bus=bus.name)
                )

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for bus in self:
            bus.meter_count = len(bus.meter_ids)
