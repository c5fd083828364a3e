from odoo import api, fields, models


class MeterGatewayMessage(models.Model):
    """G5: the device API's idempotency table.  A message id is processed once per gateway;
    a resend gets the stored answer back and changes nothing (a unique index decides, also
    between two concurrent deliveries)."""

    _name = "meter.gateway.message"
    _description = "Device API Message"
    _order = "id desc"
    _rec_name = "message_id"

    gateway_id = fields.Many2one("prepaid.gateway", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="gateway_id.company_id", store=True, index=True)
    message_id = fields.Char(required=True)
    endpoint = fields.Char(required=True)
    status_code = fields.Integer()
    response = fields.Json()
    replay_count = fields.Integer(readonly=True)

    _gateway_message_uniq = models.UniqueIndex(
        "(gateway_id, message_id)", "A message id is processed once per gateway."
    )

    @api.model
    def _find(self, gateway, message_id):
        return self.search(
            [("gateway_id", "=", gateway.id), ("message_id", "=", message_id)], limit=1
        )
