from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidMeterBatch(models.TransientModel):
    """B12: set the tariff and the alarm thresholds of the selected meters."""

    _name = "prepaid.meter.batch"
    _description = "Batch Settings for Meters"

    meter_ids = fields.Many2many("prepaid.meter", string="Meters")
    tariff_id = fields.Many2one("prepaid.tariff", help="Leave empty to keep each meter's.")
    set_thresholds = fields.Boolean(string="Set Alarm Thresholds")
    alarm1_threshold = fields.Float(string="Alarm 1", digits=(16, 4), default=20.0)
    alarm2_threshold = fields.Float(string="Alarm 2", digits=(16, 4), default=5.0)

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
            accounts = self.meter_ids.account_id
            accounts.write(
                {
                    "alarm1_threshold": self.alarm1_threshold,
                    "alarm2_threshold": self.alarm2_threshold,
                }
            )
            accounts.meter_ids._evaluate_alarms()
        return {"type": "ir.actions.act_window_close"}
