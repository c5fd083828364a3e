"""G5: the device API for gateways and meter clouds.

Every request names its gateway (``X-Gateway-Id``) and proves it either with the gateway's
API key (``X-Api-Key``) or with an HMAC signature (``X-Timestamp`` in seconds, ``X-Signature``
= hex HMAC-SHA256 over ``"<timestamp>.<message id>.<body>"`` keyed with the hex SHA-256 of the
API key; the timestamp must be within 5 minutes).  Every POST carries ``X-Message-Id``: a
message is processed once per gateway and a resend gets the first answer back
(``X-Idempotent-Replay: 1``).  Errors are JSON: ``{"error": {"code", "message", "details"}}``.

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
    POST /meter_gateway/api/v1/commands/ack     {"acks": [{"id", "success", "reason",
                                                           "relay_state", "delivered",
                                                           "permanent"}]}
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

from ..models.prepaid_gateway import DeviceApiError

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

    def _authenticate(self, body):
        headers = request.httprequest.headers
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
                headers.get("X-Message-Id"),
                body,
            )
        else:
            valid = bool(gateway) and gateway._check_api_key(headers.get("X-Api-Key", ""))
        if not valid or not gateway.active:
            _logger.warning("device API: refused credentials for gateway %s", gateway_id)
            raise DeviceApiError("unauthorized", "wrong gateway, key or signature", 401)
        return gateway.with_company(gateway.company_id)

    def _handle(self, endpoint, processor):
        body = request.httprequest.get_data() or b""
        try:
            gateway = self._authenticate(body)
            message_id = (request.httprequest.headers.get("X-Message-Id") or "").strip()
            if not message_id or len(message_id) > 128:
                raise DeviceApiError("bad_request", "X-Message-Id header required (1-128 chars)")
            Message = request.env["meter.gateway.message"].sudo()
            known = Message._find(gateway, message_id)
            if known:
                known.replay_count += 1
                return self._json(
                    known.response, known.status_code, headers=[("X-Idempotent-Replay", "1")]
                )
            try:
                payload = _parse_json(body or b"{}")
            except ValueError as exc:
                raise DeviceApiError("invalid_json", f"the body is not JSON: {exc}") from None
            gateway._mark_contact(endpoint)
            with request.env.cr.savepoint():
                response = processor(gateway, payload)
                Message.create(
                    {
                        "gateway_id": gateway.id,
                        "message_id": message_id,
                        "endpoint": endpoint,
                        "status_code": 200,
                        "response": response,
                    }
                )
            return self._json(response)
        except DeviceApiError as exc:
            return self._json(exc.to_dict(), exc.status)
        except psycopg2.IntegrityError as exc:
            if "gateway_message_uniq" in (exc.diag.constraint_name or ""):
                # the same message processed concurrently: the other delivery won
                return self._json(
                    {"error": {"code": "duplicate", "message": "message already being processed"}},
                    409,
                )
            # another concurrent write won (e.g. a new readings partition): nothing was
            # stored, the device sends the same message again
            _logger.warning("device API: concurrent update, message refused for a retry: %s", exc)
            return self._json(
                {"error": {"code": "conflict", "message": "concurrent update, send it again"}},
                503,
                headers=[("Retry-After", "1")],
            )

    # === ROUTES === #
    @http.route(f"{PREFIX}/config", type="http", auth="public", methods=["POST"], csrf=False)
    def config(self):
        """The gateway's settings for the gateway runner (broker, Bluetooth meters).  Read
        only: not stored in the message table (the answer may carry the broker password or
        the meters' password of a collector)."""
        try:
            gateway = self._authenticate(request.httprequest.get_data() or b"")
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
        def fetch(gateway, payload):
            limit = payload.get("limit", 100) if isinstance(payload, dict) else None
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise DeviceApiError("bad_payload", "'limit' must be an integer from 1 to 1000")
            return gateway._api_fetch_commands(limit)

        return self._handle("commands/fetch", fetch)

    @http.route(f"{PREFIX}/runner/report", type="http", auth="public", methods=["POST"], csrf=False)
    def runner_report(self):
        return self._handle(
            "runner/report", lambda gateway, payload: gateway._api_runner_report(payload)
        )

    @http.route(f"{PREFIX}/commands/ack", type="http", auth="public", methods=["POST"], csrf=False)
    def ack_commands(self):
        return self._handle("commands/ack", lambda gateway, payload: gateway._api_ack(payload))
