from odoo import fields, models


class PrepaidMeterEvent(models.Model):
    """B11: alarm level changes are meter events too (the alarm history of the reports)."""

    _inherit = "prepaid.meter.event"

    event_type = fields.Selection(
        selection_add=[("alarm_level", "Alarm Level Changed")],
        ondelete={"alarm_level": "cascade"},
    )
