import io
import json
from datetime import timedelta
from decimal import Decimal

import xlsxwriter
from psycopg2.extras import execute_values

from odoo import api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL

from odoo.addons.prepaid_meter.error_texts import error_text

from prepaid_core import alarm
from prepaid_core.readings import meter_side_limit

from ..const import ALARM_LEVELS, FORCED_RELAY, HOT_UPDATE_FILLFACTOR

#: meter fields a meter pricing locally holds: a change asks for an issuance
DEVICE_SETTING_FIELDS = frozenset(
    {
        "tariff_id",
        "alarm_own_thresholds",
        "alarm1_threshold",
        "alarm2_threshold",
        "overload_limit",
    }
)
#: meter fields the alarm state machine reads: a change evaluates it again
ALARM_INPUT_FIELDS = frozenset(
    {
        "protect_mode",
        "forced_relay",
        "alarm_own_thresholds",
        "alarm1_threshold",
        "alarm2_threshold",
        "overload_auto_reset_minutes",
        "overload_at",
        "overload_reset_at",
    }
)
#: decisions on credit a meter that keeps its own balance takes itself (B13): the server
#: leaves its supply on instead (notices still go out)
CREDIT_CUTS = frozenset({alarm.CUT_ARREARS, alarm.REMINDER_CUT})
METER_DECIDES = "meter_balance"


class PrepaidMeter(models.Model):
    """Billing on the meter: its tariff (if not the account's), its deduction cursor and
    cycle state (B3), its alarm state deciding the *desired* relay state (B8)."""

    _inherit = "prepaid.meter"

    tariff_id = fields.Many2one(
        "prepaid.tariff",
        tracking=True,
        check_company=True,
        help="Tariff of this meter; empty: the tariff of its prepaid account.",
    )
    account_id = fields.Many2one(
        "prepaid.account", compute="_compute_account_id", string="Prepaid Account"
    )
    account_balance = fields.Float(compute="_compute_account_id", string="Credit", digits=(16, 4))
    billing_charged_until = fields.Datetime(
        readonly=True, copy=False, help="Readings up to this time are charged."
    )
    billing_base_at = fields.Datetime(
        readonly=True, copy=False, help="Time of the last reading the next interval starts at."
    )
    billing_state = fields.Json(readonly=True, copy=False, help="Settlement cycle state (engine).")
    billing_tariff_id = fields.Many2one("prepaid.tariff", readonly=True, copy=False)
    alarm_level = fields.Selection(
        ALARM_LEVELS, default="normal", required=True, readonly=True, copy=False, tracking=True
    )
    alarm_state = fields.Json(readonly=True, copy=False)
    alarm_wake_at = fields.Datetime(
        readonly=True, copy=False, help="End of a reminder cut: alarms are evaluated again."
    )
    forced_relay = fields.Selection(
        FORCED_RELAY, copy=False, tracking=True, help="A manager's forced supply state."
    )
    # B8: thresholds of this meter (instead of its account's), overload trip
    alarm_own_thresholds = fields.Boolean(
        string="Own Alarm Thresholds",
        tracking=True,
        help="Compare the account's credit with this meter's thresholds, not the account's.",
    )
    alarm1_threshold = fields.Float(string="Alarm 1", digits=(16, 4), default=20.0, tracking=True)
    alarm2_threshold = fields.Float(string="Alarm 2", digits=(16, 4), default=5.0, tracking=True)
    overload_limit = fields.Float(
        string="Overload Limit (kW)",
        digits=(16, 4),
        tracking=True,
        help="Supply is cut when a reading shows more power than this on the primary side "
        "(the meter's power × CT ratio × PT ratio; 0: no limit).",
    )
    overload_auto_reset_minutes = fields.Integer(
        string="Overload Auto-Reset (min)",
        tracking=True,
        help="Supply comes back this long after an overload trip; 0: a manager resets it.",
    )
    overload_at = fields.Datetime(readonly=True, copy=False, help="Latest overload trip.")
    overload_reset_at = fields.Datetime(
        readonly=True, copy=False, help="Latest overload reset by a manager."
    )
    # B1, B12: what a meter pricing locally must hold, for meter_gateway to issue
    device_settings_at = fields.Datetime(
        string="Settings Changed",
        readonly=True,
        copy=False,
        help="When the prices, alarm thresholds or overload limit this meter must hold last "
        "changed, or an operator asked to issue them again; meter_gateway issues "
        "_device_settings() to meters that price locally when this is newer than the last "
        "issuance.",
    )
    # B7: credit the meter may use before its account is opened
    preset_credit = fields.Float(
        digits=(16, 4),
        tracking=True,
        help="Credit granted to this new meter; the account opened for its unit takes it over "
        "and recovers it from the first recharge.",
    )
    preset_account_id = fields.Many2one(
        "prepaid.account",
        readonly=True,
        copy=False,
        help="Account that took over the meter's preset credit.",
    )

    _alarm_wake_idx = models.Index("(alarm_wake_at) WHERE alarm_wake_at IS NOT NULL")
    # the overload check after each ingested batch looks only at meters with a limit
    _overload_limit_idx = models.Index("(id) WHERE overload_limit > 0")

    def init(self):
        res = super().init()
        # every deduction run rewrites each charged meter's cursor (``billing_*``, none of
        # them indexed): half of each page kept free lets the new row version stay on its
        # page (a HOT update), so the meter's 15 indexes are not written again for it
        self.env.cr.execute(
            SQL(
                "ALTER TABLE %s SET (fillfactor = %s)",
                SQL.identifier(self._table),
                HOT_UPDATE_FILLFACTOR,
            )
        )
        return res

    @api.constrains("tariff_id", "model_id")
    def _check_tariff_utility(self):
        for meter in self:
            if meter.tariff_id and meter.tariff_id.utility != meter.utility:
                raise ValidationError(
                    self.env._(
                        "%(meter)s measures %(utility)s: its tariff must be one for it.",
                        meter=meter.display_name,
                        utility=meter.utility,
                    )
                )

    @api.constrains("alarm_own_thresholds", "alarm1_threshold", "alarm2_threshold")
    def _check_alarm_thresholds(self):
        for meter in self.filtered("alarm_own_thresholds"):
            try:
                alarm.validate_thresholds(
                    Decimal(f"{meter.alarm1_threshold:.4f}"),
                    Decimal(f"{meter.alarm2_threshold:.4f}"),
                )
            except alarm.AlarmError as exc:
                raise ValidationError(
                    self.env._(
                        "%(meter)s: %(error)s",
                        meter=meter.display_name,
                        error=error_text(self.env, exc, meter.company_id.currency_id),
                    )
                ) from exc

    @api.constrains("overload_limit", "overload_auto_reset_minutes", "preset_credit")
    def _check_overload_preset(self):
        for meter in self:
            if (
                meter.overload_limit < 0
                or meter.overload_auto_reset_minutes < 0
                or meter.preset_credit < 0
            ):
                raise ValidationError(
                    self.env._(
                        "%(meter)s: the overload limit, its auto-reset and the preset credit "
                        "cannot be negative.",
                        meter=meter.display_name,
                    )
                )

    @api.depends("unit_id.tenancy_ids.state")
    def _compute_account_id(self):
        accounts = self.env["prepaid.account"].search(
            [("unit_id", "in", self.unit_id.ids), ("state", "=", "open")]
        )
        by_unit = {account.unit_id.id: account for account in accounts}
        for meter in self:
            account = by_unit.get(meter.unit_id.id, accounts.browse())
            meter.account_id = account
            meter.account_balance = account.available_credit

    # === STATUS (M8 colours) === #
    @api.model
    def _selection_status(self):
        selection = super()._selection_status()
        index = next((i for i, (key, _l) in enumerate(selection) if key == "protected"), 0)
        alarm_statuses = {
            "arrears": self.env._("Arrears"),
            "alarm2": self.env._("Alarm 2"),
            "alarm1": self.env._("Alarm 1"),
        }
        return selection[:index] + list(alarm_statuses.items()) + selection[index:]

    @api.depends("state", "connection_state", "protect_mode", "desired_relay_state", "alarm_level")
    def _compute_status(self):
        return super()._compute_status()

    def _get_status(self):
        status = super()._get_status()
        if status in ("removed", "draft", "lost"):
            return status
        if self.alarm_level == "arrears":
            return "arrears"
        if status != "off" and self.alarm_level in ("alarm2", "alarm1"):
            return self.alarm_level
        return status

    # === ALARMS AND SUPPLY (B8) === #
    def write(self, vals):
        res = super().write(vals)
        if ALARM_INPUT_FIELDS & set(vals):
            self._evaluate_alarms()
        elif "billing_mode" in vals:
            # B13: who cuts for credit changed (meters the machine already decides for)
            self.filtered("alarm_state")._evaluate_alarms()
        if DEVICE_SETTING_FIELDS & set(vals):
            self._touch_device_settings()
        return res

    def _evaluate_alarms(self, now=None, siblings=False):
        """Run the engine's alarm machine for these meters (and, with ``siblings``, the other
        meters of their accounts): store its state and the alarm level, set the desired relay
        state and queue the notices (sent by their own scheduled action).  Reads in one
        query; writes only what changed, in batches."""
        ids = [meter_id for meter_id in self.ids if meter_id]
        if not ids:
            return
        now = now or fields.Datetime.now()
        changes, settings = alarm.AlarmChanges(), {}
        for row in self._alarm_rows(ids, siblings):
            state = alarm.AlarmState.from_json(row["alarm_state"]) if row["alarm_state"] else None
            new_state, decision = alarm.evaluate(state, self._alarm_inputs(row, settings), now)
            if row["billing_mode"] == "meter" and decision.reason in CREDIT_CUTS:
                new_state, decision = self._supply_left_to_meter(state, new_state, decision)
            new_state, decision = self._postpaid_supply(row, state, new_state, decision)
            changes.add(self._stored_alarm(row), state, new_state, decision)
        self._store_alarm_states(changes.states)
        self._store_alarm_levels(changes.levels)
        for (relay, text), meter_ids in changes.relays.items():
            self.sudo().browse(meter_ids)._set_desired_relay(relay, text)
        self.env["prepaid.account.notice"].sudo()._queue(changes.notices)

    def _alarm_rows(self, ids, siblings):
        """What the alarm machine reads of meters ``ids`` (or of all meters of their units)
        in service with an open account: one row each."""
        self.flush_model()
        self.env["prepaid.account"].flush_model()
        query = SQL(
            """
            SELECT m.id AS meter_id, m.alarm_state, m.alarm_level, m.protect_mode,
                   m.forced_relay, m.desired_relay_state, m.desired_relay_reason,
                   m.alarm_wake_at, m.overload_at, m.overload_reset_at,
                   COALESCE(m.overload_auto_reset_minutes, 0) AS auto_reset_minutes,
                   m.alarm_own_thresholds, m.billing_mode, a.id AS account_id,
                   a.balance::text AS balance,
                   GREATEST(COALESCE(a.preset_credit, 0) - COALESCE(a.preset_recovered, 0),
                            0)::text AS preset,
                   CASE WHEN m.alarm_own_thresholds THEN m.alarm1_threshold
                        ELSE a.alarm1_threshold END::text AS alarm1,
                   CASE WHEN m.alarm_own_thresholds THEN m.alarm2_threshold
                        ELSE a.alarm2_threshold END::text AS alarm2,
                   COALESCE(a.overdraft_limit, 0)::text AS overdraft_limit,
                   a.reminder_minutes, a.last_recharge_at,
                   a.billing_type, a.postpaid_overdue_invoice_id
              FROM prepaid_meter m
              JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
              JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
             WHERE m.state = 'in_service' AND %s
            """,
            SQL("m.unit_id IN (SELECT unit_id FROM prepaid_meter WHERE id = ANY(%s))", ids)
            if siblings
            else SQL("m.id = ANY(%s)", ids),
        )
        return self.env.execute_query_dict(query)

    @api.model
    def _alarm_inputs(self, row, settings_cache):
        """The machine's inputs of an :meth:`_alarm_rows` row; equal settings are built once
        (``settings_cache``)."""
        key = (
            row["alarm1"],
            row["alarm2"],
            row["overdraft_limit"],
            row["reminder_minutes"],
            row["auto_reset_minutes"],
        )
        settings = settings_cache.get(key)
        if settings is None:
            alarm1, alarm2, overdraft, minutes, auto_reset = key
            settings = settings_cache[key] = alarm.AlarmSettings(
                alarm1=Decimal(alarm1 or 0),
                alarm2=Decimal(alarm2 or 0),
                overdraft_limit=Decimal(overdraft),
                reminder_cut=timedelta(minutes=max(minutes or 0, 0)),
                overload_auto_reset=timedelta(minutes=auto_reset) if auto_reset > 0 else None,
            )
        return alarm.AlarmInputs(
            Decimal(row["balance"] or 0) + Decimal(row["preset"] or 0),
            settings,
            row["protect_mode"] or False,
            row["forced_relay"] or None,
            row["overload_at"],
            row["overload_reset_at"],
            row["last_recharge_at"],
        )

    @api.model
    def _supply_left_to_meter(self, state, new_state, decision):
        """B13: the machine's cut for credit (arrears, reminder) of a meter that keeps its
        own balance becomes *on*: the meter cuts and restores itself by its balance; the
        level and the notices stay the machine's."""
        old_relay = state.relay if state else alarm.ON
        decision = decision._replace(
            relay=alarm.ON,
            reason=METER_DECIDES,
            text=self.env._("Supply on: this meter cuts and restores itself by its own balance."),
            changed=old_relay != alarm.ON,
        )
        return new_state._replace(relay=alarm.ON, reason=METER_DECIDES), decision

    @api.model
    def _stored_alarm(self, row):
        """What the meter of an :meth:`_alarm_rows` row holds of its alarms."""
        return alarm.StoredAlarm(
            row["meter_id"],
            row["account_id"],
            row["alarm_state"],
            row["alarm_level"],
            row["desired_relay_state"],
            row["desired_relay_reason"],
            row["alarm_wake_at"],
            row["alarm_own_thresholds"],
        )

    def _store_alarm_states(self, states):
        """The machine's new states ``[(meter id, state JSON, wake-up time)]`` (in SQL: the
        machine's own memory, no business field)."""
        if not states:
            return
        execute_values(
            self.env.cr._obj,
            """
            UPDATE prepaid_meter m SET alarm_state = v.state, alarm_wake_at = v.wake
              FROM (VALUES %s) AS v(id, state, wake) WHERE m.id = v.id
            """,
            [(meter_id, json.dumps(state), wake) for meter_id, state, wake in states],
            template="(%s, %s::jsonb, %s::timestamp)",
        )
        self.browse([meter_id for meter_id, _state, _wake in states]).invalidate_recordset(
            ["alarm_state", "alarm_wake_at"]
        )

    def _store_alarm_levels(self, levels):
        """B8: the new alarm levels ``{(former, new level): meter ids}``, written through the
        ORM (chatter tracking, other add-ons' ``write``), one write per new level, and each
        change recorded in the alarm history."""
        by_level = {}
        for (_former, level), meter_ids in levels.items():
            by_level.setdefault(level, []).extend(meter_ids)
        meters = self.sudo()
        for level, meter_ids in by_level.items():
            meters.browse(meter_ids).write({"alarm_level": level})
        self._log_alarm_level_changes(levels)

    def _check_overload(self):
        """B8: a meter whose latest reading shows more power than its overload limit trips
        (an ``overload`` event, which cuts supply until a manager resets it).  Both are on
        the primary side: readings are stored scaled by the meter's CT and PT ratios."""
        if not self.ids:
            return self.browse()
        self.flush_model(["overload_limit", "overload_at"])
        self.env["prepaid.meter.latest"].flush_model(["last_power", "last_reading_at"])
        query = SQL(
            """
            SELECT m.id AS meter_id, l.last_reading_at, l.last_power, m.overload_limit
              FROM prepaid_meter m
              JOIN prepaid_meter_latest l ON l.id = m.latest_id
             WHERE m.id = ANY(%s) AND m.overload_limit > 0 AND l.last_power > m.overload_limit
               AND l.last_reading_at IS NOT NULL
               AND (m.overload_at IS NULL OR l.last_reading_at > m.overload_at)
            """,
            self.ids,
        )
        tripped = self.browse()
        for row in self.env.execute_query_dict(query):
            meter = self.browse(row["meter_id"])
            meter._log_event(
                "overload",
                reason=self.env._(
                    "Power %(power)s kW (primary side) above the limit of %(limit)s kW.",
                    power=row["last_power"],
                    limit=row["overload_limit"],
                ),
                event_at=row["last_reading_at"],
                source="device",
            )
            tripped |= meter
        return tripped

    def action_overload_reset(self):
        """A manager resets an overload trip: the balance decides the supply again."""
        self._check_manager()
        meters = self.filtered(lambda m: m.overload_at)
        now = fields.Datetime.now()
        meters.write({"overload_reset_at": now})
        meters._log_event("overload_reset", reason=self.env._("Overload reset by a manager."))
        return True

    @api.model
    def _cron_alarm_wake(self):
        """End reminder cuts (and any other timed decision) when their time comes."""
        meters = self.search([("alarm_wake_at", "<=", fields.Datetime.now())])
        meters._evaluate_alarms()
        return meters

    # === SETTINGS HELD BY THE DEVICE (B1, B12) === #
    def _touch_device_settings(self):
        """Ask for the prices and thresholds to be issued to these meters (again)."""
        if self.ids:
            self.flush_recordset()
            self.env.cr.execute(
                "UPDATE prepaid_meter SET device_settings_at = %s WHERE id = ANY(%s)",
                [fields.Datetime.now(), self.ids],
            )
            self.invalidate_recordset(["device_settings_at"])

    def _effective_tariff(self):
        self.ensure_one()
        tariff = self.tariff_id or self.account_id.tariff_id
        return tariff if tariff.utility == self.utility else tariff.browse()

    def _device_settings(self, at=None):
        """What a meter that prices locally must hold at ``at`` (now): the prices of the
        tariff version in force (per band and ladder step), the ladder limits, the
        time-of-use periods of the season in force, the alarm thresholds and the overload
        limit; amounts as text. meter_gateway turns it into a price/thresholds command."""
        self.ensure_one()
        at = at or fields.Datetime.now()
        own = self.alarm_own_thresholds
        source = self if own else self.account_id
        settings = {
            "alarm1": f"{source.alarm1_threshold:.4f}" if source else None,
            "alarm2": f"{source.alarm2_threshold:.4f}" if source else None,
            "overload_kw": self._device_overload_limit(),
            "tariff": None,
        }
        tariff = self._effective_tariff()
        if tariff:
            settings["tariff"] = self._device_tariff(tariff, tariff._local(at))
        return settings

    def _device_overload_limit(self):
        """The overload limit as the meter compares it with the power it measures itself,
        behind its transformers: the primary-side limit / (CT ratio × PT ratio); text, or
        None: no limit."""
        self.ensure_one()
        if not self.overload_limit:
            return None
        limit = meter_side_limit(
            Decimal(f"{self.overload_limit:.4f}"), Decimal(str(self.multiplier or 1))
        )
        return f"{limit:.4f}"

    @api.model
    def _device_tariff(self, tariff, local):
        """The prices a meter pricing locally holds: the version of ``tariff`` in force at
        ``local`` (its prices per band and step, ladder limits), the time-of-use periods of
        the season in force."""
        version = tariff._compiled().version_at(local)
        periods = []
        if version.tou is not None:
            seasons = sorted(version.tou.seasons, key=lambda s: (s.start_month, s.start_day))
            today = (local.month, local.day)
            current = [s for s in seasons if (s.start_month, s.start_day) <= today]
            season = (current or seasons)[-1]
            periods = [
                [seg.start.strftime("%H:%M"), seg.end.strftime("%H:%M"), seg.band]
                for seg in season.segments
            ]
        return {
            "name": tariff.name,
            "version": version.code,
            "valid_from": version.valid_from.isoformat(),
            "step_limits": [str(limit) for limit in version.step_limits],
            "prices": {
                band: [str(price) for price in prices] for band, prices in version.prices.items()
            },
            "periods": periods,
        }

    def action_issue_settings(self):
        """B12 price issuance: the selected meters get their prices and thresholds again."""
        self._touch_device_settings()
        return True

    # === BATCH ACTIONS (B12) === #
    def _check_manager(self):
        if not self.env.user.has_group("prepaid_meter.group_prepaid_manager"):
            raise AccessError(self.env._("Only a prepaid manager may force supply or protect."))

    def action_protect(self):
        self._check_manager()
        meters = self.filtered(lambda m: not m.protect_mode)
        meters.write({"protect_mode": True})
        meters._log_event("protect_on", reason=self.env._("Protect mode set by a manager."))
        return True

    def action_unprotect(self):
        self._check_manager()
        meters = self.filtered("protect_mode")
        meters.write({"protect_mode": False})
        meters._log_event("protect_off", reason=self.env._("Protect mode lifted by a manager."))
        return True

    def action_force_on(self):
        self._check_manager()
        self.write({"forced_relay": "on"})
        return True

    def action_force_off(self):
        self._check_manager()
        self.write({"forced_relay": "off"})
        return True

    def action_restore_prepaid(self):
        """Back to prepaid mode: no forced state, the balance decides."""
        self._check_manager()
        self.write({"forced_relay": False})
        self._evaluate_alarms()
        return True

    def _export_state_rows(self):
        """B12: the current state of each meter, one row each (header first)."""
        fields_ = [
            "name",
            "address",
            "site_id",
            "unit_id",
            "tenant_id",
            "status",
            "alarm_level",
            "account_balance",
            "desired_relay_state",
            "desired_relay_reason",
            "actual_relay_state",
            "protect_mode",
            "forced_relay",
            "tariff_id",
            "last_reading_at",
            "last_total",
            "last_power",
            "last_contact_at",
            "connection_state",
        ]
        defs = self.fields_get(fields_, ["string", "type", "selection"])
        rows = [[defs[name]["string"] for name in fields_]]
        for meter in self:
            row = []
            for name in fields_:
                value, kind = meter[name], defs[name]["type"]
                if kind == "many2one":
                    value = value.display_name or ""
                elif kind == "selection":
                    value = dict(defs[name]["selection"]).get(value, "")
                elif kind == "datetime":
                    value = fields.Datetime.to_string(value) if value else ""
                row.append(value)
            rows.append(row)
        return rows

    def action_export_states(self):
        """B12: export the selected meters' current states to an Excel file."""
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet(self.env._("Meter States"))
        bold = workbook.add_format({"bold": True})
        for index, row in enumerate(self._export_state_rows()):
            sheet.write_row(index, 0, row, bold if index == 0 else None)
        sheet.freeze_panes(1, 0)
        workbook.close()
        stamp = fields.Datetime.now().strftime("%Y%m%d-%H%M%S")
        attachment = self.env["ir.attachment"].create(
            {
                "name": f"meter-states-{stamp}.xlsx",
                "raw": buffer.getvalue(),
                "mimetype": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{attachment.id}?download=true",
            "target": "self",
        }
