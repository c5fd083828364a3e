from odoo import fields, models

#: what 4G and Bluetooth meters report besides prepaid_meter's events (MQTT schema G2)
DEVICE_ONLY_EVENTS = [
    ("tamper_cleared", "Tamper Cleared"),
    ("fault_cleared", "Fault Cleared"),
    ("alarm1", "Low Balance Alarm 1 (meter)"),
    ("alarm2", "Low Balance Alarm 2 (meter)"),
    ("credit_exhausted", "Credit Exhausted (meter)"),
    ("overload", "Overload"),
    ("token_accepted", "Token Accepted"),
    ("token_rejected", "Token Rejected"),
]

#: what the gateway measures on a meter (G3)
GATEWAY_EVENTS = [("clock_drift", "Clock Drift")]


class PrepaidMeterEvent(models.Model):
    _inherit = "prepaid.meter.event"

    event_type = fields.Selection(
        selection_add=DEVICE_ONLY_EVENTS + GATEWAY_EVENTS,
        ondelete={key: "cascade" for key, _label in DEVICE_ONLY_EVENTS + GATEWAY_EVENTS},
    )
    device_event_id = fields.Char(
        string="Device Event Id",
        readonly=True,
        copy=False,
        help="Id of the event given by the device or its gateway (device API ``event_id``): "
        "an event delivered again (a runner killed before its broker acknowledgement) is "
        "logged once.",
    )

    _device_event_uniq = models.UniqueIndex(
        "(meter_id, device_event_id) WHERE device_event_id IS NOT NULL",
        "A device event is logged once per meter.",
    )
