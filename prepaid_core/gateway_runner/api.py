"""Client of the ``meter_gateway`` device API (G5), used by the gateway runner.

Every POST carries ``X-Message-Id``; the server processes a message id once per gateway
and answers a resend with the first answer, so a request whose answer was lost is sent
again *with the same message id* (never a new one, and with the same body: the same id
with another body is refused, 409): a retry can neither store a reading twice nor mark
commands sent twice.  ``config`` is the exception: Odoo keeps no answer of it (it carries
passwords) and refuses its message id a second time, so each attempt has a new id.

Requests are signed (``prepaid_core.device_auth``: Ed25519 over method, path, timestamp,
message id and the body's SHA-256, with a key derived from the gateway key); with
``sign=False`` the gateway key itself is sent (``X-Api-Key``), which Odoo accepts only from a
gateway set to accept unsigned requests.  The key never appears in a URL or a log line.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from decimal import Decimal

import requests

from prepaid_core import device_auth

__all__ = [
    "DeviceApiClient",
    "DeviceApiError",
    "DeviceApiUnavailable",
    "backoff_delay",
    "is_transient",
    "new_message_id",
]

_logger = logging.getLogger(__name__)

API_PREFIX = "/meter_gateway/api/v1"


class DeviceApiError(Exception):
    """The device API refused a request (4xx): retrying the same request cannot help."""

    def __init__(self, status: int, error: dict):
        self.status = status
        self.error = error or {}
        self.code = self.error.get("code", "")
        super().__init__(f"HTTP {status} {self.code}: {self.error.get('message', '')}")


class DeviceApiUnavailable(Exception):
    """Odoo could not be reached or answered 5xx / 408 / 429 after the retries: try
    again later with the same message id.  ``status``: the last HTTP status (``None``: no
    answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


#: answers that say "not now" rather than "never": the same request is sent again (503: the
#: same message still being processed; 409 is a message id reused for another body: never)
TRANSIENT_STATUSES = frozenset({408, 429})


def is_transient(status: int) -> bool:
    return status >= 500 or status in TRANSIENT_STATUSES


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling from ``base``, at
    most ``cap``, jittered (half to all of it) so that runners do not retry in step."""
    return min(base * 2 ** max(failures - 1, 0), cap) * random.uniform(0.5, 1.0)


def new_message_id(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _json_default(value):
    if isinstance(value, Decimal):
        # exact: the server reads register values and money from strings as Decimal
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def dumps(payload) -> bytes:
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


class DeviceApiClient:
    """One gateway's credentials and an HTTP session to Odoo."""

    def __init__(
        self,
        base_url: str,
        gateway_id: int,
        api_key: str,
        *,
        sign: bool = True,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ):
        if not api_key:
            raise ValueError("the gateway's API key is empty")
        self.base_url = base_url.rstrip("/")
        self.gateway_id = int(gateway_id)
        self.sign = sign
        self._api_key = None if sign else api_key
        self._signing_key = device_auth.signing_key(api_key) if sign else None
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.session = session or requests.Session()

    def __repr__(self):  # never shows the key
        return f"<DeviceApiClient gateway={self.gateway_id} url={self.base_url}>"

    def _headers(self, endpoint: str, message_id: str, body: bytes) -> dict[str, str]:
        """Signed anew at each attempt: the timestamp is the attempt's."""
        headers = {
            "Content-Type": "application/json",
            "X-Gateway-Id": str(self.gateway_id),
            "X-Message-Id": message_id,
        }
        if self.sign:
            path = f"{API_PREFIX}/{endpoint}"
            stamp, signature = device_auth.sign_request(
                self._signing_key, "POST", path, message_id, body
            )
            headers["X-Timestamp"] = stamp
            headers["X-Signature"] = signature
        else:
            headers["X-Api-Key"] = self._api_key
        return headers

    def post(
        self, endpoint: str, payload, message_id: str | None = None, *, once: bool = False
    ) -> dict:
        """POST ``payload`` to ``endpoint``; retried with the same message id on network
        errors, 5xx (503: the same message still being processed), 408 and 429, with a
        jittered exponential backoff.  ``once``: Odoo takes the message id once and keeps no
        answer (``config``): a new id per attempt."""
        message_id = message_id or new_message_id()
        body = dumps(payload)
        url = f"{self.base_url}{API_PREFIX}/{endpoint}"
        last, status = None, None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(backoff_delay(attempt, self.backoff, 10.0))
            if once and attempt:
                message_id = new_message_id(message_id.split("-", 1)[0])
            try:
                response = self.session.post(
                    url,
                    data=body,
                    headers=self._headers(endpoint, message_id, body),
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                last, status = f"{type(exc).__name__}: {exc}", None
                _logger.warning("device API %s: %s (attempt %s)", endpoint, last, attempt + 1)
                continue
            if is_transient(response.status_code):
                last, status = f"HTTP {response.status_code}", response.status_code
                _logger.warning("device API %s: %s (attempt %s)", endpoint, last, attempt + 1)
                continue
            try:
                data = response.json()
            except ValueError:
                # not the device API's answer (Odoo's 404 page while its database is
                # restarting, a proxy's error page): nothing was judged, send it again
                last = f"HTTP {response.status_code}, not the device API's answer"
                status = response.status_code
                _logger.warning("device API %s: %s (attempt %s)", endpoint, last, attempt + 1)
                continue
            if response.status_code != 200:
                raise DeviceApiError(response.status_code, data.get("error"))
            return data
        raise DeviceApiUnavailable(f"device API {endpoint} unavailable: {last}", status)

    # === ENDPOINTS === #
    def push(self, readings=(), events=(), message_id: str | None = None) -> dict:
        return self.post("push", {"readings": list(readings), "events": list(events)}, message_id)

    def fetch_commands(self, limit: int = 100, message_id: str | None = None) -> list[dict]:
        return self.post("commands/fetch", {"limit": limit}, message_id)["commands"]

    def ack(self, acks, message_id: str | None = None) -> dict:
        return self.post("commands/ack", {"acks": list(acks)}, message_id)

    def dead_letters(self, letters, message_id: str | None = None) -> dict:
        """Messages set aside for an operator: {"topic", "payload", "reason", "received_at"}."""
        return self.post("dead_letters", {"letters": list(letters)}, message_id)

    def config(self) -> dict:
        """The gateway's settings (broker, Bluetooth meters); nothing is stored server-side."""
        return self.post("config", {}, new_message_id("cfg"), once=True)
