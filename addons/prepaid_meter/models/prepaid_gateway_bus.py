from odoo import api, fields, models

from ..const import PROTOCOLS

#: RS-485 allows 32 unit loads on one bus
MAX_METERS_PER_BUS = 32


class PrepaidGatewayBus(models.Model):
    """G1: one RS-485 bus (serial port) of a collector; at most 32 meters."""

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
    port = fields.Integer(string="TCP Port", help="Port of the serial server for this bus.")
    baud_rate = fields.Selection(
        [("1200", "1200"), ("2400", "2400"), ("4800", "4800"), ("9600", "9600")],
        default="2400",
        required=True,
    )
    protocol = fields.Selection(PROTOCOLS, default="dlt645_2007", required=True)
    meter_ids = fields.One2many("prepaid.meter", "bus_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")

    _number_gateway_uniq = models.UniqueIndex(
        "(gateway_id, number)", "A bus number must be unique on its collector."
    )

    @api.depends("gateway_id.name", "number")
    def _compute_name(self):
        for bus in self:
            bus.name = f"{bus.gateway_id.name} / COM{bus.number}"

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for bus in self:
            bus.meter_count = len(bus.meter_ids)
