from odoo import api, fields, models

from ..const import COMMAND_KINDS

#: how a batch counts its commands' states
CONFIRMED = ("confirmed",)
FAILED = ("failed", "expired")
PENDING = ("queued", "sent", "handed")


class MeterGatewayCommandBatch(models.Model):
    """B12/M10: the commands one *Send a Command* queued for many meters, and how far they
    got: "37 of 120 confirmed, 2 failed", with a progress bar."""

    _name = "meter.gateway.command.batch"
    _description = "Command Batch"
    _inherit = ["mail.thread"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True)
    kind = fields.Selection(
        [(kind, label) for kind, (label, _purpose, _life) in COMMAND_KINDS.items()],
        string="Command",
        readonly=True,
    )
    reason = fields.Char(readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    command_ids = fields.One2many("meter.gateway.command", "batch_id", string="Commands")
    command_count = fields.Integer(compute="_compute_progress", string="Commands Sent")
    confirmed_count = fields.Integer(compute="_compute_progress", string="Confirmed")
    failed_count = fields.Integer(compute="_compute_progress", string="Failed")
    pending_count = fields.Integer(compute="_compute_progress", string="In Progress")
    progress = fields.Float(
        compute="_compute_progress", help="Share of the commands that are over (%)."
    )
    summary = fields.Char(compute="_compute_progress", string="Progress")
    state = fields.Selection(
        [("in_progress", "In Progress"), ("done", "Done")], compute="_compute_progress"
    )

    @api.depends("command_ids.state")
    def _compute_progress(self):
        counts = {
            (batch.id, state): count
            for batch, state, count in self.env["meter.gateway.command"]._read_group(
                [("batch_id", "in", self.ids)], ["batch_id", "state"], ["__count"]
            )
        }
        for batch in self:
            by_state = {state: n for (batch_id, state), n in counts.items() if batch_id == batch.id}
            total = sum(by_state.values())
            confirmed = sum(by_state.get(state, 0) for state in CONFIRMED)
            failed = sum(by_state.get(state, 0) for state in FAILED)
            pending = sum(by_state.get(state, 0) for state in PENDING)
            batch.command_count, batch.confirmed_count = total, confirmed
            batch.failed_count, batch.pending_count = failed, pending
            batch.progress = 100.0 * (total - pending) / total if total else 0.0
            batch.state = "in_progress" if pending else "done"
            batch.summary = self.env._(
                "%(confirmed)s of %(total)s confirmed, %(failed)s failed",
                confirmed=confirmed,
                total=total,
                failed=failed,
            )

    def action_view_commands(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "meter_gateway.meter_gateway_command_action"
        )
        action.update({"domain": [("batch_id", "=", self.id)], "context": {}})
        return action


class MeterGatewayCommand(models.Model):
    _inherit = "meter.gateway.command"

    batch_id = fields.Many2one(
        "meter.gateway.command.batch", readonly=True, index="btree_not_null", ondelete="set null"
    )
