from odoo import api, fields, models
from odoo.tools import format_datetime

from ..utils import close_manager_activities, schedule_manager_activity


class PrepaidGateway(models.Model):
    """G1 (asset side): a data collector, a 4G meter cloud or a Bluetooth bridge.

    prepaid_meter only keeps the asset and its last contact; meter_gateway adds polling,
    commands and the device API on top of it.
    """

    _name = "prepaid.gateway"
    _description = "Meter Gateway"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "site_id, name"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    gateway_type = fields.Selection(
        [
            ("tcp_collector", "TCP Collector (RS-485 buses)"),
            ("mqtt", "4G Meters (MQTT)"),
            ("ble_bridge", "Bluetooth Bridge"),
        ],
        string="Type",
        required=True,
        default="tcp_collector",
        tracking=True,
    )
    serial = fields.Char()
    site_id = fields.Many2one("prepaid.site", index=True, check_company=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    host = fields.Char(help="IP address or host name of the collector.")
    install_location = fields.Char()
    bus_ids = fields.One2many("prepaid.gateway.bus", "gateway_id", string="Buses")
    meter_ids = fields.One2many("prepaid.meter", "gateway_id", string="Meters")
    meter_count = fields.Integer(compute="_compute_meter_count")
    last_contact_at = fields.Datetime(readonly=True)
    connection_state = fields.Selection(
        [("never", "Never Seen"), ("online", "Online"), ("lost", "Lost Connection")],
        default="never",
        readonly=True,
        tracking=True,
    )

    def write(self, vals):
        was_lost = {gateway.id for gateway in self if gateway.connection_state == "lost"}
        res = super().write(vals)
        if "connection_state" in vals:
            for gateway in self:
                if (gateway.connection_state == "lost") != (gateway.id in was_lost):
                    gateway._connection_activity()
        return res

    def _connection_activity(self):
        """M10: a manager's to-do when the gateway is lost, marked done when it is back."""
        if self.connection_state == "lost":
            schedule_manager_activity(self, self._lost_wording)
        else:
            close_manager_activities(
                self, self._lost_wording, self.env._("The gateway answers again.")
            )

    def _lost_wording(self, env):
        gateway = self.with_env(env)
        return (
            env._("Gateway lost: %(gateway)s", gateway=gateway.display_name),
            env._(
                "No contact since %(time)s. Check the collector's power, network and SIM "
                "card; its meters are not read meanwhile.",
                time=format_datetime(env, gateway.last_contact_at)
                if gateway.last_contact_at
                else env._("never"),
            ),
        )

    @api.depends("meter_ids")
    def _compute_meter_count(self):
        counts = dict(
            self.env["prepaid.meter"]._read_group(
                [("gateway_id", "in", self.ids)], ["gateway_id"], ["__count"]
            )
        )
        for gateway in self:
            gateway.meter_count = counts.get(gateway, 0)

    def action_view_meters(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("prepaid_meter.prepaid_meter_action")
        action["domain"] = [("gateway_id", "in", self.ids)]
        action["context"] = {"default_gateway_id": self.id} if len(self) == 1 else {}
        return action
