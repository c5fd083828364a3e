from datetime import datetime

from odoo import api, fields, models


class PrepaidMeterEvent(models.Model):
    """B8: an overload trip, reported by the device or found in its readings, is an input of
    the alarm state machine: supply is cut until a manager resets it (or the meter's
    auto-reset time has passed).  B11: alarm level changes are meter events too (the alarm
    history of the reports)."""

    _inherit = "prepaid.meter.event"

    event_type = fields.Selection(
        selection_add=[("alarm_level", "Alarm Level Changed")],
        ondelete={"alarm_level": "cascade"},
    )

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        latest = {}
        for event in events.filtered(lambda e: e.event_type == "overload"):
            meter = event.meter_id
            if event.event_at > (latest.get(meter) or meter.overload_at or datetime.min):
                latest[meter] = event.event_at
        for meter, tripped_at in latest.items():
            meter.sudo().overload_at = tripped_at  # evaluates the meter's alarms
        return events
