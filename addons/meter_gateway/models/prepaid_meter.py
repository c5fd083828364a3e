from odoo import fields, models


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    poll_failures = fields.Integer(
        readonly=True, copy=False, help="Polls in a row in which the meter did not answer."
    )
    modbus_unit_id = fields.Integer(
        string="Modbus Unit Id", help="Slave address (1-247) of a Modbus-RTU meter on its bus."
    )
    gateway_command_ids = fields.One2many("meter.gateway.command", "meter_id", string="Commands")

    def _register_poll_failure(self, reason, lost_after):
        """G3: count a failed poll; after ``lost_after`` in a row the meter is lost."""
        for meter in self:
            meter.poll_failures += 1
        lost = self.filtered(
            lambda m: m.poll_failures >= lost_after and m.connection_state != "lost"
        )
        lost.write({"connection_state": "lost"})
        lost._log_event(
            "connection_lost",
            reason=self.env._(
                "%(n)s polls without answer: %(reason)s", n=lost_after, reason=reason
            ),
        )
        return lost

    def action_read_now(self):
        """G3/B12: read the selected meters now, through their collectors (queued commands
        for them are sent too)."""
        self.check_access("read")
        for gateway in self.gateway_id.filtered(lambda g: g.gateway_type == "tcp_collector"):
            gateway.sudo()._poll(only_meters=self.filtered(lambda m, g=gateway: m.gateway_id == g))
        return True

    def action_view_gateway_commands(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "meter_gateway.meter_gateway_command_action"
        )
        action["domain"] = [("meter_id", "in", self.ids)]
        action["context"] = {}
        return action
