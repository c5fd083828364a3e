from odoo import fields, models

from ..const import EVENT_TYPES


class PrepaidMeterEvent(models.Model):
    """M6: what happened to a meter, who did it and why (relay, zeroing, faults, tamper,
    power, connection).  Events written by people form the operator log of remote actions."""

    _name = "prepaid.meter.event"
    _description = "Meter Event"
    _order = "event_at desc, id desc"
    _rec_name = "event_type"

    meter_id = fields.Many2one("prepaid.meter", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    site_id = fields.Many2one(related="meter_id.site_id", store=True)
    event_type = fields.Selection(EVENT_TYPES, required=True, index=True)
    event_at = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    source = fields.Selection(
        [("operator", "Operator"), ("system", "System"), ("device", "Device")],
        default="system",
        required=True,
    )
    user_id = fields.Many2one("res.users", string="By")
    reason = fields.Char()
    code = fields.Char(help="Fault or status code reported by the device.")
