"""What a gateway runner sets aside (X1, R12): messages the device API cannot take.

Both runners (MQTT and TCP collector) tell a failure that is the message's (a refusal,
4xx; a server error, 500, while the device API answers an empty message) from one that
says "not now" (no answer, 502-504, 408, 429, a page that is not the device API's). Only
the first is set aside, once the failing part is alone: as a *dead letter*, handed to the
device API (``dead_letters``: *Dead Letters* in Odoo), else kept in a local JSON-lines
file, else in the log.  Setting one aside never raises: the queue goes on.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    new_message_id,
)
from prepaid_core.protocols import mqtt_schema as schema

__all__ = ["DeadLetters", "letter", "may_be_content", "server_answers"]

_logger = logging.getLogger(__name__)

#: the longest part of a message kept in a dead letter (characters)
MAX_LETTER_CHARS = 65536


def _text(value: str) -> str:
    value = value[:MAX_LETTER_CHARS].replace("\x00", "\\x00")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_LETTER_CHARS]


def letter(topic: str, payload: bytes | str, reason: str, received_at: datetime) -> dict:
    """A message set aside, as the device API's ``dead_letters`` takes it: the raw
    payload as text (bytes that are not UTF-8 and NULs escaped), bounded."""
    if isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload[:MAX_LETTER_CHARS]).decode("utf-8", "backslashreplace")
    return {
        "topic": _text(topic),
        "payload": _text(payload),
        "reason": _text(reason),
        "received_at": schema.format_ts(received_at),
    }


def may_be_content(exc: DeviceApiUnavailable) -> bool:
    """Whether a failure may come from what the request carries: a server error, not an
    answer that says "not now" (busy, conflict, gateway) nor no answer at all."""
    return exc.status is not None and exc.status >= 500 and exc.status not in (502, 503, 504)


def server_answers(api: DeviceApiClient) -> bool:
    """Whether the device API takes an empty message now: then a request it keeps
    failing with a server error fails for what it carries, not because Odoo is down."""
    try:
        api.push([], [], message_id=new_message_id("probe"))
    except (DeviceApiError, DeviceApiUnavailable) as exc:
        _logger.warning("device API down (%s): the message waits, nothing set aside", exc)
        return False
    return True


class DeadLetters:
    """Where a runner's dead letters go: the device API, else ``path``, else the log."""

    def __init__(self, api: DeviceApiClient, path: str | os.PathLike, prefix: str):
        self.api, self.path, self.prefix = api, Path(path), prefix
        self.sent = 0
        self.kept_locally = 0

    def bury(self, rows: list[dict]) -> None:
        """Hand ``rows`` (see :func:`letter`) to the device API; what it does not take is
        kept in the local file.  Never raises."""
        if not rows:
            return
        for row in rows:
            _logger.warning("dead letter from %r: %s", row["topic"], row["reason"])
        self.sent += len(rows)
        try:
            answer = self.api.dead_letters(rows, message_id=new_message_id(self.prefix))
        except (DeviceApiError, DeviceApiUnavailable) as exc:
            _logger.error("device API did not take %s dead letters: %s", len(rows), exc)
            self.keep_locally(rows)
            return
        refused = answer.get("rejected", [])
        for item in refused:
            _logger.error("device API refused a dead letter: %s", item.get("reason"))
        indexes = {item.get("letters") for item in refused}
        self.keep_locally([row for index, row in enumerate(rows) if index in indexes])

    def keep_locally(self, rows: list[dict]) -> None:
        if not rows:
            return
        try:
            with self.path.open("a", encoding="utf-8") as file:
                for row in rows:
                    file.write(json.dumps(row, ensure_ascii=False) + "\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            # the log is the last place left: the message is still let go
            for row in rows:
                _logger.error("dead letter lost to %s (%s): %r", self.path, exc, row)
            return
        self.kept_locally += len(rows)
        _logger.warning("%s dead letters kept in %s", len(rows), self.path.resolve())
