import hmac
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from prepaid_core import device_auth

_logger = logging.getLogger(__name__)

#: days a message's answer is kept for replays (``ir.config_parameter``)
RETENTION_PARAM = "meter_gateway.message_retention_days"
DEFAULT_RETENTION_DAYS = 7
#: a ``config`` message id is a nonce: kept no longer than a signature stays valid, twice
NONCE_SECONDS = 2 * device_auth.WINDOW_SECONDS
PURGE_BATCH = 10_000


class MeterGatewayMessage(models.Model):
    """G5: the device API's idempotency table.  A message id is processed once per gateway
    (a unique index decides, also between two concurrent deliveries): a resend of the same
    request (same endpoint, same body digest) gets the stored answer back and changes
    nothing; the same id with another body is refused.  ``config`` ids are nonces: kept
    without their answer (it carries passwords), refused a second time.

    Answers are purged after a retention period; a ``commands/fetch`` answer is kept
    without its credit tokens, which a replay takes again from the commands (the same
    tokens: a retried delivery never mints a second credit, R10)."""

    _name = "meter.gateway.message"
    _description = "Device API Message"
    _order = "id desc"
    _rec_name = "message_id"

    gateway_id = fields.Many2one("prepaid.gateway", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="gateway_id.company_id", store=True, index=True)
    message_id = fields.Char(required=True)
    endpoint = fields.Char(required=True)
    body_digest = fields.Char(help="SHA-256 of the request's body (hex).")
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

    def _same_request(self, endpoint, digest):
        """Whether a delivery to ``endpoint`` with this body digest is this message again."""
        self.ensure_one()
        return (
            self.endpoint == endpoint
            and self.endpoint != "config"
            and hmac.compare_digest(self.body_digest or "", digest)
        )

    @api.model
    def _record(self, gateway, message_id, endpoint, digest, response):
        """Keep a processed message's answer, without its credit tokens."""
        return self.create(
            {
                "gateway_id": gateway.id,
                "message_id": message_id,
                "endpoint": endpoint,
                "body_digest": digest,
                "status_code": 200,
                "response": self._without_tokens(endpoint, response),
            }
        )

    @api.model
    def _use_nonce(self, gateway, message_id, digest):
        """Record a ``config`` message id; False if the gateway used it before."""
        rows = self.env.execute_query(
            SQL(
                """INSERT INTO meter_gateway_message (gateway_id, company_id, message_id,
                       endpoint, body_digest, status_code, replay_count, create_uid,
                       create_date, write_uid, write_date)
                   VALUES (%(gateway)s, %(company)s, %(message)s, 'config', %(digest)s, 200, 0,
                       %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC')
                   ON CONFLICT (gateway_id, message_id) DO NOTHING
                   RETURNING id""",
                gateway=gateway.id,
                company=gateway.company_id.id or None,
                message=message_id,
                digest=digest,
                uid=self.env.uid,
            )
        )
        return bool(rows)

    def _answer(self):
        """The stored answer, with the credit tokens of a fetch answer taken again from
        their commands (a command deleted since is left out)."""
        self.ensure_one()
        response = self.response
        if self.endpoint != "commands/fetch" or not isinstance(response, dict):
            return response
        stored = response.get("commands") or []
        commands = self.env["meter.gateway.command"].sudo().browse([c["id"] for c in stored])
        by_id = {command.id: command for command in commands.exists()}
        replayed = []
        for item in stored:
            if command := by_id.get(item["id"]):
                payload = {**(item.get("payload") or {}), **(command.token_secret or {})}
                replayed.append({**item, "payload": payload})
        return {**response, "commands": replayed}

    @api.model
    def _without_tokens(self, endpoint, response):
        """A fetch answer without the keys of its commands' ``token_secret``."""
        if endpoint != "commands/fetch" or not isinstance(response, dict):
            return response
        stored = response.get("commands") or []
        commands = self.env["meter.gateway.command"].sudo().browse([c["id"] for c in stored])
        secret_keys = {command.id: set(command.token_secret or ()) for command in commands}
        return {
            **response,
            "commands": [
                {
                    **item,
                    "payload": {
                        key: value
                        for key, value in (item.get("payload") or {}).items()
                        if key not in secret_keys.get(item["id"], ())
                    },
                }
                for item in stored
            ],
        }

    # === PURGE === #
    @api.model
    def _retention_days(self):
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        try:
            return max(int(value), 1) if value else DEFAULT_RETENTION_DAYS
        except ValueError:
            _logger.warning("%s is not a number of days: %r", RETENTION_PARAM, value)
            return DEFAULT_RETENTION_DAYS

    @api.model
    def _cron_purge(self, batch_size=PURGE_BATCH):
        """Delete the answers older than the retention period and the ``config`` nonces
        older than a signature's validity, in batches (one commit each from the scheduled
        action); return how many rows went."""
        self.flush_model()
        now = fields.Datetime.now()
        where = SQL(
            "create_date < %s OR (endpoint = 'config' AND create_date < %s)",
            now - timedelta(days=self._retention_days()),
            now - timedelta(seconds=NONCE_SECONDS),
        )
        remaining = self.env.execute_query(
            SQL("SELECT count(*) FROM meter_gateway_message WHERE %s", where)
        )[0][0]
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        purged = 0
        while remaining:
            deleted = len(
                self.env.execute_query(
                    SQL(
                        """DELETE FROM meter_gateway_message WHERE id IN (
                               SELECT id FROM meter_gateway_message WHERE %s
                               ORDER BY id LIMIT %s)
                           RETURNING id""",
                        where,
                        batch_size,
                    )
                )
            )
            purged += deleted
            remaining = max(remaining - deleted, 0) if deleted else 0
            if in_cron and not self.env["ir.cron"]._commit_progress(deleted, remaining=remaining):
                break  # out of time: the scheduler runs the rest next
        self.invalidate_model()
        return purged
