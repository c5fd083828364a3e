from odoo import models

from odoo.addons.prepaid_meter.utils import schedule_manager_activity, selection_label


class MeterGatewayCommand(models.Model):
    """M10: a command that failed (after its retries) asks a manager to look at its meter."""

    _inherit = "meter.gateway.command"

    def _update_state(self, allowed_states, target_state, reason, extra_vals=None):
        changed = super()._update_state(allowed_states, target_state, reason, extra_vals)
        if target_state == "failed":
            for command in changed.filtered("meter_id"):
                schedule_manager_activity(command.meter_id, command._failed_wording)
        return changed

    def _failed_wording(self, env):
        command = self.with_env(env)
        return (
            env._(
                "Command failed: %(kind)s",
                kind=selection_label(command, "kind", command.kind),
            ),
            env._(
                "%(command)s could not be carried out: %(reason)s. Check the meter and its "
                "gateway, then send it again from the meter's Action menu.",
                command=command.display_name,
                reason=command.state_reason or command.last_error or "",
            ),
        )
