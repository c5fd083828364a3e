from odoo import api, fields, models


class MeterGatewayConnectionTest(models.TransientModel):
    """M9/G1: the result of a gateway's *Test Connection*: a line per meter, what
    answered, what did not and why (see ``prepaid_gateway_connection_test``)."""

    _name = "meter.gateway.connection.test"
    _description = "Gateway Connection Test"

    gateway_id = fields.Many2one("prepaid.gateway", required=True, ondelete="cascade")
    tested_at = fields.Datetime(default=fields.Datetime.now, readonly=True)
    line_ids = fields.One2many("meter.gateway.connection.test.line", "test_id", string="Meters")
    summary = fields.Char(compute="_compute_summary")

    @api.depends("line_ids.state")
    def _compute_summary(self):
        for test in self:
            answered = len(test.line_ids.filtered(lambda line: line.state == "answered"))
            test.summary = self.env._(
                "%(answered)s of %(total)s meters answered.",
                answered=answered,
                total=len(test.line_ids),
            )

    def _open(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Connection Test"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }


class MeterGatewayConnectionTestLine(models.TransientModel):
    _name = "meter.gateway.connection.test.line"
    _description = "Gateway Connection Test Line"
    _order = "state desc, bus_id, address"

    test_id = fields.Many2one("meter.gateway.connection.test", required=True, ondelete="cascade")
    meter_id = fields.Many2one("prepaid.meter", readonly=True)
    bus_id = fields.Many2one("prepaid.gateway.bus", readonly=True)
    address = fields.Char(readonly=True)
    state = fields.Selection(
        [
            ("answered", "Answered"),
            ("refused", "Answered with an Error"),
            ("silent", "No Answer"),
            ("unreachable", "Bus Not Reached"),
            ("not_polled", "Not Read"),
        ],
        string="Result",
        readonly=True,
    )
    detail = fields.Char(readonly=True)
    last_seen_at = fields.Datetime(string="Last Seen", readonly=True)
