from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.prepaid_meter.utils import selection_label

from ..const import COMMAND_KINDS, RELAY_KIND_STATE

#: what a batch may ask from the meter list (credit deliveries come from recharges, reading
#: now is the meters' own *Read Now* action)
BATCH_KINDS = [
    (kind, label)
    for kind, (label, purpose, _life) in COMMAND_KINDS.items()
    if purpose not in ("credit", "read_now", "management")
]


class MeterGatewayCommandWizard(models.TransientModel):
    """G4/B12: one command for every selected meter (price issuance, thresholds, protect,
    relay, time sync, zeroing).  Relay commands also set the desired state, so that the
    reconciler keeps the meters there."""

    _name = "meter.gateway.command.wizard"
    _description = "Send a Command to Meters"

    meter_ids = fields.Many2many(
        "prepaid.meter",
        string="Meters",
        required=True,
        default=lambda self: (
            self.env.context.get("active_ids")
            if self.env.context.get("active_model") == "prepaid.meter"
            else False
        ),
    )
    meter_count = fields.Integer(compute="_compute_meter_count")
    kind = fields.Selection(BATCH_KINDS, string="Command", required=True, default="time_sync")
    price = fields.Float(digits=(16, 4), help="Price per unit sent to the meters.")
    alarm1 = fields.Float(string="Alarm 1 Balance", digits=(16, 2))
    alarm2 = fields.Float(string="Alarm 2 Balance", digits=(16, 2))
    reason = fields.Char(required=True, help="Why: kept on every command and in its log.")

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        for wizard in self:
            wizard.meter_count = len(wizard.meter_ids)

    def _payload(self):
        self.ensure_one()
        if self.kind == "price":
            if self.price <= 0:
                raise UserError(self.env._("The price must be positive."))
            return {"price": f"{self.price:.4f}"}
        if self.kind == "thresholds":
            if self.alarm2 < 0 or self.alarm1 < self.alarm2:
                raise UserError(
                    self.env._("Alarm 1 must be at least alarm 2, and both not negative.")
                )
            return {"alarm1": f"{self.alarm1:.2f}", "alarm2": f"{self.alarm2:.2f}"}
        return None

    def action_queue(self):
        self.ensure_one()
        meters = self.meter_ids.filtered(lambda m: m.state == "in_service" and m.gateway_id)
        if not meters:
            raise UserError(self.env._("None of the selected meters is in service on a gateway."))
        payload = self._payload()
        target = RELAY_KIND_STATE.get(self.kind)
        if target:
            meters._set_desired_relay(target, self.reason)
        commands = self.env["meter.gateway.command"]._queue(
            meters, self.kind, self.reason, payload=payload, origin="manual"
        )
        batch = self.env["meter.gateway.command.batch"].create(
            {
                "name": f"{selection_label(self, 'kind', self.kind)}: {self.reason}",
                "kind": self.kind,
                "reason": self.reason,
                "company_id": meters[0].company_id.id,
            }
        )
        commands.write({"batch_id": batch.id})
        return {
            "type": "ir.actions.act_window",
            "res_model": "meter.gateway.command.batch",
            "res_id": batch.id,
            "views": [(False, "form")],
        }
