from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidMeterBatch(models.TransientModel):
    """B12: set the tariff, the alarm thresholds and the overload limit of the selected
    meters (the thresholds become the meters' own)."""

    _name = "prepaid.meter.batch"
    _description = "Batch Settings for Meters"

    meter_ids = fields.Many2many("prepaid.meter", string="Meters")
    tariff_id = fields.Many2one("prepaid.tariff", help="Leave empty to keep each meter's.")
    set_thresholds = fields.Boolean(
        string="Set Alarm Thresholds", help="The meters get thresholds of their own."
    )
    alarm1_threshold = fields.Float(string="Alarm 1", digits=(16, 4), default=20.0)
    alarm2_threshold = fields.Float(string="Alarm 2", digits=(16, 4), default=5.0)
    set_overload = fields.Boolean(string="Set Overload Limit")
    overload_limit = fields.Float(string="Overload Limit (kW)", digits=(16, 4))

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if self.env.context.get("active_model") == "prepaid.meter":
            values["meter_ids"] = [fields.Command.set(self.env.context.get("active_ids", []))]
        return values

    def action_apply(self):
        self.ensure_one()
        if not self.meter_ids:
            raise UserError(self.env._("Select meters first."))
        if self.tariff_id:
            self.meter_ids.write({"tariff_id": self.tariff_id.id})
        if self.set_thresholds:
            self.meter_ids.write(
                {
                    "alarm_own_thresholds": True,
                    "alarm1_threshold": self.alarm1_threshold,
                    "alarm2_threshold": self.alarm2_threshold,
                }
            )
        if self.set_overload:
            self.meter_ids.write({"overload_limit": self.overload_limit})
        return {"type": "ir.actions.act_window_close"}
