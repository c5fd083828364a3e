"""G1/G3: polling of TCP collectors.

A poll runs in three steps so that no database lock is held while devices answer:

1. main thread: expire and supersede stale commands, pick the queued ones, mark them sent,
   build plain jobs per bus (and commit, when run by the scheduler);
2. one worker thread per bus, each with its own socket, polls the bus's meters in turn
   (buses concurrently, meters of one bus one after the other); no ORM access there;
3. main thread: one ``prepaid.meter.reading._ingest`` call for every reading, command
   outcomes, failure counters and online/lost states.
"""

import hmac
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.prepaid_meter.models.prepaid_meter_reading import MEASURES

from prepaid_core import buses, device_auth
from prepaid_core import readings as validation
from prepaid_core.buses import POLLED_VALUES

from ..const import ACTIVE_STATES

#: what a device may send for a reading, besides its meter address
READING_KEYS = frozenset(
    {"read_at", "forward_total", "reverse_total", "relay_state", "status_word", *MEASURES}
)
#: events a device may report
DEVICE_EVENTS = frozenset(
    {
        "relay_on",
        "relay_off",
        "zeroing",
        "fault",
        "tamper_cover",
        "tamper_magnet",
        "power_fail",
        "power_restore",
        # reported by 4G and Bluetooth meters (see prepaid_meter_event.py)
        "tamper_cleared",
        "fault_cleared",
        "alarm1",
        "alarm2",
        "credit_exhausted",
        "overload",
        "token_accepted",
        "token_rejected",
        # the broker's view of a 4G meter's connection (its status message and will)
        "connection_lost",
        "connection_restored",
    }
)
#: keys a pushed reading may have, and must have
PUSHED_READING_KEYS = READING_KEYS | {"address"}
REQUIRED_READING_KEYS = ("address", "read_at", "forward_total")
#: a meter's daily freeze pushed by a collector's runner (G3): energy keys are optional but
#: the total; ``frozen_at`` is UTC
FROZEN_ENERGY_KEYS = ("forward_total", "tou_sharp", "tou_peak", "tou_flat", "tou_valley")
FROZEN_KEYS = frozenset({"address", "frozen_at", *FROZEN_ENERGY_KEYS})
#: a meter's clock as a collector's runner measured it (G3): ``checked_at`` is UTC,
#: ``drift_seconds`` null when the meter does not tell its clock
CLOCK_KEYS = frozenset({"address", "checked_at", "drift_seconds"})
#: a clock drift beyond this (seconds, about 30 years) is not a measurement
MAX_DRIFT_SECONDS = 10**9
CONNECTION_EVENTS = {"connection_lost": "lost", "connection_restored": "online"}
MAX_BATCH = 5000
#: largest id of a record (PostgreSQL integer)
MAX_RECORD_ID = 2**31 - 1
#: failed meters named in a gateway's poll summary (the others are counted)
MAX_FAILURES_SHOWN = 20
#: the lists of a push, and the kind of item each holds in *Rejected Readings*
PUSH_KINDS = {
    "readings": "reading",
    "events": "event",
    "daily_frozen": "daily_frozen",
    "clocks": "clock",
}
UNKNOWN_METER = "unknown meter on this gateway"
#: the longest address, event id, event reason and event code a device may send
MAX_ADDRESS = 64
MAX_EVENT_ID = 128
MAX_EVENT_REASON = 1000
MAX_CODE = 64
#: longest a poll may hold its gateway before another one may take over
POLL_LEASE_MINUTES = 15
#: a collector whose gateway runner was heard from within this time is polled by the runner
#: only: the scheduled action (and Poll Now) leave it alone (the runner calls every few
#: seconds; its contact is written at most once a minute)
RUNNER_GRACE_MINUTES = 5
#: device API calls of a gateway runner that say nothing of the collector itself
RUNNER_ENDPOINTS = frozenset(
    {"config", "commands/fetch", "commands/ack", "runner/report", "dead_letters"}
)


def _text_array(values):
    """``values`` (strings) as one PostgreSQL array literal: one parameter, which psycopg2
    and PostgreSQL handle in a fraction of the time a list of thousands of strings takes
    (each adapted, then parsed, as a literal of its own)."""
    values = list(values)
    if not values:
        return "{}"
    text = '","'.join(values)
    if "\\" in text or '"' in text:  # rare: escape each element
        text = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + text + '"}'


def device_text(value, limit):
    """Text sent by a device as PostgreSQL can store it: NULs and unpaired surrogates
    escaped (``\\x00``, ``\\ud800``), at most ``limit`` characters; not text: ``""``."""
    if not isinstance(value, str):
        return ""
    text = value[: limit * 2].replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def _address(value):
    """A meter's address as a device sent it (text, or a JSON number), checked."""
    return validation.to_text(value, "address", MAX_ADDRESS, identifier=True)


def _keys_text(keys):
    """Unknown keys of an item, for its reason: a few, escaped and cut short."""
    names = sorted(keys)
    text = ", ".join(ascii(name)[1:-1][:40] for name in names[:5])
    return text + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")


class DeviceApiError(ValueError):
    """A request the device API refuses, with a code, an HTTP status and details."""

    def __init__(self, code, message, status=400, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or []

    def to_dict(self):
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


_logger = logging.getLogger(__name__)


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
    def action_poll_now(self):
        for gateway in self:
            gateway._poll()

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
                    "SELECT id FROM prepaid_gateway WHERE id = ANY(%s) "
                    "FOR NO KEY UPDATE SKIP LOCKED",
                    [self.ids],
                    log_exceptions=False,
                )
                locked = {row[0] for row in cr.fetchall()}
        except psycopg2.errors.SerializationFailure:  # changed since: marked by another
            return self.browse()
        return self.filtered(lambda gateway: gateway.id in locked)

    # === POLLING === #
    @api.model
    def _cron_poll(self):
        """G3: poll every collector that is due, committing after each one."""
        now = fields.Datetime.now()
        gateways = self.search(
            [
                ("gateway_type", "=", "tcp_collector"),
                "|",
                ("next_poll_at", "=", False),
                ("next_poll_at", "<=", now),
                "|",
                ("runner_seen_at", "=", False),
                ("runner_seen_at", "<", now - timedelta(minutes=RUNNER_GRACE_MINUTES)),
            ]
        )
        in_cron = bool(self.env.context.get("ir_cron_progress_id"))
        for index, gateway in enumerate(gateways):
            gateway._poll()
            if in_cron:
                self.env["ir.cron"]._commit_progress(1, remaining=len(gateways) - index - 1)
        return gateways

    def _commit_if_cron(self):
        if self.env.context.get("ir_cron_progress_id"):
            self.env["ir.cron"]._commit_progress(0)

    def _poll(self, only_meters=None):
        """Poll this collector's buses once: commands, readings, connection states.

        ``only_meters``: poll just these meters of the gateway ("read now"); the schedule
        is left as it is."""
        self.ensure_one()
        started = fields.Datetime.now()
        if self.served_by_runner:
            # the runner holds the buses: it polls at once when the poll is due
            self.next_poll_at = started
            _logger.info("gateway %s: served by its runner, poll brought forward", self.id)
            return {"stored": 0, "rejected": [], "skipped": True, "runner": True}
        if not self._take_poll_lease(started):
            _logger.info("gateway %s: a poll is already running, skipped", self.id)
            return {"stored": 0, "rejected": [], "skipped": True}
        try:
            return self._poll_locked(started, only_meters)
        finally:
            self.poll_lease_until = False

    def _take_poll_lease(self, now):
        """One poll per gateway at a time: the lease is taken in SQL (an expired lease of a
        crashed poll is taken over), never while a gateway runner serves the collector (the
        runner's calls write the same row: one of two concurrent transactions waits)."""
        self.flush_recordset(["poll_lease_until", "runner_seen_at"])
        self.env.cr.execute(
            """
            UPDATE prepaid_gateway SET poll_lease_until = %s
             WHERE id = %s AND (poll_lease_until IS NULL OR poll_lease_until < %s)
               AND (runner_seen_at IS NULL OR runner_seen_at < %s)
            RETURNING id
            """,
            (
                now + timedelta(minutes=POLL_LEASE_MINUTES),
                self.id,
                now,
                now - timedelta(minutes=RUNNER_GRACE_MINUTES),
            ),
        )
        taken = bool(self.env.cr.fetchone())
        self.invalidate_recordset(["poll_lease_until"])
        return taken

    def _poll_locked(self, started, only_meters):
        Command = self.env["meter.gateway.command"]
        buses = self.bus_ids.filtered(
            lambda b: b.driver != "none" and (b.port or b.connection == "serial")
        )
        domain = [
            ("bus_id", "in", buses.ids),
            ("state", "=", "in_service"),
            ("address", "!=", False),
        ]
        if only_meters is not None:
            domain.append(("id", "in", only_meters.ids))
        meters = self.env["prepaid.meter"].search(domain, order="bus_id, address")
        Command._expire()
        Command._supersede_contradicting(meters)
        Command._issue_device_settings(meters)
        if only_meters is None:
            self._queue_due_time_sync(started)
        commands = Command._next_for_meters(meters)
        commands._mark_sent()
        tasks = {}
        for bus in buses:
            bus_meters = meters.filtered(lambda m, bus=bus: m.bus_id == bus)
            if bus_meters:
                tasks[bus] = bus._get_poll_task(
                    [
                        (meter, commands.filtered(lambda c, meter=meter: c.meter_id == meter))
                        for meter in bus_meters
                    ]
                )
        if only_meters is None:
            self.write(
                {
                    "next_poll_at": started + timedelta(minutes=self.poll_interval or 30),
                    "last_poll_at": started,
                }
            )
        # nothing is locked while the devices answer
        self._commit_if_cron()
        results = {}
        if tasks:
            with ThreadPoolExecutor(max_workers=len(tasks), thread_name_prefix="poll") as pool:
                futures = {bus: pool.submit(task) for bus, task in tasks.items()}
                results = {bus: _poll_task_result(bus, future) for bus, future in futures.items()}
        return self._apply_poll_results(results, meters, commands)

    def _apply_poll_results(self, results, meters, commands):
        """Write what the worker threads brought back (main thread only).

        Each meter's result is written on its own (a savepoint each): one that cannot be
        written (a value the store refuses, a bug) fails that meter only, with its
        reason, logged; the other meters' readings are stored.  The report lists the
        failed meters (``failed``: address and reason)."""
        self.ensure_one()
        Command = self.env["meter.gateway.command"]
        rows, failed, answered, clocks = [], {}, set(), {}
        handled = set()
        for bus, result in results.items():
            if not result.connected:
                for meter in meters.filtered(lambda m, bus=bus: m.bus_id == bus):
                    failed[meter.id] = result.error
                continue
            for meter_result in result.meters:
                for outcome in meter_result.outcomes:
                    if self._poll_guarded(
                        meter_result.meter_id,
                        meter_result.address,
                        failed,
                        lambda outcome=outcome: self._apply_outcome(
                            Command.browse(outcome.command_id), outcome
                        ),
                    ):
                        handled.add(outcome.command_id)
                if not meter_result.ok:
                    failed[meter_result.meter_id] = meter_result.error
                    continue
                row = self._poll_guarded(
                    meter_result.meter_id,
                    meter_result.address,
                    failed,
                    lambda meter_result=meter_result: self._poll_meter_row(
                        meter_result, meters, clocks
                    ),
                )
                if row:
                    answered.add(meter_result.meter_id)
                    rows.append(row)
        # commands that never went on the wire go back to the queue without using an attempt
        for command in commands.filtered(lambda c: c.id not in handled and c.state == "sent"):
            command._update_state(
                ("sent",),
                "queued",
                self.env._(
                    "not delivered (%s); queued again",
                    failed.get(command.meter_id.id) or self.env._("meter not reached"),
                ),
                extra_vals={"attempts": max(command.attempts - 1, 0)},
            )
        report = self._poll_ingest(rows, failed, answered)
        if clocks:
            self._record_clocks({k: v for k, v in clocks.items() if k in answered})
        self._record_poll(
            answered,
            failed,
            connected=any(result.connected for result in results.values()) if results else None,
            errors={r.error for r in results.values() if r.error},
            seconds=max((r.seconds for r in results.values()), default=0.0),
            stored=report["stored"],
        )
        addresses = dict(zip(meters.ids, meters.mapped("address"), strict=True))
        report["failed"] = [
            {"address": addresses.get(meter_id), "error": error}
            for meter_id, error in sorted(failed.items())
        ]
        return report

    def _poll_guarded(self, meter_id, address, failed, write):
        """``write()`` in a savepoint; on any failure but a concurrency error (retried
        with the whole transaction) the meter is failed with the reason, logged (R12),
        and None is returned."""
        try:
            with self.env.cr.savepoint():
                return write() or True
        except psycopg2.OperationalError:
            raise
        except Exception as exc:
            reason = self.env._(
                "result not stored: %(error)s: %(message)s",
                error=type(exc).__name__,
                message=exc,
            )
            _logger.warning("gateway %s: meter %s: %s", self.id, address, reason, exc_info=True)
            failed[meter_id] = reason
            return None

    def _poll_meter_row(self, meter_result, meters, clocks):
        """The reading row of a meter that answered; its daily freeze is stored and its
        clock noted (``clocks``) on the way."""
        values = meter_result.values
        if values.get("daily_frozen"):
            self.env["prepaid.meter.reading.daily"]._store_frozen(
                meters.browse(meter_result.meter_id),
                values["daily_frozen"],
                self.meter_utc_offset,
            )
        if values.get("clock"):
            clocks[meter_result.meter_id] = values["clock"]
        return {
            "meter_id": meter_result.meter_id,
            "read_at": meter_result.read_at,
            "source": "poll",
            **{key: values[key] for key in POLLED_VALUES if key in values},
        }

    def _poll_ingest(self, rows, failed, answered):
        """Store the readings of a poll in one batch; should the batch fail as a whole,
        each reading alone: the one that fails fails its meter, never the others."""
        Reading = self.env["prepaid.meter.reading"]
        report = {"stored": 0, "rejected": []}
        if not rows:
            return report
        try:
            with self.env.cr.savepoint():
                return Reading._ingest(rows, source="poll")
        except psycopg2.OperationalError:
            raise
        except Exception:
            _logger.warning("gateway %s: poll batch failed, stored one by one", self.id)
        for row in rows:
            done = self._poll_guarded(
                row["meter_id"],
                self.env["prepaid.meter"].browse(row["meter_id"]).address,
                failed,
                lambda row=row: Reading._ingest([row], source="poll"),
            )
            if done:
                report["stored"] += done["stored"]
                report["rejected"] += done["rejected"]
            else:
                answered.discard(row["meter_id"])
        return report

    def _record_poll(self, answered, failed, connected, errors, seconds, stored):
        """What one poll tells, by the scheduled poll or the gateway runner's report:
        meters that answered (ids), did not (``{id: error}``), whether the collector could
        be reached (``None``: nothing was polled), its errors, the slowest bus's seconds."""
        self.ensure_one()
        Meter = self.env["prepaid.meter"]
        Meter.browse(answered).filtered("poll_failures").write({"poll_failures": 0})
        for meter_id, error in failed.items():
            Meter.browse(meter_id)._register_poll_failure(error, self.lost_after_failures)
        now = fields.Datetime.now()
        summary = self.env._(
            "%(ok)s meters answered, %(failed)s did not, %(stored)s readings stored",
            ok=len(answered),
            failed=len(failed),
            stored=stored,
        )
        if failed:
            names = dict(zip(failed, Meter.browse(list(failed)).mapped("address"), strict=True))
            shown = sorted(failed.items())[:MAX_FAILURES_SHOWN]
            summary += self.env._(
                ". Failed: %(meters)s", meters="; ".join(f"{names[i]}: {e}" for i, e in shown)
            )
            if len(failed) > len(shown):
                summary += self.env._(" (and %s more)", len(failed) - len(shown))
            for meter_id, error in sorted(failed.items()):
                _logger.info("gateway %s: meter %s failed: %s", self.id, names[meter_id], error)
        vals = {"last_poll_seconds": seconds, "last_poll_summary": summary}
        if connected:
            vals.update(last_contact_at=now, connection_state="online", poll_failures=0)
        elif connected is not None:
            vals["poll_failures"] = self.poll_failures + 1
            if vals["poll_failures"] >= self.lost_after_failures:
                vals["connection_state"] = "lost"
        previous = self.connection_state
        self.write(vals)
        if self.connection_state != previous and self.connection_state in ("online", "lost"):
            self.message_post(
                body=self.env._(
                    "Connection %(state)s: %(summary)s",
                    state=self.connection_state,
                    summary="; ".join(sorted(errors)) or vals["last_poll_summary"],
                )
            )

    def _apply_outcome(self, command, outcome):
        if not outcome.delivered and command.state == "sent":
            command._update_state(
                ("sent",),
                "failed" if outcome.permanent else "queued",
                outcome.reason,
                extra_vals={"last_error": outcome.reason},
            )
        elif outcome.permanent and not outcome.success:
            command._update_state(
                ACTIVE_STATES, "failed", outcome.reason, extra_vals={"last_error": outcome.reason}
            )
            if command.state != "failed":
                command._log_decision(outcome.reason)
        else:
            command._mark_result(outcome.success, outcome.reason)
        target = command._relay_target()
        if outcome.success and target:
            # the device did it, even when a newer intent superseded the command meanwhile
            # (R7): the actual state is recorded, reconciliation corrects it
            command.meter_id._record_actual_relay(target)

    # === DEVICE API (G5) === #
    def _api_meters_by_address(self, addresses):
        """{address: meter id} of this gateway's meters (one query, no records: a push
        names thousands of meters)."""
        self.env["prepaid.meter"].flush_model(["gateway_id", "address", "state"])
        self.env.cr.execute(
            """
            SELECT address, id FROM prepaid_meter
             WHERE gateway_id = %s AND address = ANY(%s::text[]) AND state != 'removed'
            """,
            (self.id, _text_array(addresses)),
        )
        return dict(self.env.cr.fetchall())

    @staticmethod
    def _api_list(payload, key):
        items = payload.get(key, [])
        if not isinstance(items, list):
            raise DeviceApiError("bad_payload", f"'{key}' must be a list")
        if len(items) > MAX_BATCH:
            raise DeviceApiError("batch_too_large", f"at most {MAX_BATCH} {key} per message")
        return items

    def _api_push(self, payload):
        """Readings, events, daily freezes and clocks of one message; returns the answer for
        the device.  Only a malformed message is refused as a whole (not an object, no list,
        too many items); an item that cannot be stored is left out with its reason (in the
        answer's ``rejected`` and in *Rejected Readings*) and the rest is stored."""
        self.ensure_one()
        if not isinstance(payload, dict):
            raise DeviceApiError("bad_payload", "the body must be a JSON object")
        readings = self._api_list(payload, "readings")
        events = self._api_list(payload, "events")
        frozen = self._api_list(payload, "daily_frozen")
        clocks = self._api_list(payload, "clocks")
        if not readings and not events and not frozen and not clocks:
            raise DeviceApiError(
                "bad_payload",
                "nothing to do: send 'readings', 'events', 'daily_frozen' or 'clocks'",
            )
        refused = {key: [] for key in PUSH_KINDS}  # {key: [(index, reason, address)]}
        good, addresses = self._api_check_readings(readings, refused["readings"])
        events = self._api_check_events(events, refused["events"])
        frozen = self._api_check_frozen(frozen, refused["daily_frozen"])
        clocks = self._api_check_clocks(clocks, refused["clocks"])
        addresses.update(item["address"] for _index, item in events + frozen + clocks)
        addresses.update(address for items in refused.values() for *_i, address in items)
        addresses.discard(None)
        meters = self._api_meters_by_address(addresses)
        source = {"ble_bridge": "ble", "tcp_collector": "poll"}.get(self.gateway_type, "push")
        report, positions = self._api_store_readings(readings, good, meters, source, refused)
        logged, duplicates = self._api_log_events(events, meters, refused["events"])
        frozen_stored, clocks_recorded = self._api_store_frozen_and_clocks(
            frozen, clocks, meters, refused
        )
        self._api_record_refused(refused, meters, source, payload)
        return {
            "stored": report["stored"],
            "flagged": report["flagged"],
            "events": logged,
            "duplicate_events": duplicates,
            "daily_frozen": frozen_stored,
            "clocks": clocks_recorded,
            "rejected": [
                {key: index, "reason": reason}
                for key, items in refused.items()
                for index, reason, _address in items
            ]
            + [
                {"readings": positions[item["index"]], "reason": item.get("reason")}
                for item in report["rejected"]
            ],
        }

    def _api_check_readings(self, readings, refused):
        """The indexes of the pushed readings in shape (required keys, no other, an address)
        and the set of their addresses; the others go to ``refused``.  One pass, with a fast
        path for a well-formed row (a C-level subset test of its keys) and one check of all
        the addresses together: a message carries thousands of readings.  Their values are
        checked by ``prepaid.meter.reading._ingest``."""
        good, addresses = [], set()
        for index, row in enumerate(readings):
            if type(row) is not dict:
                refused.append((index, "not an object", None))
                continue
            address = row.get("address")
            if not (
                row.keys() <= PUSHED_READING_KEYS
                and address is not None
                and row.get("read_at") is not None
                and row.get("forward_total") is not None
            ):
                missing = [k for k in REQUIRED_READING_KEYS if row.get(k) is None]
                unknown = row.keys() - PUSHED_READING_KEYS
                reasons = [f"missing {', '.join(missing)}"] if missing else []
                if unknown:
                    reasons.append(f"unknown keys {_keys_text(unknown)}")
                clean = validation.clean_identifiers([address], MAX_ADDRESS)
                refused.append((index, "; ".join(reasons), address if clean else None))
                continue
            if type(address) is not str:
                try:
                    row["address"] = address = _address(address)
                except ValueError as exc:
                    refused.append((index, str(exc), None))
                    continue
            addresses.add(address)
            good.append(index)
        if not validation.clean_identifiers(addresses, MAX_ADDRESS):
            bad = {}
            for address in addresses:
                try:
                    _address(address)
                except ValueError as exc:
                    bad[address] = str(exc)
            addresses -= bad.keys()
            kept = []
            for index in good:
                reason = bad.get(readings[index]["address"])
                if reason:
                    refused.append((index, reason, None))
                else:
                    kept.append(index)
            good = kept
        return good, addresses

    def _api_store_readings(self, readings, good, meters, source, refused):
        """Ingest the readings ``good`` (indexes) of meters in ``meters``; the others are
        refused as unknown.  Returns the ingest's report and the positions of its rows."""
        rows, positions = [], []
        meter_of, gateway_id = meters.get, self.id
        unknown = refused["readings"]
        for index in good:
            # the parsed message's rows become the ingest rows (no copy)
            row = readings[index]
            address = row.pop("address")
            meter_id = meter_of(address)
            if not meter_id:
                row["address"] = address
                unknown.append((index, UNKNOWN_METER, None))
                continue
            row["meter_id"] = meter_id
            row["source"] = source
            row["gateway_id"] = gateway_id
            rows.append(row)
            positions.append(index)
        if not rows:
            return {"stored": 0, "flagged": 0, "rejected": []}, positions
        return self.env["prepaid.meter.reading"].sudo()._ingest(rows, source=source), positions

    def _api_check_events(self, events, refused):
        """The pushed events that can be logged, ``[(index, event)]`` with their values
        parsed (``event_at`` a datetime, now when not given); the others go to
        ``refused``."""
        parsed = []
        for index, event in enumerate(events):
            address = None
            try:
                if type(event) is not dict or not event.get("address"):
                    raise ValueError("an event needs an address")
                address = _address(event["address"])
                event_type = event.get("event_type")
                if type(event_type) is not str or event_type not in DEVICE_EVENTS:
                    raise ValueError(f"unknown event_type {validation.shown(event_type)}")
                event_id = event.get("event_id")
                if event_id is not None:
                    if type(event_id) is not str or not 1 <= len(event_id) <= MAX_EVENT_ID:
                        raise ValueError(f"event_id must be 1-{MAX_EVENT_ID} characters")
                    validation.to_text(event_id, "event_id", MAX_EVENT_ID, identifier=True)
                reason, code = event.get("reason"), event.get("code")
                parsed.append(
                    (
                        index,
                        {
                            "address": address,
                            "event_type": event_type,
                            "event_id": event_id,
                            "event_at": self._api_time(event.get("event_at"), "event_at"),
                            "reason": None
                            if reason is None or reason == ""
                            else validation.to_text(reason, "reason", MAX_EVENT_REASON),
                            "code": None
                            if code is None
                            else validation.to_text(code, "code", MAX_CODE, identifier=True),
                        },
                    )
                )
            except ValueError as exc:  # (ReadingError, DeviceApiError)
                refused.append((index, str(exc), address))
        return parsed

    def _api_check_frozen(self, frozen, refused):
        """The pushed daily freezes that can be kept, ``[(index, freeze)]`` with their
        values parsed; the others go to ``refused``."""
        parsed = []
        for index, item in enumerate(frozen):
            address = None
            try:
                if type(item) is not dict or not item.get("address"):
                    raise ValueError("a freeze needs an address")
                address = _address(item["address"])
                unknown = item.keys() - FROZEN_KEYS
                if unknown:
                    raise ValueError(f"unknown keys {_keys_text(unknown)}")
                values = {
                    "address": address,
                    "frozen_at": self._api_required_time(item.get("frozen_at"), "frozen_at"),
                }
                for key in FROZEN_ENERGY_KEYS:
                    if key in item or key == "forward_total":
                        values[key] = validation.to_quantity(item.get(key), key)
            except ValueError as exc:
                refused.append((index, str(exc), address))
                continue
            parsed.append((index, values))
        return parsed

    def _api_check_clocks(self, clocks, refused):
        """The pushed clock measurements that can be recorded, ``[(index, clock)]`` with
        their values parsed; the others go to ``refused``."""
        parsed = []
        for index, item in enumerate(clocks):
            address = None
            try:
                if type(item) is not dict or not item.get("address"):
                    raise ValueError("a clock needs an address")
                address = _address(item["address"])
                unknown = item.keys() - CLOCK_KEYS
                if unknown:
                    raise ValueError(f"unknown keys {_keys_text(unknown)}")
                drift = item.get("drift_seconds")
                if "drift_seconds" not in item or (
                    drift is not None and (type(drift) is not int or abs(drift) > MAX_DRIFT_SECONDS)
                ):
                    raise ValueError(
                        "drift_seconds must be an integer (null: the meter tells no clock)"
                    )
                checked_at = self._api_required_time(item.get("checked_at"), "checked_at")
            except ValueError as exc:
                refused.append((index, str(exc), address))
                continue
            parsed.append(
                (index, {"address": address, "checked_at": checked_at, "drift_seconds": drift})
            )
        return parsed

    def _api_required_time(self, value, field):
        if not value or not isinstance(value, str):
            raise ValueError(f"{field}: a time is required (UTC, ISO 8601)")
        return self._api_time(value, field)

    def _api_log_events(self, events, meters, refused):
        """Log the parsed ``events`` of known meters (those of others go to ``refused``);
        returns (logged, skipped as already logged)."""
        logged = duplicates = 0
        connections = {}
        seen = self._api_seen_events([event for _index, event in events], meters)
        Meter = self.env["prepaid.meter"]
        for index, event in events:
            meter = Meter.browse(meters.get(event["address"]))
            if not meter:
                refused.append((index, UNKNOWN_METER, None))
                continue
            event_id = event["event_id"]
            if event_id and (meter.id, event_id) in seen:
                duplicates += 1  # delivered again: logged already
                continue
            if event_id:
                seen.add((meter.id, event_id))
            event_at = event["event_at"]
            logged_event = self.env["prepaid.meter.event"]
            if event["event_type"] in CONNECTION_EVENTS:
                connections[meter.id] = CONNECTION_EVENTS[event["event_type"]]
            elif event["event_type"] in ("relay_on", "relay_off"):
                if not meter.actual_relay_at or meter.actual_relay_at <= event_at:
                    # older news of the relay (a late delivery) does not overwrite newer
                    changed = meter.sudo()._record_actual_relay(event["event_type"][6:], event_at)
                    logged_event = changed.event_ids.filtered(
                        lambda e, t=event["event_type"], at=event_at: (
                            e.event_type == t and e.event_at == at and not e.device_event_id
                        )
                    )[:1]
            else:
                logged_event = meter.sudo()._log_event(
                    event["event_type"],
                    reason=event["reason"],
                    event_at=event_at,
                    source="device",
                    code=event["code"],
                )
            if event_id and logged_event:
                logged_event.device_event_id = event_id
            logged += 1
        if connections:
            self._api_connection_states(connections)
        return logged, duplicates

    def _api_store_frozen_and_clocks(self, frozen, clocks, meters, refused):
        """G3: daily freezes kept on the daily records (as the scheduled poll does) and
        clock measurements recorded (both parsed, ``[(index, item)]``); items of unknown
        meters go to ``refused``."""
        Meter = self.env["prepaid.meter"].sudo()
        Daily = self.env["prepaid.meter.reading.daily"].sudo()
        offset = timedelta(minutes=self.meter_utc_offset or 0)
        stored = 0
        for index, item in frozen:
            meter_id = meters.get(item["address"])
            if not meter_id:
                refused["daily_frozen"].append((index, UNKNOWN_METER, None))
                continue
            # the meter froze at its local time: the day it closes is the meter's
            local = dict(item, frozen_at=item["frozen_at"] + offset)
            Daily._store_frozen(Meter.browse(meter_id), local, self.meter_utc_offset)
            stored += 1
        measured = {}
        for index, item in clocks:
            meter_id = meters.get(item["address"])
            if not meter_id:
                refused["clocks"].append((index, UNKNOWN_METER, None))
                continue
            measured[meter_id] = item
        if measured:
            self._record_clocks(measured)
        return stored, len(measured)

    def _api_record_refused(self, refused, meters, source, payload):
        """Keep the items refused here in *Rejected Readings* (X1), with their meter when
        their address names one (those refused by the readings' ingest are kept by it)."""
        Rejection = self.env["prepaid.meter.reading.rejection"].sudo()
        for key, items in refused.items():
            if items:
                rejections = [
                    {"index": index, "reason": reason, "meter_id": meters.get(address)}
                    for index, reason, address in items
                ]
                Rejection._record(rejections, payload[key], source, PUSH_KINDS[key], self)

    def _api_seen_events(self, events, meters):
        """``{(meter id, event id)}`` of the pushed events already logged (one query)."""
        event_ids = [e["event_id"] for e in events if e.get("event_id")]
        if not event_ids:
            return set()
        self.env["prepaid.meter.event"].flush_model(["meter_id", "device_event_id"])
        self.env.cr.execute(
            """
            SELECT meter_id, device_event_id FROM prepaid_meter_event
             WHERE meter_id = ANY(%s) AND device_event_id = ANY(%s)
            """,
            (list(set(meters.values())), event_ids),
        )
        return set(self.env.cr.fetchall())

    def _api_connection_states(self, states):
        """``{meter id: 'online' | 'lost'}`` as the broker last saw them (a retained status
        is the current one): only changes are written and logged, so the statuses a
        restarted runner receives again change nothing."""
        Meter = self.env["prepaid.meter"].sudo()
        for state, event_type in (("online", "connection_restored"), ("lost", "connection_lost")):
            ids = [meter_id for meter_id, value in states.items() if value == state]
            changed = Meter.browse(ids).filtered(lambda m, state=state: m.connection_state != state)
            if changed:
                changed.write({"connection_state": state})
                reason = self.env._("device status through the broker")
                changed._log_event(event_type, reason=reason, source="device")

    def _api_time(self, value, field="time"):
        """A time a device sent (UTC, ``YYYY-MM-DD HH:MM:SS``, a ``T`` and a ``Z`` allowed)
        within the range readings may have; now when not given."""
        if not value:
            return fields.Datetime.now()
        try:
            if type(value) is not str or len(value) > 64 or not value.isprintable():
                raise ValueError(value)
            at = fields.Datetime.to_datetime(value.replace("T", " ").removesuffix("Z")[:19])
        except ValueError:
            raise DeviceApiError("bad_payload", f"bad time {validation.shown(value)}") from None
        try:
            return validation.check_time(at, field)
        except validation.ReadingError as exc:
            raise DeviceApiError("bad_payload", str(exc)) from None

    def _api_fetch_commands(self, limit=100):
        """The queued commands of this gateway's meters, marked sent; commands sent earlier
        and not answered within ``command_ack_timeout`` are sent again with the same id
        (the meter answers an id it already ran without running it twice: R8), until their
        attempts are used up."""
        self.ensure_one()
        Command = self.env["meter.gateway.command"].sudo()
        # by gateway, not by a search of its meters: a runner fetches every few seconds and
        # a gateway may have tens of thousands of meters
        Command._expire()
        Command._supersede_contradicting(gateway=self)
        Command._issue_device_settings(gateway=self)
        self._queue_due_time_sync()
        answer_due = fields.Datetime.now() - timedelta(minutes=self.command_ack_timeout)
        unanswered = Command.search(
            [
                ("gateway_id", "=", self.id),
                ("state", "=", "sent"),
                ("sent_at", "<", answer_due),
            ],
            order="id",
        )
        for command in unanswered.filtered(lambda c: c.attempts >= c.max_attempts):
            command._update_state(
                ("sent",),
                "failed",
                self.env._("no answer after %s attempts", command.attempts),
                extra_vals={"last_error": self.env._("no answer")},
            )
        commands = Command.search(
            [
                ("gateway_id", "=", self.id),
                "|",
                ("state", "=", "queued"),
                ("id", "in", unanswered.filtered(lambda c: c.state == "sent").ids),
            ],
            order="id",
            limit=limit,
        )
        commands, after = commands._credits_in_order()
        commands._mark_sent()
        extra = self._api_poll_state() if self.gateway_type == "tcp_collector" else {}
        return {
            **extra,
            "commands": [
                {
                    "id": command.id,
                    "address": command.meter_id.address,
                    "kind": command.kind,
                    "payload": {
                        **(command.payload or {}),
                        **(command.token_secret or {}),
                        **({"after_sequence": after[command.id]} if command.id in after else {}),
                    },
                    "expires_at": fields.Datetime.to_string(command.expires_at),
                    "attempt": command.attempts,
                }
                for command in commands
            ],
        }

    def _api_ack(self, payload):
        """Results of commands: {"acks": [{"id", "address", "success", "reason",
        "relay_state", "delivered", "permanent"}]}: ``delivered: false`` puts the command
        back in the queue without using an attempt, ``permanent: true`` fails it without
        retry.  An answer settles only a command of the meter it comes from (``address``):
        any other is refused for that item and logged, the command left as it is."""
        self.ensure_one()
        if not isinstance(payload, dict):
            raise DeviceApiError("bad_payload", "the body must be a JSON object")
        acks = self._api_list(payload, "acks")
        errors = [
            {"acks": index, "reason": "needs an integer 'id' and a boolean 'success'"}
            for index, ack in enumerate(acks)
            if not isinstance(ack, dict)
            or not isinstance(ack.get("id"), int)
            or isinstance(ack["id"], bool)
            or not isinstance(ack.get("success"), bool)
            or ack.get("relay_state") not in (None, "on", "off")
            or not isinstance(ack.get("delivered", True), bool)
            or not isinstance(ack.get("permanent", False), bool)
        ]
        if errors:
            raise DeviceApiError(
                "bad_payload", "some acknowledgements are malformed", details=errors
            )
        Command = self.env["meter.gateway.command"].sudo()
        # an id beyond PostgreSQL's integers names no command (and must not fail the query)
        ids = [ack["id"] for ack in acks if 0 < ack["id"] <= MAX_RECORD_ID]
        commands = Command.search([("id", "in", ids), ("gateway_id", "=", self.id)])
        by_id = {command.id: command for command in commands}
        result = []
        for ack in acks:
            command = by_id.get(ack["id"])
            if not command:
                result.append({"id": ack["id"], "state": None, "reason": "unknown command"})
                continue
            refusal = self._api_ack_refusal(command, ack.get("address"))
            if refusal:
                result.append({"id": command.id, "state": None, "reason": refusal})
                continue
            reason = device_text(ack.get("reason"), 500) or ("done" if ack["success"] else "failed")
            if ack.get("delivered") is False and not ack.get("permanent"):
                # the device could not reach the meter: back to the queue, no attempt used
                command._update_state(
                    ("sent",),
                    "queued",
                    self.env._("not delivered (%s); queued again", reason),
                    extra_vals={"attempts": max(command.attempts - 1, 0)},
                )
                result.append({"id": command.id, "state": command.state})
                continue
            if not ack["success"] and ack.get("permanent") is True:
                # refused for good (unsupported, malformed, wrong meter): no retry
                command._update_state(
                    ACTIVE_STATES,
                    "failed",
                    self.env._("device: %s", reason),
                    extra_vals={"last_error": reason},
                )
                result.append({"id": command.id, "state": command.state})
                continue
            command._mark_result(ack["success"], self.env._("device: %s", reason))
            if ack.get("relay_state"):
                command.meter_id._record_actual_relay(ack["relay_state"])
            result.append({"id": command.id, "state": command.state})
        return {"acks": result}

    def _api_ack_refusal(self, command, address):
        """Why an answer naming meter ``address`` may not settle ``command`` (``None``: it
        may); a refusal is logged on the command and in the server log (R12)."""
        if not isinstance(address, str) or not address:
            reason = self.env._("the answer names no meter address")
        elif address != command.meter_id.address:
            reason = self.env._("the answer comes from another meter than the command's")
        else:
            return None
        shown = repr(address)[:40]
        _logger.warning(
            "gateway %s: answer to command %s refused (%s; address %s)",
            self.id,
            command.id,
            reason,
            shown,
        )
        command._log_decision(
            self.env._(
                "answer refused: %(reason)s (address %(address)s)", reason=reason, address=shown
            )
        )
        return reason

    def _api_config(self):
        """What the gateway runner needs to run this gateway (device API ``config``)."""
        self.ensure_one()
        gateway = self.sudo()
        config = {"gateway_id": gateway.id, "gateway_type": gateway.gateway_type}
        if gateway.gateway_type == "mqtt":
            config["mqtt"] = {
                "host": gateway.mqtt_host or "127.0.0.1",
                "port": gateway.mqtt_port or 1883,
                "tls": gateway.mqtt_tls,
                "client_id": gateway.mqtt_client_id or f"prepaid-gateway-{gateway.id}",
                "username": gateway.mqtt_username or None,
                "password": gateway.mqtt_password or None,
            }
        elif gateway.gateway_type == "ble_bridge":
            meters = (
                self.env["prepaid.meter"]
                .sudo()
                .search(
                    [
                        ("gateway_id", "=", gateway.id),
                        ("state", "!=", "removed"),
                        ("ble_mac", "!=", False),
                    ]
                )
            )
            config["ble_meters"] = [{"address": m.address, "mac": m.ble_mac} for m in meters]
        elif gateway.gateway_type == "tcp_collector":
            config["collector"] = gateway._api_collector_config()
        return config

    # === DEMO === #
    @api.model
    def _demo_prepare_polling(self, gateway_ids):
        """Demo data (X3): poll these collectors every minute; a Modbus meter's unit id is
        its position on the bus (the last digits of its address, as the simulator has it)."""
        gateways = self.browse(gateway_ids)
        gateways.write({"poll_interval": 1, "poll_timeout": 0.5, "poll_retries": 1})
        for meter in gateways.meter_ids.filtered(lambda m: m.bus_id.protocol == "modbus_rtu"):
            meter.modbus_unit_id = int(meter.address[-4:])
        return gateways

    def _api_collector_config(self):
        """G3: what a gateway runner needs to hold this collector's buses and poll them:
        link settings, schedule and the meters of every bus with a driver, in poll order."""
        self.ensure_one()
        buses = self.bus_ids.filtered(lambda b: b.driver != "none" and b.port)
        meters = self.env["prepaid.meter"].search(
            [("bus_id", "in", buses.ids), ("state", "=", "in_service"), ("address", "!=", False)],
            order="bus_id, address",
        )
        return {
            "host": self.host or "127.0.0.1",
            "poll_interval": self.poll_interval or 30,
            "timeout": self.poll_timeout,
            "retries": self.poll_retries,
            "lost_after_failures": self.lost_after_failures,
            "password": self.meter_password or "02000000",
            "operator": self.operator_code or "00000000",
            "utc_offset_minutes": self.meter_utc_offset,
            "buses": [
                {
                    "number": bus.number,
                    "port": bus.port,
                    "protocol": bus.protocol,
                    "meters": [
                        {
                            "address": meter.address,
                            "unit_id": meter.modbus_unit_id,
                            "register_map": meter.model_id.modbus_register_map
                            or "acrel_prepaid_1p",
                        }
                        for meter in meters
                        if meter.bus_id == bus
                    ],
                }
                for bus in buses
            ],
        }

    def _api_poll_state(self):
        """For a collector's runner, with the commands: is a poll due (its schedule, or a
        reading asked for now), and is a scheduled poll of Odoo still running (wait); when
        a poll is due, the meters it also reads as Odoo's scheduled poll would."""
        now = fields.Datetime.now()
        state = {
            "poll_due": not self.next_poll_at or self.next_poll_at <= now,
            "busy": bool(self.poll_lease_until and self.poll_lease_until > now),
        }
        if state["poll_due"]:
            state.update(self._api_poll_reads_due())
        return state

    def _api_poll_reads_due(self):
        """G3: the addresses of the DL/T645 meters whose next poll also reads their last
        daily freeze (DL/T645-2007 meters whose day lacks it: ``daily_frozen_due``) or their
        clock (2007 and 1997 meters due for a check: ``clock_due``), the same meters Odoo's
        scheduled poll would read."""
        self.ensure_one()
        buses = self.bus_ids.filtered(lambda b: b.driver == "dlt645_tcp" and b.port)
        meters = self.env["prepaid.meter"].search(
            [("bus_id", "in", buses.ids), ("state", "=", "in_service"), ("address", "!=", False)]
        )
        Daily = self.env["prepaid.meter.reading.daily"]
        frozen = Daily._meters_missing_frozen(
            meters.filtered(lambda m: m.bus_id.protocol == "dlt645_2007"), Daily._frozen_day(self)
        )
        clock = self._meters_clock_due(meters)
        return {
            "daily_frozen_due": [m.address for m in meters if m.id in frozen],
            "clock_due": [m.address for m in meters if m.id in clock],
        }

    def _api_runner_report(self, payload):
        """G3: the outcome of one poll of the gateway runner (its readings came through
        ``push``, its command answers through ``commands/ack``): meters that answered or
        not, whether the collector was reached; the next poll is due one interval after the
        start of this one."""
        self.ensure_one()
        if self.gateway_type != "tcp_collector":
            raise DeviceApiError("bad_request", "only a collector's runner reports polls")
        if not isinstance(payload, dict):
            raise DeviceApiError("bad_payload", "the body must be a JSON object")
        answered = self._api_list(payload, "answered")
        failed = self._api_list(payload, "failed")
        connected = payload.get("connected")
        errors = payload.get("errors") or []
        seconds = payload.get("seconds", 0)
        problems = []
        if not all(isinstance(a, str) for a in answered):
            problems.append({"answered": "a list of meter addresses"})
        if not all(
            isinstance(f, dict) and isinstance(f.get("address"), str) and f.get("error")
            for f in failed
        ):
            problems.append({"failed": "a list of {address, error}"})
        if connected not in (True, False, None):
            problems.append({"connected": "true, false or null"})
        if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
            problems.append({"errors": "a list of strings"})
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            problems.append({"seconds": "a number"})
        if problems:
            raise DeviceApiError("bad_payload", "the poll report is malformed", details=problems)
        started_at = self._api_time(payload.get("started_at"))
        meters = self._api_meters_by_address(set(answered) | {f["address"] for f in failed})
        self._record_poll(
            [meters[a] for a in answered if a in meters],
            {meters[f["address"]]: str(f["error"]) for f in failed if f["address"] in meters},
            connected=connected,
            errors=set(errors),
            seconds=float(seconds),
            stored=int(payload.get("stored") or 0),
        )
        self.write(
            {
                "last_poll_at": started_at,
                "next_poll_at": started_at + timedelta(minutes=self.poll_interval or 30),
            }
        )
        return {"next_poll_at": fields.Datetime.to_string(self.next_poll_at)}


def _poll_task_result(bus, future):
    """What a bus's worker thread brought back; a failure of the thread itself fails that
    bus (its meters, with the reason), never the others."""
    try:
        return future.result()
    except Exception as exc:
        _logger.exception("bus %s: poll failed", bus.id)
        return buses.BusResult(False, f"poll of bus {bus.name} failed: {type(exc).__name__}: {exc}")
