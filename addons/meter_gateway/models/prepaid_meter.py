import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_core import device_push

MAC_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
#: fields whose change makes the meter another device: its DL/T645 read mode is forgotten
READ_MODE_RESET_FIELDS = frozenset({"model_id", "address"})


class PrepaidMeter(models.Model):
    _inherit = "prepaid.meter"

    poll_failures = fields.Integer(
        readonly=True, copy=False, help="Polls in a row in which the meter did not answer."
    )
    modbus_unit_id = fields.Integer(
        string="Modbus Unit Id",
        help="Slave address (1-247) of a Modbus-RTU meter on its bus; such a meter is polled "
        "by it and needs no communication address.",
    )
    ble_mac = fields.Char(
        string="Bluetooth Address",
        help="MAC address of a Bluetooth meter (AA:BB:CC:DD:EE:FF); its bridge connects to it.",
    )
    token_sequence = fields.Integer(
        readonly=True,
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="Sequence number of the last credit token issued for the meter: the next "
        "token gets a greater one, and the meter accepts only greater ones.",
    )
    gateway_command_ids = fields.One2many("meter.gateway.command", "meter_id", string="Commands")
    device_settings_issued_at = fields.Datetime(
        string="Settings Issued",
        readonly=True,
        copy=False,
        help="When the meter's prices and thresholds were last turned into commands.",
    )
    # G3: the meter's clock, checked by the poll (see prepaid_gateway_time_sync.py)
    clock_drift_seconds = fields.Integer(
        string="Clock Drift (s)",
        readonly=True,
        copy=False,
        help="How far the meter's clock was from the true time at its last check, in "
        "seconds (positive: ahead).",
    )
    clock_checked_at = fields.Datetime(string="Clock Checked", readonly=True, copy=False)
    clock_drifting = fields.Boolean(
        readonly=True,
        copy=False,
        help="At its last check the meter's clock was off by more than its gateway's "
        "drift threshold: a time sync was queued.",
    )
    dlt645_read_mode = fields.Selection(
        [("block", "Blocks"), ("items", "Single Items")],
        string="DL/T645 Energy Read",
        readonly=True,
        copy=False,
        help="How the meter's energy was read at its last poll: as one block or item by "
        "item (meters that answer blocks with 'no data'); the next poll asks that way "
        "first. Forgotten when the meter's model or address changes.",
    )

    @api.constrains("modbus_unit_id", "bus_id", "state")
    def _check_modbus_unit_id(self):
        """G2/X1: a unit id is 1-247 and, like an address, unique on its bus."""
        for meter in self.filtered("modbus_unit_id"):
            if not 1 <= meter.modbus_unit_id <= 247:
                raise ValidationError(
                    self.env._(
                        "The Modbus unit id of %(meter)s must be 1 to 247 (got %(unit)s).",
                        meter=meter.display_name,
                        unit=meter.modbus_unit_id,
                    )
                )
            if (
                meter.bus_id
                and meter.state != "removed"
                and self.search_count(
                    [
                        ("id", "!=", meter.id),
                        ("bus_id", "=", meter.bus_id.id),
                        ("modbus_unit_id", "=", meter.modbus_unit_id),
                        ("state", "!=", "removed"),
                    ],
                    limit=1,
                )
            ):
                raise ValidationError(
                    self.env._(
                        "Modbus unit id %(unit)s is already used on the bus of %(meter)s.",
                        unit=meter.modbus_unit_id,
                        meter=meter.display_name,
                    )
                )

    @api.constrains("ble_mac")
    def _check_ble_mac(self):
        for meter in self:
            if meter.ble_mac and not MAC_RE.match(meter.ble_mac):
                raise ValidationError(
                    self.env._(
                        "The Bluetooth address of %(meter)s must look like AA:BB:CC:DD:EE:FF.",
                        meter=meter.display_name,
                    )
                )

    def write(self, vals):
        if READ_MODE_RESET_FIELDS & vals.keys() and "dlt645_read_mode" not in vals:
            vals = {**vals, "dlt645_read_mode": False}
        return super().write(vals)

    def _device_key(self):
        """How the device API and the gateway runner name the meter: its address or, for a
        Modbus-RTU meter addressed by its unit id alone, its unit key (its bus number and
        unit id, ``modbus:<bus>:<unit>``).  False for a meter they cannot name."""
        self.ensure_one()
        if self.address or not (self.modbus_unit_id and self.bus_id):
            return self.address
        return device_push.unit_key(self.bus_id.number, self.modbus_unit_id)

    def _remember_read_mode(self, mode):
        """G2: the way the meter's energy answered (``block`` or ``items``), kept for the
        next poll."""
        self.filtered(lambda m: m.dlt645_read_mode != mode).write({"dlt645_read_mode": mode})

    def _next_token_sequence(self):
        """G6/R10: the next token sequence number of this meter, taken in SQL under the
        meter's row lock: two tokens issued at once (same minute, two transactions) get
        distinct, strictly increasing numbers."""
        self.ensure_one()
        self.env.cr.execute(
            "UPDATE prepaid_meter SET token_sequence = COALESCE(token_sequence, 0) + 1 "
            "WHERE id = %s RETURNING token_sequence",
            (self.id,),
        )
        sequence = self.env.cr.fetchone()[0]
        self.invalidate_recordset(["token_sequence"])
        return sequence

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

    def _set_desired_relay(self, state, reason):
        """G4: a new intent is acted on at once: reconciliation is triggered (it queues the
        command and brings the collector's poll forward) instead of waiting for its
        schedule."""
        changed = super()._set_desired_relay(state, reason)
        if changed.filtered(lambda m: m.state == "in_service" and m.gateway_id):
            cron = self.env.ref("meter_gateway.ir_cron_meter_gateway_reconcile", False)
            if cron and cron.active:
                cron.sudo()._trigger()
        return changed

    def action_read_now(self):
        """G3/B12: read the selected meters now: collectors are polled at once (queued
        commands for those meters are sent too); 4G meters get a *read now* command that
        the gateway runner publishes (the meter answers with a reading)."""
        self.check_access("read")
        for gateway in self.gateway_id.filtered(lambda g: g.gateway_type == "tcp_collector"):
            gateway.sudo()._poll(only_meters=self.filtered(lambda m, g=gateway: m.gateway_id == g))
        mqtt_meters = self.filtered(
            lambda m: m.gateway_id.gateway_type == "mqtt" and m.state == "in_service"
        )
        if mqtt_meters:
            self.env["meter.gateway.command"].sudo()._queue(
                mqtt_meters, "read_now", self.env._("read now by %s", self.env.user.name)
            )
        return True

    def _request_reading(self):
        """T3/G3: a reading is asked for: collectors are polled at their next scheduled
        run, brought forward to now; 4G meters get a *read now* command for the runner."""
        asked = super()._request_reading()
        meters = self.filtered(lambda m: m.state == "in_service")
        collectors = meters.gateway_id.filtered(lambda g: g.gateway_type == "tcp_collector")
        if collectors:
            collectors.sudo().write({"next_poll_at": fields.Datetime.now()})
            self.env.ref("meter_gateway.ir_cron_meter_gateway_poll").sudo()._trigger()
        mqtt_meters = meters.filtered(lambda m: m.gateway_id.gateway_type == "mqtt")
        if mqtt_meters:
            self.env["meter.gateway.command"].sudo()._queue(
                mqtt_meters, "read_now", self.env._("read now asked by %s", self.env.user.name)
            )
        return asked | meters.filtered(lambda m: m.gateway_id in collectors) | mqtt_meters

    def action_view_gateway_commands(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "meter_gateway.meter_gateway_command_action"
        )
        action["domain"] = [("meter_id", "in", self.ids)]
        action["context"] = {}
        return action
