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


class PrepaidMeterEvent(models.Model):
    _inherit = "prepaid.meter.event"

    event_type = fields.Selection(
        selection_add=DEVICE_ONLY_EVENTS,
        ondelete={key: "cascade" for key, _label in DEVICE_ONLY_EVENTS},
    )
