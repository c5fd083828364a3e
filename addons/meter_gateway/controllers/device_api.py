"""G5: the device API for gateways and meter clouds.

The HTTP endpoints under ``/meter_gateway/api/v1`` (``push``, ``commands/fetch``,
``commands/ack``, ``dead_letters``, ``config``, ``runner/report``). Each request is
authenticated with the gateway's key (``prepaid_core.device_auth``) and processed once per
message id (the answer is kept and replayed); the items themselves are checked and stored
by the gateway model. Errors are JSON: ``{"error": {"code", "message", "details"}}``.

See docs/device_api.md (signatures, idempotency, the payload of each endpoint).
"""

import json
import logging

import psycopg2

try:  # optional: parses a message of thousands of readings faster than json
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
