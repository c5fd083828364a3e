from odoo import api, fields, models

from ..const import MANAGEMENT_TOKENS


class MeterGatewayManagementTokenWizard(models.TransientModel):
    """B13/G6: a manager issues a management token for one meter: STS meters take set
    maximum power limit, clear credit, clear tamper condition and key change (two tokens
    moving the meter to a new key revision or tariff index); own-format meters take clear
    credit and clear tamper.  The tokens go to the meter's command list, handed over."""

    _name = "meter.gateway.management.token.wizard"
    _description = "Issue a Management Token"

    meter_id = fields.Many2one(
        "prepaid.meter",
        required=True,
        default=lambda self: (
            self.env.context.get("active_id")
            if self.env.context.get("active_model") == "prepaid.meter"
            else False
        ),
    )
    token_format = fields.Selection(related="meter_id.token_format")
    action = fields.Selection(MANAGEMENT_TOKENS, string="Token", required=True)
    max_power_watts = fields.Integer(string="Maximum Power (W)")
    key_revision = fields.Integer(string="New Key Revision")
    tariff_index = fields.Char(string="New Tariff Index", size=2)
    reason = fields.Char(required=True, help="Why: kept on the token's command and in its log.")

    @api.onchange("meter_id", "action")
    def _onchange_key_change(self):
        if self.action == "key_change" and self.meter_id:
            self.key_revision = self.meter_id.sts_key_revision % 9 + 1
            self.tariff_index = self.meter_id.sts_tariff_index

    def action_issue(self):
        self.ensure_one()
        commands = self.meter_id._issue_management_tokens(
            self.action,
            self.reason,
            watts=self.max_power_watts,
            key_revision=self.key_revision,
            tariff=self.tariff_index,
        )
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "meter_gateway.meter_gateway_command_action"
        )
        action.update(domain=[("id", "in", commands.ids)], context={})
        return action
