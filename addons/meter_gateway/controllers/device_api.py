"""G5: the device API for gateways and meter clouds.

Every request names its gateway (``X-Gateway-Id``) and carries ``X-Message-Id`` (1-128
printable ASCII characters), and is signed with the gateway's key (``prepaid_core.device_auth``):
``X-Timestamp`` (Unix seconds, within 5 minutes of the server's clock) and ``X-Signature``,
the hex Ed25519 signature of ``"v2\n<method>\n<path>\n<timestamp>\n<message id>\n<hex
SHA-256 of the body>"`` by the key HKDF derives from the gateway key.  Odoo keeps only the
SHA-256 of the gateway key and the signing key's public key: a copy of the database cannot
sign.  A gateway set to *Accept Unsigned Requests* also takes the key itself (``X-Api-Key``).
See docs/device_api.md.

A message is processed once per gateway: the same message id with the same body (its
SHA-256) gets the first answer back (``X-Idempotent-Replay: 1``), with another body or on
another endpoint it is refused (409 ``message_id_reused``); a message still being processed
by a concurrent delivery is answered 503 (``Retry-After``).  Answers are kept for
``meter_gateway.message_retention_days`` (system parameter, 7 by default), a fetch answer
without its credit tokens (a replay takes them again from the commands).  ``config`` keeps
no answer (it carries passwords): its message id is refused a second time.  Errors are
JSON: ``{"error": {"code", "message", "details"}}``.

    POST /meter_gateway/api/v1/push             {"readings": [...], "events": [...],
                                                 "daily_frozen": [...], "clocks": [...]}
         an event: {"address", "event_type", "event_at", "reason", "code", "event_id"};
         an event with an ``event_id`` already logged for its meter is skipped (counted
         in ``duplicate_events``): a batch sent again under another message id (a runner
         killed before its broker acknowledgement) logs nothing twice;
         a daily freeze (G3): {"address", "frozen_at" (UTC), "forward_total", "tou_sharp",
         "tou_peak", "tou_flat", "tou_valley"} (energies: numbers or their strings,
         finite, not negative), kept on the daily record of the day it closes (*Meter
         Frozen Total*), the same freeze again changes nothing;
         a clock (G3): {"address", "checked_at" (UTC), "drift_seconds" (integer, positive:
         the meter is ahead; null: the meter tells no clock)}: kept on the meter, a
         drift beyond the gateway's threshold queues a time sync; a measurement not
         newer than the one kept is ignored;
         an item that cannot be stored (malformed, a value out of its column's range,
         an unknown meter) is left out and the rest is stored: the answer's
         ``rejected`` lists ``{"readings" | "events" | "daily_frozen" | "clocks": index,
         "reason"}`` and each is kept in *Rejected Readings* (X1).  Numbers must be
         finite, within their column's range (registers below 10^12) with at most 20
         decimals; times between 2000 and 2100 (UTC); texts without NUL, unpaired
         surrogates (or, for addresses, codes and event ids, control characters), of
         bounded length (addresses 64 characters).  Only a malformed message is
         refused as a whole (400: not a JSON object, a list that is not one, more than
         5,000 items in a list, nothing to do)
    POST /meter_gateway/api/v1/commands/fetch   {"limit": 100}
    POST /meter_gateway/api/v1/commands/ack     {"acks": [{"id", "address", "success",
                                                           "reason", "relay_state",
                                                           "delivered", "permanent"}]}
         ``address``: the meter the answer comes from (the ack topic's address, the meter
         a runner ran the command on); an answer without it, or from another meter than
         the command's, is refused for that item (``{"id", "state": null, "reason"}``),
         the command and the relay left as they are, the refusal logged on the command
    POST /meter_gateway/api/v1/dead_letters     {"letters": [{"topic", "payload", "reason",
                                                              "received_at"}]}
         messages the runner could not get stored (malformed, or refused even alone),
         acknowledged to the broker and kept in *Dead Letters* (``payload``: the raw
         message as text, NULs and bytes that are not UTF-8 escaped, at most 64 KiB);
         answers ``{"stored", "rejected": [{"letters": index, "reason"}]}``
    POST /meter_gateway/api/v1/config           {} -> the gateway's runner settings
    POST /meter_gateway/api/v1/runner/report    {"started_at", "answered": [address],
                                                 "failed": [{"address", "error"}],
                                                 "connected", "errors", "seconds", "stored"}

A collector's gateway runner (``prepaid_core.gateway_runner.collector``) reads the
collector's buses and meters from ``config`` (``collector``: link settings, poll interval,
``buses`` with their meters in poll order), fetches commands (the answer also says
``poll_due``: the schedule or a reading asked now, and ``busy``: a scheduled poll of Odoo
still runs; when a poll is due, ``daily_frozen_due`` and ``clock_due`` list the addresses
whose last daily freeze and clock the poll also reads, as Odoo's poll would), pushes the
readings it polled (stored with source ``poll``), then the freezes and clocks it read,
acknowledges the commands it ran and reports each poll (``runner/report``: meter failures, collector
reached or not; the next poll is due one interval after ``started_at``).  While the
runner calls, the scheduled poll leaves the collector alone (``served_by_runner``).
"""

import json
import logging

import psycopg2

try:  # optional: parses a message of thousands of readings about 2x faster
    from orjson import loads as json_loads
except ImportError:  # pragma: no cover
    json_loads = json.loads

from odoo import http
from odoo.http import request

from prepaid_core import device_auth, device_push
from prepaid_core.device_push import DeviceApiError

_logger = logging.getLogger(__name__)

PREFIX = "/meter_gateway/api/v1"


def _json_int(text):
    """A JSON integer; one of more digits than any column holds reads as a float (infinite
    when beyond one), refused then by the item's checks, not by the parser."""
    return int(text) if len(text) <= 40 else float(text)


def _parse_json(body):
    """The JSON message.  orjson refuses a number beyond a double (``1e400``), ``NaN`` and
    unpaired surrogates in a text, which Python's parser reads: then the item holding it is
    refused by its checks, not the whole message.  ValueError when the body is not JSON."""
    try:
        return json_loads(body)
    except (ValueError, RecursionError) as exc:
        refused = exc
    try:
        return json.loads(body, parse_int=_json_int)
    except RecursionError:
        raise ValueError(f"nested too deep ({refused})") from None


class DeviceApiController(http.Controller):
    # === HELPERS === #
    @staticmethod
    def _json(data, status=200, headers=None):
        return request.make_json_response(data, headers=headers, status=status)

    @staticmethod
    def _message_id():
        message_id = request.httprequest.headers.get("X-Message-Id") or ""
        if not device_auth.valid_message_id(message_id):
            raise DeviceApiError(
                "bad_request", "X-Message-Id header required (1-128 printable ASCII characters)"
            )
        return message_id

    def _authenticate(self, body, message_id):
        """The gateway named by ``X-Gateway-Id``, if the request is signed by its key (or,
        on a gateway that accepts unsigned requests, carries the key); 401 otherwise, the
        same for a gateway that does not exist."""
        httprequest = request.httprequest
        headers = httprequest.headers
        try:
            gateway_id = int(headers.get("X-Gateway-Id", ""))
        except ValueError:
            raise DeviceApiError(
                "unauthorized", "X-Gateway-Id header missing or not a number", 401
            ) from None
        gateway = request.env["prepaid.gateway"].sudo().browse(gateway_id).exists()
        if gateway and headers.get("X-Signature"):
            valid = gateway._check_signature(
                headers.get("X-Signature"),
                headers.get("X-Timestamp"),
                message_id,
                body,
                httprequest.method,
                httprequest.path,
            )
        else:
            valid = bool(gateway) and gateway._check_api_key(headers.get("X-Api-Key", ""))
        if not valid or not gateway.active:
            _logger.warning("device API: refused credentials for gateway %s", gateway_id)
            raise DeviceApiError("unauthorized", "wrong gateway, key or signature", 401)
        return gateway.with_company(gateway.company_id)

    def _replay(self, known, endpoint, digest):
        """The stored answer of a message sent again; 409 if its id came with another
        request (another body or endpoint, or a ``config`` nonce)."""
        if not known._same_request(endpoint, digest):
            _logger.warning(
                "device API: gateway %s reused message id %r for another request",
                known.gateway_id.id,
                known.message_id,
            )
            raise DeviceApiError(
                "message_id_reused", "this message id was already used for another request", 409
            )
        known.replay_count += 1
        return self._json(
            known._answer(), known.status_code, headers=[("X-Idempotent-Replay", "1")]
        )

    def _handle(self, endpoint, processor):
        body = request.httprequest.get_data() or b""
        try:
            message_id = self._message_id()
            gateway = self._authenticate(body, message_id)
            # what is answered here is acknowledged to the device (a broker forgets the
            # readings): a durable commit even where the server runs without one (X1)
            request.env.cr.execute("SET LOCAL synchronous_commit TO on")
            digest = device_auth.body_digest(body)
            Message = request.env["meter.gateway.message"].sudo()
            known = Message._find(gateway, message_id)
            if known:
                return self._replay(known, endpoint, digest)
            try:
                payload = _parse_json(body or b"{}")
            except ValueError as exc:
                raise DeviceApiError("invalid_json", f"the body is not JSON: {exc}") from None
            gateway._mark_contact(endpoint)
            with request.env.cr.savepoint():
                response = processor(gateway, payload)
                Message._record(gateway, message_id, endpoint, digest, response)
            return self._json(response)
        except DeviceApiError as exc:
            return self._json(exc.to_dict(), exc.status)
        except psycopg2.IntegrityError as exc:
            return self._retry_later(exc)

    def _retry_later(self, exc):
        """503 for a message a concurrent transaction got in the way of: nothing was
        stored, the device sends the same message again."""
        if "gateway_message_uniq" in (exc.diag.constraint_name or ""):
            # the same message processed concurrently: the other delivery wins, a retry
            # gets its answer
            code, message = "duplicate", "message already being processed"
        else:
            # another concurrent write won (e.g. a new readings partition)
            _logger.warning("device API: concurrent update, message refused for a retry: %s", exc)
            code, message = "conflict", "concurrent update, send it again"
        return self._json(
            {"error": {"code": code, "message": message}}, 503, headers=[("Retry-After", "1")]
        )

    # === ROUTES === #
    @http.route(f"{PREFIX}/config", type="http", auth="public", methods=["POST"], csrf=False)
    def config(self):
        """The gateway's settings for the gateway runner (broker, Bluetooth meters).  Read
        only, and its answer is not stored (it may carry the broker password or the meters'
        password of a collector): its message id is a nonce, refused a second time."""
        body = request.httprequest.get_data() or b""
        try:
            message_id = self._message_id()
            gateway = self._authenticate(body, message_id)
            Message = request.env["meter.gateway.message"].sudo()
            if not Message._use_nonce(gateway, message_id, device_auth.body_digest(body)):
                _logger.warning("device API: gateway %s replayed config %r", gateway.id, message_id)
                raise DeviceApiError(
                    "message_id_reused", "config takes a new message id at each request", 409
                )
        except DeviceApiError as exc:
            return self._json(exc.to_dict(), exc.status)
        gateway._mark_contact("config")
        return self._json(gateway._api_config())

    @http.route(f"{PREFIX}/push", type="http", auth="public", methods=["POST"], csrf=False)
    def push(self):
        return self._handle("push", lambda gateway, payload: gateway._api_push(payload))

    @http.route(
        f"{PREFIX}/commands/fetch", type="http", auth="public", methods=["POST"], csrf=False
    )
    def fetch_commands(self):
        return self._handle(
            "commands/fetch",
            lambda gateway, payload: gateway._api_fetch_commands(device_push.fetch_limit(payload)),
        )

    @http.route(f"{PREFIX}/runner/report", type="http", auth="public", methods=["POST"], csrf=False)
    def runner_report(self):
        return self._handle(
            "runner/report", lambda gateway, payload: gateway._api_runner_report(payload)
        )

    @http.route(f"{PREFIX}/commands/ack", type="http", auth="public", methods=["POST"], csrf=False)
    def ack_commands(self):
        return self._handle("commands/ack", lambda gateway, payload: gateway._api_ack(payload))

    @http.route(f"{PREFIX}/dead_letters", type="http", auth="public", methods=["POST"], csrf=False)
    def dead_letters(self):
        return self._handle(
            "dead_letters",
            lambda gateway, payload: gateway.env["meter.gateway.dead.letter"]._api_record(
                gateway, payload
            ),
        )
