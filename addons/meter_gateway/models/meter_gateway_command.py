"""G4: the command queue.

A command asks one meter to do one thing (relay on/off, protect, price, thresholds, time sync,
zeroing, credit).  Its life: queued -> sent -> confirmed / failed, or superseded (a newer
command of the same meter and purpose replaced it) or expired (its validity ran out).  Every
state change goes through :meth:`_update_state`, which skips records already there and writes
the reason of the decision in the command's log (R12).
"""

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, format_amount

from odoo.addons.prepaid_meter.error_texts import error_text
from odoo.addons.prepaid_meter.utils import selection_label

from prepaid_core import tokens

from ..const import (
    ACTIVE_STATES,
    COMMAND_KINDS,
    COMMAND_ORIGINS,
    COMMAND_STATES,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RECONCILE_COOLDOWN_MINUTES,
    MAX_CONFIRMED_CORRECTIONS,
    NEVER_SUPERSEDED,
    RELAY_KIND_STATE,
)

_logger = logging.getLogger(__name__)


class MeterGatewayCommand(models.Model):
    _name = "meter.gateway.command"
    _description = "Meter Command"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    meter_id = fields.Many2one(
        "prepaid.meter", required=True, index=True, ondelete="cascade", check_company=True
    )
    gateway_id = fields.Many2one(related="meter_id.gateway_id", store=True, index=True)
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    kind = fields.Selection(
        [(kind, label) for kind, (label, _purpose, _life) in COMMAND_KINDS.items()],
        required=True,
    )
    purpose = fields.Char(
        compute="_compute_purpose",
        store=True,
        help="What the command decides; a newer command with the same purpose for the same "
        "meter supersedes the older ones (credit deliveries excepted).",
    )
    payload = fields.Json(help="Values the command carries (price, thresholds, amount, ...).")
    token_secret = fields.Json(
        string="Credit Token",
        readonly=True,
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="The credit token of a credit delivery (text and keypad forms): whoever holds "
        "it can credit the meter once, so only managers read it; the device API gives it "
        "to the gateway that delivers the command.",
    )
    origin = fields.Selection(COMMAND_ORIGINS, default="manual", required=True)
    state = fields.Selection(COMMAND_STATES, default="queued", required=True, index=True)
    reason = fields.Char(help="Why the command was created.")
    state_reason = fields.Char(readonly=True, help="Reason of the last state change.")
    reason_log = fields.Text(readonly=True, help="Every decision taken on the command, and why.")
    attempts = fields.Integer(readonly=True)
    max_attempts = fields.Integer(default=DEFAULT_MAX_ATTEMPTS)
    last_error = fields.Char(readonly=True)
    queued_at = fields.Datetime(default=fields.Datetime.now, readonly=True, index=True)
    sent_at = fields.Datetime(readonly=True)
    confirmed_at = fields.Datetime(readonly=True)
    done_at = fields.Datetime(readonly=True, help="When the command reached a final state.")
    expires_at = fields.Datetime(required=True, default=lambda self: self._default_expires_at())
    superseded_by_id = fields.Many2one(
        "meter.gateway.command", readonly=True, index="btree_not_null"
    )
    credit_id = fields.Many2one(
        "prepaid.meter.credit",
        string="Meter Credit",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
        help="The credit sold that this delivery carries: one command per credit.",
    )

    _credit_uniq = models.UniqueIndex(
        "(credit_id) WHERE credit_id IS NOT NULL", "A meter credit is delivered by one command."
    )

    _active_idx = models.Index("(meter_id, purpose) WHERE state IN ('queued', 'sent')")
    # the reconciler looks for the last price/thresholds command of a meter
    _settings_idx = models.Index("(meter_id, kind, id) WHERE kind IN ('price', 'thresholds')")

    # === COMPUTES === #
    @api.model
    def _default_expires_at(self):
        kind = self.env.context.get("default_kind")
        minutes = COMMAND_KINDS[kind][2] if kind in COMMAND_KINDS else 60
        return fields.Datetime.now() + timedelta(minutes=minutes)

    @api.depends("kind")
    def _compute_purpose(self):
        for command in self:
            command.purpose = COMMAND_KINDS[command.kind][1] if command.kind else False

    @api.depends("kind", "meter_id.name")
    def _compute_name(self):
        labels = dict(self._fields["kind"]._description_selection(self.env))
        for command in self:
            command.name = f"{labels.get(command.kind, '')} / {command.meter_id.name or ''}"

    # === CRUD === #
    @api.model_create_multi
    def create(self, vals_list):
        now = fields.Datetime.now()
        for vals in vals_list:
            kind = vals.get("kind")
            if kind in COMMAND_KINDS and "expires_at" not in vals:
                vals["expires_at"] = now + timedelta(minutes=COMMAND_KINDS[kind][2])
            vals.setdefault("reason_log", self._log_line("queued", vals.get("reason") or ""))
        commands = super().create(vals_list)
        commands._mint_credit_tokens()
        commands._supersede_older()
        return commands

    def _mint_credit_tokens(self):
        """G6/R10: a credit delivery carries a token bound to its meter, with the meter's
        next sequence number (taken under the meter's row lock, so two tokens issued in the
        same minute are distinct and strictly ordered).  The payload gets the amount and the
        sequence; the token itself, a bearer of credit, goes to ``token_secret`` (managers
        only; the device API hands it to the gateway that delivers it): the 64-character
        text form (MQTT, Bluetooth) and, when the amount fits, the 20-digit keypad form of
        the same sequence (either form is accepted once)."""
        for command in self.filtered(lambda c: c.kind == "credit"):
            payload = dict(command.payload or {})
            if command.sudo().token_secret or payload.get("token"):
                continue
            try:
                amount = Decimal(str(payload.get("amount")))
            except InvalidOperation:
                amount = Decimal(0)
            meter = command.meter_id.sudo()
            if not amount.is_finite() or amount <= 0 or not meter.address:
                raise UserError(
                    self.env._(
                        "A credit delivery needs a positive amount and a meter with an "
                        "address (meter %(meter)s, amount %(amount)s).",
                        meter=meter.display_name,
                        amount=payload.get("amount"),
                    )
                )
            key = meter.company_id._prepaid_vending_key()
            sequence = meter._next_token_sequence()
            try:
                binary = tokens.issue_token(
                    key, meter.address, tokens.TokenKind.CREDIT, amount, sequence
                )
            except tokens.TokenError as exc:
                raise UserError(
                    self.env._(
                        "Cannot issue the token: %s",
                        error_text(self.env, exc, meter.company_id.currency_id),
                    )
                ) from exc
            payload.update(amount=str(amount), sequence=sequence)
            secret = {"token": tokens.token_to_text(binary)}
            try:
                secret["keypad"] = tokens.issue_keypad_token(
                    key, meter.address, tokens.TokenKind.CREDIT, amount, sequence
                )
            except tokens.TokenError as exc:
                # the amount does not fit the keypad form: the binary form only
                _logger.info("command %s: no keypad token (%s)", command.id, exc)
            command.payload = payload
            command.sudo().token_secret = secret
            command._log_decision(
                self.env._(
                    "token %(seq)s issued for %(amount)s",
                    seq=sequence,
                    amount=format_amount(self.env, float(amount), meter.company_id.currency_id),
                )
            )

    def _credits_in_order(self):
        """G6: the commands of ``self`` (about to be handed to a gateway) less
        the credit deliveries that must wait, and ``{command id: after_sequence}`` for the
        credits kept.

        A meter accepts only a token newer than the last it accepted: a meter's credit
        token goes out only together with every older credit token of that meter still to
        be delivered (queued or sent), and ``after_sequence`` names the one the meter must
        hold before it (0: none), so the gateway writes them in order and stops at the
        first that is not applied.  See ``docs/tokens.md``."""
        credits = self.filtered(lambda c: c.kind == "credit")
        if not credits:
            return self, {}
        pending = self.sudo().search(
            [
                ("meter_id", "in", credits.meter_id.ids),
                ("kind", "=", "credit"),
                ("state", "in", ACTIVE_STATES),
            ]
        )
        by_meter = {}
        for command in pending | credits:
            by_meter.setdefault(command.meter_id.id, []).append(command)
        held, after = self.browse(), {}
        for commands in by_meter.values():
            previous, waiting = 0, False
            for command in sorted(commands, key=_token_sequence):
                if waiting or command not in self:
                    waiting = True  # an older token still to be delivered is not handed out
                    held |= command & self
                    continue
                after[command.id] = previous
                previous = _token_sequence(command)
        return self - held, after

    # === STATE MACHINE === #
    @api.model
    def _log_line(self, state, reason):
        return f"{fields.Datetime.to_string(fields.Datetime.now())} {state}: {reason}"

    def _update_state(self, allowed_states, target_state, reason, extra_vals=None):
        """Move the commands in ``allowed_states`` to ``target_state`` and log ``reason``.

        Records already in ``target_state`` are skipped (idempotent), records in another
        state are left alone with a warning.  Returns the records that changed."""
        if isinstance(allowed_states, str):
            allowed_states = (allowed_states,)
        to_change = self.filtered(lambda c: c.state in allowed_states)
        refused = self - to_change - self.filtered(lambda c: c.state == target_state)
        for command in refused:
            _logger.info(
                "command %s: %s -> %s refused (%s)", command.id, command.state, target_state, reason
            )
        now = fields.Datetime.now()
        vals = dict(extra_vals or {}, state=target_state, state_reason=reason)
        if target_state == "sent":
            vals["sent_at"] = now
        elif target_state == "confirmed":
            vals["confirmed_at"] = vals["done_at"] = now
        elif target_state in ("failed", "superseded", "expired", "cancelled"):
            vals["done_at"] = now
        for command in to_change:
            command.write(
                dict(
                    vals,
                    reason_log=(command.reason_log or "")
                    + "\n"
                    + self._log_line(target_state, reason),
                )
            )
        to_change._settle_credits(target_state, reason)
        return to_change

    def _settle_credits(self, state, reason):
        """B13/R12: the credits these deliveries carry follow them: applied when the meter
        confirmed, still issued with the reason when the delivery failed or expired."""
        credits = self.sudo().credit_id
        if state == "confirmed":
            credits._mark_applied(reason)
        elif state in ("failed", "expired"):
            credits.filtered(lambda c: c.state == "issued").write(
                {
                    "reason": self.env._(
                        "delivery %(state)s: %(reason)s",
                        state=selection_label(self, "state", state),
                        reason=reason,
                    )
                }
            )

    def _log_decision(self, reason):
        """R12: record a decision that leaves the state as it is (retry, late answer)."""
        for command in self:
            command.reason_log = (
                (command.reason_log or "") + "\n" + self._log_line(command.state, reason)
            )

    def _supersede_older(self):
        """G4/R6: a newer command for the same meter and purpose supersedes the active older
        ones.  Credit deliveries are never superseded: each carries value."""
        # a system decision: operators may queue commands without write access to others
        for command in self.sudo().filtered(lambda c: c.purpose not in NEVER_SUPERSEDED):
            older = command.search(
                [
                    ("meter_id", "=", command.meter_id.id),
                    ("purpose", "=", command.purpose),
                    ("state", "in", ACTIVE_STATES),
                    ("id", "<", command.id),
                ]
            )
            older._update_state(
                ACTIVE_STATES,
                "superseded",
                self.env._(
                    "superseded by newer command #%(id)s (%(kind)s, %(reason)s)",
                    id=command.id,
                    kind=selection_label(command, "kind", command.kind),
                    reason=command.reason or command.origin,
                ),
                extra_vals={"superseded_by_id": command.id},
            )

    def _mark_sent(self):
        """The command goes on the wire (one more attempt)."""
        for command in self:
            command._update_state(
                ("queued", "sent"),
                "sent",
                self.env._("attempt %s", command.attempts + 1),
                extra_vals={"attempts": command.attempts + 1},
            )

    def _mark_result(self, success, reason, error=None):
        """The device answered (or a read-back told): confirm, retry or fail.

        A command superseded while in flight keeps its state; the answer is logged (R7)."""
        for command in self:
            if command.state not in ACTIVE_STATES:
                command._log_decision(
                    self.env._(
                        "late answer ignored (%(ok)s): %(reason)s",
                        ok=selection_label(command, "state", "confirmed" if success else "failed"),
                        reason=reason,
                    )
                )
                continue
            if success:
                command._update_state(ACTIVE_STATES, "confirmed", reason)
                if command.kind == "time_sync" and command.origin == "drift":
                    # G3: did it correct the clock?  The next poll checks it again
                    command.meter_id.sudo().clock_checked_at = False
            elif command.attempts >= command.max_attempts:
                command._update_state(
                    ACTIVE_STATES,
                    "failed",
                    self.env._(
                        "%(reason)s; giving up after %(n)s attempts",
                        reason=reason,
                        n=command.attempts,
                    ),
                    extra_vals={"last_error": error or reason},
                )
            else:
                command._update_state(
                    ACTIVE_STATES,
                    "queued",
                    self.env._("%(reason)s; retry %(n)s", reason=reason, n=command.attempts + 1),
                    extra_vals={"last_error": error or reason},
                )

    @api.model
    def _expire(self):
        expired = self.search(
            [("state", "in", ACTIVE_STATES), ("expires_at", "<", fields.Datetime.now())]
        )
        for command in expired:
            command._update_state(
                ACTIVE_STATES,
                "expired",
                self.env._("validity ended at %s", command.expires_at),
            )
        return expired

    # === BUSINESS METHODS === #
    @api.model
    def _queue(self, meters, kind, reason, payload=None, origin="manual"):
        """Queue ``kind`` for each meter; returns the commands (older ones superseded)."""
        if kind not in COMMAND_KINDS:
            raise UserError(self.env._("Unknown command kind %s.", kind))
        return self.create(
            [
                {
                    "meter_id": meter.id,
                    "kind": kind,
                    "payload": payload,
                    "reason": reason,
                    "origin": origin,
                }
                for meter in meters
            ]
        )

    @api.model
    def _issue_device_settings(self, meters=None, gateway=None):
        """B1/B12: meters that price locally (their model holds prices, or they keep their
        own balance: B13) get their prices
        and thresholds when what they must hold changed since the last issuance
        (``device_settings_at``, set by the billing add-on: tariff, account or meter
        thresholds, Issue Prices and Thresholds): one ``price`` and one ``thresholds``
        command, each superseding the older ones of its purpose; a value already on its
        way (an active command with the same payload) is not queued again, a value the
        meter confirmed earlier is (an operator asked to issue it again).  Returns the new
        commands."""
        Meter = self.env["prepaid.meter"].sudo()
        Meter.flush_model(
            ["device_settings_at", "device_settings_issued_at", "state", "billing_mode"]
        )
        self.env["prepaid.meter.model"].flush_model(["holds_settings"])
        query = """
            SELECT m.id FROM prepaid_meter m
              JOIN prepaid_meter_model mm ON mm.id = m.model_id
                                         AND (mm.holds_settings OR m.billing_mode = 'meter')
             WHERE m.state = 'in_service' AND m.gateway_id IS NOT NULL
               AND m.device_settings_at IS NOT NULL
               AND (m.device_settings_issued_at IS NULL
                    OR m.device_settings_issued_at <= m.device_settings_at)
        """
        params = []
        if meters is not None:
            query += " AND m.id = ANY(%s)"
            params.append(meters.ids)
        if gateway is not None:
            query += " AND m.gateway_id = %s"
            params.append(gateway.id)
        self.env.cr.execute(query, params)
        due = Meter.browse(row[0] for row in self.env.cr.fetchall())
        if not due:
            return self
        last = {}
        for command in self.sudo().search(
            [
                ("meter_id", "in", due.ids),
                ("kind", "in", ("price", "thresholds")),
                ("state", "in", ACTIVE_STATES),
            ],
            order="id",
        ):
            last[command.meter_id.id, command.kind] = command.payload
        vals_list = []
        for meter in due:
            settings = meter._device_settings() or {}
            for kind, payload in _settings_payloads(settings).items():
                if payload is None or last.get((meter.id, kind)) == payload:
                    continue
                vals_list.append(
                    {
                        "meter_id": meter.id,
                        "kind": kind,
                        "payload": payload,
                        "origin": "billing",
                        "reason": self.env._("prices and thresholds changed"),
                    }
                )
        due.write({"device_settings_issued_at": fields.Datetime.now()})
        return self.sudo().create(vals_list)

    @api.model
    def _cron_issue_device_settings(self):
        return self._issue_device_settings()

    @api.model
    def _next_for_meters(self, meters):
        """The queued commands to send now, oldest first (one per purpose: the newest)."""
        return self.search([("meter_id", "in", meters.ids), ("state", "=", "queued")], order="id")

    @api.model
    def _reconcile_cooldown(self):
        param = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("meter_gateway.reconcile_cooldown_minutes")
        )
        return timedelta(minutes=int(param or DEFAULT_RECONCILE_COOLDOWN_MINUTES))

    @api.model
    def _cron_reconcile(self, meters=None):
        """G4/R7/R9: make the actual relay state follow the desired one.

        For every meter in service whose known actual relay differs from the desired one,
        queue one corrective command, unless an active command already asks for the desired
        state or a corrective command for the same state was queued within the cooldown (no
        storm after an outage; a new intent is not delayed).  Expires overdue commands
        first, then brings device settings back in line (:meth:`_reconcile_device_settings`).
        Every decision is logged (R12)."""
        self._expire()
        self._supersede_contradicting()
        return self._reconcile_relays(meters) | self._reconcile_device_settings(meters)

    @api.model
    def _reconcile_relays(self, meters=None):
        """G4, R7: one corrective command per mismatched meter (cooldown, R9). A meter that
        keeps its own balance (B13) and is wanted on is left alone: it cuts and restores
        itself by its balance; only a manager's *off* is enforced on it."""
        domain = [
            ("relay_mismatch", "=", True),
            ("actual_relay_state", "in", ("on", "off")),
            ("connection_state", "!=", "lost"),
            "|",
            ("billing_mode", "=", "server"),
            ("desired_relay_state", "=", "off"),
        ]
        if meters is not None:
            domain.append(("id", "in", meters.ids))
        mismatched = self.env["prepaid.meter"].search(domain)
        if not mismatched:
            return self
        since = fields.Datetime.now() - self._reconcile_cooldown()
        recent = self.search(
            [
                ("meter_id", "in", mismatched.ids),
                ("purpose", "=", "relay"),
                "|",
                ("state", "in", ACTIVE_STATES),
                "&",
                ("origin", "=", "reconcile"),
                ("queued_at", ">=", since),
            ]
        )
        by_meter = {}
        for command in recent:
            by_meter.setdefault(command.meter_id.id, self.browse())
            by_meter[command.meter_id.id] |= command
        vals_list = []
        for meter in mismatched:
            kind = f"relay_{meter.desired_relay_state}"
            existing = by_meter.get(meter.id, self.browse())
            active = existing.filtered(lambda c: c.state in ACTIVE_STATES)
            if active.filtered(lambda c, kind=kind: c.kind == kind):
                continue  # already on its way
            if self._in_cooldown(existing, kind, since):
                _logger.info("reconcile: meter %s in cooldown", meter.id)
                continue
            vals_list.append(
                {
                    "meter_id": meter.id,
                    "kind": kind,
                    "origin": "reconcile",
                    "reason": self.env._(
                        "reconciliation: actual relay %(actual)s, desired %(desired)s (%(why)s)",
                        actual=selection_label(
                            meter, "actual_relay_state", meter.actual_relay_state
                        ),
                        desired=selection_label(
                            meter, "desired_relay_state", meter.desired_relay_state
                        ),
                        why=meter.desired_relay_reason or "-",
                    ),
                }
            )
        commands = self.create(vals_list)
        commands._send_soon()
        return commands

    @api.model
    def _in_cooldown(self, commands, kind, since):
        """R9: a corrective command of ``kind`` queued since ``since`` that did not end
        confirmed (failed, expired: an outage) holds the next one back until the cooldown
        ends.  A confirmed one does not: the meter did as told and changed since (a reset, a
        hand on its switch), and is corrected at once, unless it reverted
        ``MAX_CONFIRMED_CORRECTIONS`` times within the cooldown already."""
        corrections = commands.filtered(
            lambda c: c.origin == "reconcile" and c.kind == kind and c.queued_at >= since
        )
        confirmed = corrections.filtered(lambda c: c.state == "confirmed")
        return bool(corrections - confirmed) or len(confirmed) >= MAX_CONFIRMED_CORRECTIONS

    @api.model
    def _reconcile_device_settings(self, meters=None):
        """G4/R9: a meter that holds its prices (*Prices Held by the Meter*) whose last
        ``price`` or ``thresholds`` command ended expired or failed keeps stale settings:
        it gets a new command with what it must hold now (origin Reconciliation), unless
        the meter is lost or a re-issue of the same kind was queued within the backoff:
        the reconciliation cooldown, doubled after each re-issue that did not end
        confirmed (at most 64x), so a meter that keeps refusing costs one command now and
        then, never a storm.  A command on its way or a confirmed last one is never sent
        again.  Returns the new commands."""
        ended = self._ended_device_settings(meters)
        if not ended:
            return self
        history = self.search(
            [
                ("meter_id", "in", list({meter_id for meter_id, _kind in ended})),
                ("kind", "in", ("price", "thresholds")),
                ("state", "in", ("confirmed", "expired", "failed")),
            ],
            order="id desc",
        )
        now, cooldown = fields.Datetime.now(), self._reconcile_cooldown()
        vals_list, reissued = [], self
        for (meter_id, kind), last in ended.items():
            if self._reconcile_in_backoff(history, meter_id, kind, now, cooldown):
                _logger.info("reconcile: %s of meter %s in backoff", kind, meter_id)
                continue
            vals = last._reconcile_vals()
            if vals:
                vals_list.append(vals)
                reissued |= last
        commands = self.create(vals_list)
        for command, last in zip(commands, reissued, strict=True):
            last._log_decision(self.env._("issued again by reconciliation as #%s", command.id))
        commands._send_soon()
        return commands

    def _ended_device_settings(self, meters=None):
        """{(meter id, kind): last command} of in-service, reachable meters that hold
        their settings and whose last ``price`` / ``thresholds`` command ended expired or
        failed (of ``meters`` only, if given)."""
        self.env["prepaid.meter"].flush_model(
            ["device_settings_at", "device_settings_issued_at", "state", "billing_mode"]
        )
        self.env["prepaid.meter.latest"].flush_model(["connection_state"])
        self.env["prepaid.meter.model"].flush_model(["holds_settings"])
        self.flush_model(["meter_id", "kind", "state"])
        only = SQL("AND c.meter_id = ANY(%s)", meters.ids) if meters is not None else SQL()
        rows = self.env.execute_query_dict(
            SQL(
                """
                SELECT c.meter_id, c.kind, c.id AS command_id
                  FROM meter_gateway_command c
                  JOIN prepaid_meter m ON m.id = c.meter_id
                  JOIN prepaid_meter_model mm ON mm.id = m.model_id
                                         AND (mm.holds_settings OR m.billing_mode = 'meter')
                  JOIN prepaid_meter_latest l ON l.id = m.latest_id
                 WHERE c.kind IN ('price', 'thresholds') AND c.state IN ('expired', 'failed') %s
                   AND NOT EXISTS (SELECT 1 FROM meter_gateway_command n
                                    WHERE n.meter_id = c.meter_id AND n.kind = c.kind
                                      AND n.id > c.id)
                   AND m.state = 'in_service' AND m.gateway_id IS NOT NULL
                   AND l.connection_state != 'lost'
                   AND m.device_settings_at IS NOT NULL
                """,
                only,
            )
        )
        return {(row["meter_id"], row["kind"]): self.browse(row["command_id"]) for row in rows}

    @api.model
    def _reconcile_in_backoff(self, history, meter_id, kind, now, cooldown):
        """Whether the newest re-issue of ``kind`` for the meter since it last confirmed
        one (``history``: its commands newest first) is younger than the backoff: the
        cooldown doubled per earlier re-issue, at most 64x."""
        retries = []
        for command in history:
            if command.meter_id.id != meter_id or command.kind != kind:
                continue
            if command.state == "confirmed":
                break
            if command.origin == "reconcile":
                retries.append(command)
        if not retries:
            return False
        return retries[0].queued_at > now - cooldown * 2 ** min(len(retries) - 1, 6)

    def _reconcile_vals(self):
        """The command re-issuing this ended one with what the meter must hold now, or
        None when it must hold nothing of that kind."""
        self.ensure_one()
        meter = self.meter_id.sudo()
        payload = _settings_payloads(meter._device_settings() or {})[self.kind]
        if payload is None:
            return None
        return {
            "meter_id": meter.id,
            "kind": self.kind,
            "payload": payload,
            "origin": "reconcile",
            "reason": self.env._(
                "reconciliation: the last %(kind)s command #%(id)s ended %(state)s "
                "(%(why)s); the meter may hold stale settings",
                kind=selection_label(self, "kind", self.kind),
                id=self.id,
                state=selection_label(self, "state", self.state),
                why=self.state_reason or "-",
            ),
        }

    def _send_soon(self):
        """Collectors holding these commands are polled now rather than at their next
        scheduled poll (4G meters' and collectors' runners fetch commands every few seconds
        anyway)."""
        collectors = self.gateway_id.filtered(
            lambda g: g.gateway_type == "tcp_collector" and not g.served_by_runner
        )
        if not collectors:
            return
        collectors.sudo().write({"next_poll_at": fields.Datetime.now()})
        cron = self.env.ref("meter_gateway.ir_cron_meter_gateway_poll", False)
        if cron and cron.active:
            cron.sudo()._trigger()

    @api.model
    def _supersede_contradicting(self, meters=None, gateway=None):
        """Active relay commands that no longer ask for the meter's desired state never run:
        they end superseded, with the reason (no stale command after a newer intent).
        ``meters`` or ``gateway``: only the commands of those meters, of that gateway."""
        domain = [("purpose", "=", "relay"), ("state", "in", ACTIVE_STATES)]
        if meters is not None:
            domain.append(("meter_id", "in", meters.ids))
        if gateway is not None:
            domain.append(("gateway_id", "=", gateway.id))
        stale = self.search(domain).filtered(
            lambda c: c._relay_target() != c.meter_id.desired_relay_state
        )
        for command in stale:
            command._update_state(
                ACTIVE_STATES,
                "superseded",
                self.env._(
                    "desired relay is now %(state)s (%(why)s)",
                    state=selection_label(
                        command.meter_id,
                        "desired_relay_state",
                        command.meter_id.desired_relay_state,
                    ),
                    why=command.meter_id.desired_relay_reason or "-",
                ),
            )
        return stale

    def _relay_target(self):
        self.ensure_one()
        return RELAY_KIND_STATE.get(self.kind)


def _token_sequence(command):
    """The sequence number of a credit delivery's token (0 when it has none)."""
    sequence = (command.payload or {}).get("sequence") if isinstance(command.payload, dict) else 0
    return sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else 0


def _settings_payloads(settings):
    """``_device_settings()`` as command payloads: ``price`` carries the meter's one price
    (the flat band's first step, else the first band's: what a meter with one price
    register holds) and the whole tariff for meters that hold more; ``thresholds`` the
    alarm amounts and the overload limit.  ``None`` when nothing decides it."""
    payloads = {"price": None, "thresholds": None}
    tariff = settings.get("tariff")
    prices = (tariff or {}).get("prices") or {}
    if prices:
        band = "flat" if prices.get("flat") else sorted(prices)[0]
        payloads["price"] = {"price": prices[band][0], "tariff": tariff}
    if settings.get("alarm1") is not None and settings.get("alarm2") is not None:
        payloads["thresholds"] = {
            "alarm1": settings["alarm1"],
            "alarm2": settings["alarm2"],
            "overload_kw": settings.get("overload_kw"),
        }
    return payloads
