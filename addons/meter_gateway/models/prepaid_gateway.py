"""G1/G5: a gateway's settings, its device API key and its contact.

The gateway key is shown once and never stored: Odoo keeps what checks it (its SHA-256 and
the public key of the signing key derived from it, ``prepaid_core.device_auth``).  What the
device API does with a gateway's messages is in ``prepaid_gateway_device_api.py``, the
scheduled poll of a collector in ``prepaid_gateway_poll.py``, its time sync in
``prepaid_gateway_time_sync.py``.
"""

import hmac
import secrets
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from prepaid_core import device_auth

from ..const import ACTIVE_STATES

#: a collector whose gateway runner was heard from within this time is polled by the runner
#: only: the scheduled action (and Poll Now) leave it alone (the runner calls every few
#: seconds; its contact is written at most once a minute)
RUNNER_GRACE_MINUTES = 5
#: device API calls of a gateway runner that say nothing of the collector itself
RUNNER_ENDPOINTS = frozenset(
    {"config", "commands/fetch", "commands/ack", "runner/report", "dead_letters"}
)


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    poll_interval = fields.Integer(
        string="Poll Every (minutes)", default=30, help="From 1 to 1440 minutes."
    )
    poll_timeout = fields.Float(
        string="Answer Timeout (s)", default=1.0, help="How long to wait for one meter answer."
    )
    poll_retries = fields.Integer(default=2, help="Retries of a read that got no answer.")
    lost_after_failures = fields.Integer(
        default=3, help="Polls in a row without answer after which a meter or gateway is lost."
    )
    meter_password = fields.Char(
        default="02000000",
        groups="prepaid_meter.group_prepaid_manager",
        help="DL/T645 level+password.",
    )
    operator_code = fields.Char(default="00000000", groups="prepaid_meter.group_prepaid_manager")
    meter_utc_offset = fields.Integer(
        string="Meters' UTC Offset (minutes)",
        default=480,
        help="Meters keep local time; relay commands carry a validity in it.",
    )
    next_poll_at = fields.Datetime(readonly=True, copy=False)
    last_poll_at = fields.Datetime(readonly=True, copy=False)
    last_poll_seconds = fields.Float(readonly=True, copy=False, digits=(10, 2))
    last_poll_summary = fields.Char(readonly=True, copy=False)
    poll_failures = fields.Integer(readonly=True, copy=False)
    poll_lease_until = fields.Datetime(
        readonly=True,
        copy=False,
        help="A poll is running until then: another one (scheduler, Poll Now) skips the gateway.",
    )
    runner_seen_at = fields.Datetime(
        string="Runner Last Seen",
        readonly=True,
        copy=False,
        help="Last call of the gateway runner that holds this collector's connections.",
    )
    served_by_runner = fields.Boolean(
        compute="_compute_served_by_runner",
        help="A gateway runner holds this collector's connections and polls it: the "
        "scheduled poll skips it (the two never poll the same bus).",
    )
    command_count = fields.Integer(compute="_compute_command_count")
    api_key_hash = fields.Char(
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="SHA-256 of the gateway key; the key itself is shown once and never stored.",
    )
    api_signing_public_key = fields.Char(
        string="Signing Public Key",
        readonly=True,
        copy=False,
        groups="base.group_system",
        help="Ed25519 public key of the key the gateway signs its requests with (derived "
        "from the gateway key): verifies signatures, cannot make one.",
    )
    api_key_set = fields.Boolean(string="Gateway Key Set", compute="_compute_api_key_set")
    api_accept_unsigned = fields.Boolean(
        string="Accept Unsigned Requests",
        help="Also accept requests that carry the gateway key itself (X-Api-Key) instead of a "
        "signature, for devices that cannot sign.  Off: every request must be signed.",
    )
    command_ack_timeout = fields.Integer(
        string="Resend Unanswered Commands After (minutes)",
        default=5,
        help="A command fetched by a device or the gateway runner and not answered within "
        "this time is sent again with the same id (the meter runs an id only once).",
    )
    # === MQTT (4G meters, G2): the gateway runner reads these through the device API === #
    mqtt_host = fields.Char(string="Broker Host", default="127.0.0.1")
    mqtt_port = fields.Integer(string="Broker Port", default=1883)
    mqtt_tls = fields.Boolean(string="Broker TLS")
    mqtt_username = fields.Char(string="Broker User", groups="prepaid_meter.group_prepaid_manager")
    mqtt_password = fields.Char(string="Broker Password", groups="base.group_system")
    mqtt_client_id = fields.Char(
        string="Runner Client Id",
        compute="_compute_mqtt_client_id",
        store=True,
        readonly=False,
        help="MQTT client id of the gateway runner: the name of its persistent session at "
        "the broker (messages wait there while the runner is down).",
    )

    _command_ack_timeout_positive = models.Constraint(
        "CHECK (command_ack_timeout >= 1)",
        "Commands are resent after at least one minute without an answer.",
    )
    _poll_interval_range = models.Constraint(
        "CHECK (poll_interval >= 1 AND poll_interval <= 1440)",
        "A gateway is polled every 1 to 1440 minutes.",
    )

    def _compute_command_count(self):
        counts = dict(
            self.env["meter.gateway.command"]._read_group(
                [("gateway_id", "in", self.ids), ("state", "in", ACTIVE_STATES)],
                ["gateway_id"],
                ["__count"],
            )
        )
        for gateway in self:
            gateway.command_count = counts.get(gateway, 0)

    @api.depends("runner_seen_at", "gateway_type")
    def _compute_served_by_runner(self):
        limit = fields.Datetime.now() - timedelta(minutes=RUNNER_GRACE_MINUTES)
        for gateway in self:
            gateway.served_by_runner = bool(
                gateway.gateway_type == "tcp_collector"
                and gateway.runner_seen_at
                and gateway.runner_seen_at >= limit
            )

    @api.depends("gateway_type")
    def _compute_mqtt_client_id(self):
        for gateway in self:
            if gateway.gateway_type == "mqtt" and not gateway.mqtt_client_id:
                gateway.mqtt_client_id = f"prepaid-gateway-{gateway.id or 'new'}"

    @api.depends("api_signing_public_key")
    def _compute_api_key_set(self):
        for gateway in self:
            gateway.api_key_set = bool(gateway.sudo().api_signing_public_key)

    @api.constrains("poll_timeout", "poll_retries")
    def _check_poll_settings(self):
        for gateway in self:
            if gateway.poll_timeout <= 0 or gateway.poll_retries < 0:
                raise ValidationError(
                    self.env._("The answer timeout must be positive and retries not negative.")
                )

    @api.model_create_multi
    def create(self, vals_list):
        gateways = super().create(vals_list)
        for gateway in gateways.filtered(lambda g: g.mqtt_client_id == "prepaid-gateway-new"):
            gateway.mqtt_client_id = f"prepaid-gateway-{gateway.id}"
        return gateways

    # === ACTIONS === #
    def action_view_commands(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "meter_gateway.meter_gateway_command_action"
        )
        action["domain"] = [("gateway_id", "in", self.ids)]
        return action

    def action_generate_api_key(self):
        """G5: a new gateway key, shown once to the manager; Odoo keeps only its hash and
        its signing public key (written as superuser: managers do not read them)."""
        self.ensure_one()
        self.check_access("write")
        key = secrets.token_urlsafe(32)
        self._set_api_key(key)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.env._("Gateway key of %s", self.name),
                "message": self.env._(
                    "Gateway id %(id)s, key %(key)s -- copy it now into the gateway runner's "
                    "key file: it signs the gateway's requests and is not shown again.",
                    id=self.id,
                    key=key,
                ),
                "sticky": True,
                "type": "warning",
            },
        }

    # === DEVICE API AUTHENTICATION === #
    def _set_api_key(self, key):
        """Keep what checks the gateway key, never the key: its SHA-256 (``X-Api-Key``)
        and the public key of its signing key (``X-Signature``), see
        ``prepaid_core.device_auth``."""
        self.ensure_one()
        self.sudo().write(
            {
                "api_key_hash": device_auth.key_hash(key),
                "api_signing_public_key": device_auth.public_key_hex(key),
            }
        )

    def _check_api_key(self, key):
        """An unsigned request's key (``X-Api-Key``): accepted only if the gateway accepts
        unsigned requests; constant-time comparison of its hash with the stored one."""
        self.ensure_one()
        stored = self.sudo().api_key_hash
        if not self.api_accept_unsigned or not stored or not key:
            return False
        return hmac.compare_digest(device_auth.key_hash(key), stored)

    def _check_signature(self, signature, timestamp, message_id, body, method, path):
        """Ed25519 signature over the request (method, path, timestamp, message id, SHA-256
        of the body) by the gateway's signing key, made within 5 minutes of now."""
        self.ensure_one()
        return device_auth.verify_request(
            self.sudo().api_signing_public_key or "",
            signature,
            method,
            path,
            timestamp,
            message_id,
            body,
        )

    def _mark_contact(self, endpoint=None):
        """The gateway was heard from.  Written at most once a minute while online: many
        concurrent pushes of one gateway must not all update (and lock) its row.

        A collector's runner calls (``config``, ``commands/*``, ``runner/report``) keep
        it served by the runner but tell nothing of the collector itself: its poll report
        does; the readings it pushes came from the collector."""
        now = fields.Datetime.now()
        gateways = self.sudo()
        if endpoint in RUNNER_ENDPOINTS:
            collectors = gateways.filtered(lambda g: g.gateway_type == "tcp_collector")
            gateways -= collectors
            runners = collectors.filtered(
                lambda g: not g.runner_seen_at or g.runner_seen_at < now - timedelta(minutes=1)
            )
            runners = runners._lock_unless_busy()
            if runners:
                runners.write({"runner_seen_at": now})
        stale = gateways.filtered(
            lambda g: (
                g.connection_state != "online"
                or g.poll_failures
                or not g.last_contact_at
                or g.last_contact_at < now - timedelta(minutes=1)
            )
        )
        stale = stale._lock_unless_busy()
        if stale:
            stale.write({"last_contact_at": now, "connection_state": "online", "poll_failures": 0})

    def _lock_unless_busy(self):
        """The gateways of ``self`` whose row this transaction could lock at once: those a
        concurrent transaction holds or changed since this one began are left out.

        Concurrent pushes of one gateway each find its contact time a minute old; were each
        to write it, all but the first would wait for the first one's whole message, then
        fail on the concurrent update and be run again from the start (after a random pause
        of up to two seconds).  The first one marks the contact for all of them."""
        if not self:
            return self
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                cr.execute(
                    SQL(
                        "SELECT id FROM prepaid_gateway WHERE id = ANY(%(ids)s) "
                        "FOR NO KEY UPDATE SKIP LOCKED",
                        ids=self.ids,
                    ),
                    log_exceptions=False,
                )
                locked = {row["id"] for row in cr.dictfetchall()}
        except psycopg2.errors.SerializationFailure:  # changed since: marked by another
            return self.browse()
        return self.filtered(lambda gateway: gateway.id in locked)
