import re

from odoo import api, fields, models

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

#: how a meter names the credit token it accepted (MQTT event detail, e.g. "CREDIT #12")
ACCEPTED_CREDIT_RE = re.compile(r"CREDIT #([0-9]{1,10})")

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

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        events.filtered(lambda e: e.event_type == "token_accepted")._apply_accepted_credits()
        return events

    def _apply_accepted_credits(self):
        """B13: a meter reporting that it accepted the credit token of sequence N applied
        the credit that token carried (when its confirmation is slower or lost)."""
        Credit = self.env["prepaid.meter.credit"].sudo()
        for event in self:
            match = ACCEPTED_CREDIT_RE.fullmatch(event.reason or "")
            if not match:
                continue
            credits = Credit.search(
                [
                    ("meter_id", "=", event.meter_id.id),
                    ("token_reference", "=", str(int(match[1]))),
                    ("state", "=", "issued"),
                    ("meter_id.token_format", "=", "own"),
                ]
            )
            credits._mark_applied(self.env._("the meter reported token %s accepted", match[1]))
