from odoo import api, fields, models
from odoo.exceptions import UserError


class PrepaidMeterReplace(models.TransientModel):
    """M4: replace a meter in a unit, keeping its history.

    The old meter gets its final reading and is removed; the new one gets its initial
    reading (its baseline) and takes the old one's place.  prepaid_billing extends
    :meth:`_replace` to carry the remaining balance over.
    """

    _name = "prepaid.meter.replace"
    _description = "Replace Meter"

    old_meter_id = fields.Many2one(
        "prepaid.meter", required=True, domain="[('state', '=', 'in_service')]"
    )
    unit_id = fields.Many2one(related="old_meter_id.unit_id")
    company_id = fields.Many2one(related="old_meter_id.company_id")
    utility = fields.Selection(related="old_meter_id.utility")
    old_last_total = fields.Float(related="old_meter_id.last_forward_total", string="Last Reading")
    final_reading = fields.Float(digits=(16, 4), required=True)
    final_reverse = fields.Float(digits=(16, 4), string="Final Reverse Reading")
    new_meter_id = fields.Many2one(
        "prepaid.meter",
        required=True,
        domain="[('state', '=', 'draft'), ('company_id', '=', company_id), "
        "('utility', '=', utility), ('id', '!=', old_meter_id)]",
    )
    initial_reading = fields.Float(digits=(16, 4))
    replaced_at = fields.Datetime(required=True, default=fields.Datetime.now)
    reason = fields.Char(required=True, default=lambda self: self.env._("Meter replacement"))

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if self.env.context.get("active_model") == "prepaid.meter" and self.env.context.get(
            "active_id"
        ):
            meter = self.env["prepaid.meter"].browse(self.env.context["active_id"])
            values["old_meter_id"] = meter.id
            values.setdefault("final_reading", meter.last_forward_total)
        return values

    def action_replace(self):
        self.ensure_one()
        new = self._replace()
        return {
            "type": "ir.actions.act_window",
            "res_model": "prepaid.meter",
            "res_id": new.id,
            "view_mode": "form",
        }

    def _replace(self):
        old, new = self.old_meter_id, self.new_meter_id
        if old.state != "in_service":
            raise UserError(self.env._("Only a meter in service can be replaced."))
        if new.state != "draft":
            raise UserError(self.env._("The new meter must be a meter not yet installed."))
        if new.utility != old.utility:
            raise UserError(self.env._("A meter can only be replaced by one of the same utility."))
        if self.final_reading < old.last_forward_total:
            raise UserError(
                self.env._(
                    "The final reading (%(final)s) is below the meter's last reading (%(last)s).",
                    final=self.final_reading,
                    last=old.last_forward_total,
                )
            )
        readings = self.env["prepaid.meter.reading"]
        if not old.last_reading_at or self.replaced_at > old.last_reading_at:
            readings.create(
                {
                    "meter_id": old.id,
                    "read_at": self.replaced_at,
                    "forward_total": self.final_reading,
                    "reverse_total": self.final_reverse or None,
                    "source": "manual",
                }
            )
        readings.create(
            {
                "meter_id": new.id,
                "read_at": self.replaced_at,
                "forward_total": self.initial_reading,
                "source": "manual",
            }
        )
        new.write(
            {
                "unit_id": old.unit_id.id,
                "replaces_id": old.id,
                "desired_relay_state": old.desired_relay_state,
                "desired_relay_reason": old.desired_relay_reason,
                "protect_mode": old.protect_mode,
            }
        )
        new.action_put_in_service()
        old.write({"state": "removed", "replaced_by_id": new.id})
        reason = f"{self.reason}: {old.display_name} → {new.display_name}"
        (old | new)._log_event("replaced", reason=reason, event_at=self.replaced_at)
        old.message_post(body=reason)
        new.message_post(body=reason)
        return new
