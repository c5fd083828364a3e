"""Conversions between the MQTT schema of 4G meters and the device API (no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from prepaid_core.protocols import mqtt_schema as schema

UTC = timezone.utc  # datetime.UTC is Python 3.11+

__all__ = [
    "EVENT_MAP",
    "UnsupportedCommand",
    "ack_to_api",
    "command_from_api",
    "event_to_api",
    "reading_to_api",
    "status_to_api",
    "with_addresses",
]

#: MQTT event -> device API event type (the same name except ``zeroed``); an event the
#: map does not know (a newer schema) is not forwarded, and counted
EVENT_MAP = {
    **{name: name for name in schema.EVENT_TYPES if name != "zeroed"},
    "zeroed": "zeroing",
}


#: the server's command ids are PostgreSQL integers
MAX_COMMAND_ID = 2**31 - 1


class UnsupportedCommand(ValueError):
    """A command of the server that the MQTT schema cannot carry (kind or payload)."""


def _iso(stamp: datetime) -> str:
    return schema.format_ts(stamp)


def reading_to_api(address: str, reading: schema.Reading) -> dict:
    """A ``reading`` message as a device API reading row (Decimals stay exact)."""
    row = {
        "address": address,
        "read_at": _iso(reading.ts),
        "forward_total": reading.forward_kwh,
        "relay_state": reading.relay,
    }
    optional = {
        "reverse_total": reading.reverse_kwh,
        "voltage": reading.voltage_v,
        "current": reading.current_a,
        "power": reading.power_kw,
        "power_factor": reading.pf,
        "meter_balance": reading.balance,
        "status_word": reading.status_word,
    }
    row.update({key: value for key, value in optional.items() if value is not None})
    for band in ("sharp", "peak", "flat", "valley"):
        if band in reading.tou_kwh:
            row[f"tou_{band}"] = reading.tou_kwh[band]
    return row


def event_to_api(address: str, event: schema.Event) -> dict | None:
    event_type = EVENT_MAP.get(event.event)
    if event_type is None:
        return None
    # the meter's message id: a message delivered again is logged once by the server
    row = {
        "address": address,
        "event_type": event_type,
        "event_at": _iso(event.ts),
        "event_id": event.msg_id,
    }
    if event.code is not None:
        row["code"] = str(event.code)
    if event.detail:
        row["reason"] = event.detail
    return row


def status_to_api(address: str, status: schema.Status) -> dict:
    """A meter's (retained) status or will as a connection event of the device API."""
    event_type = "connection_restored" if status.state == "online" else "connection_lost"
    return {"address": address, "event_type": event_type, "event_at": _iso(status.ts)}


def ack_to_api(address: str, ack: schema.Ack) -> dict | None:
    """A meter's ``ack`` (published on its own topic, ``address``) as a device API
    acknowledgement; ``None`` for a ``cmd_id`` that is not one of the server's (numeric)
    command ids.  The server settles a command only for the meter the answer names."""
    if not (ack.cmd_id.isascii() and ack.cmd_id.isdigit() and len(ack.cmd_id) <= 10):
        return None
    if not 0 < int(ack.cmd_id) <= MAX_COMMAND_ID:
        return None
    if ack.result == "ok":
        reason = "executed earlier (duplicate delivery)" if ack.duplicate else "executed"
    else:
        reason = ack.error or "failed"
    return {
        "id": int(ack.cmd_id),
        "address": address,
        "success": ack.result == "ok",
        "reason": f"meter: {reason}",
        "relay_state": ack.relay,
    }


def with_addresses(acks: list[dict], commands: list[dict]) -> list[dict]:
    """``acks`` each naming the meter of its command (``address``), as the device API
    requires: a runner answers only for the meter it ran the command on."""
    addresses = {command["id"]: command["address"] for command in commands}
    return [{"address": addresses.get(ack["id"]), **ack} for ack in acks]


def _parse_utc(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=UTC)


def command_from_api(command: dict, *, now: datetime | None = None) -> schema.Command:
    """A command fetched from the device API as an MQTT ``cmd`` message.

    ``cmd_id`` is the server's command id: a resend (next attempt) reuses it with a new
    ``msg_id``, and the meter answers an id it already executed without running it again.
    """
    now = now or datetime.now(UTC)
    kind, payload = command["kind"], command.get("payload") or {}
    try:
        if kind in ("relay_on", "relay_off"):
            cmd, params = kind, {}
        elif kind in ("protect_on", "protect_off"):
            cmd, params = "protect", {"on": kind == "protect_on"}
        elif kind == "price":
            cmd, params = "set_price", {"price": Decimal(str(payload["price"]))}
        elif kind == "thresholds":
            cmd = "set_thresholds"
            params = {key: Decimal(str(payload[key])) for key in ("alarm1", "alarm2")}
            if payload.get("overload_kw"):
                params["overload_kw"] = Decimal(str(payload["overload_kw"]))
        elif kind == "time_sync":
            cmd, params = "time_sync", {"time": now}
        elif kind == "zeroing":
            cmd, params = "zero", {}
        elif kind == "credit":
            cmd, params = "credit_token", {"token": payload["token"]}
        elif kind == "read_now":
            cmd, params = "read_now", {}
        else:
            raise UnsupportedCommand(f"command {kind} cannot be sent over MQTT")
        message = schema.Command(
            msg_id=f"m{command['id']}-{command.get('attempt', 1)}-{int(now.timestamp())}",
            cmd_id=str(command["id"]),
            ts=now,
            cmd=cmd,
            params=params,
            expires=_parse_utc(command.get("expires_at")),
        )
        schema.encode(message)  # validated as the meter will
    except (KeyError, ArithmeticError, ValueError, schema.SchemaError) as exc:
        if isinstance(exc, UnsupportedCommand):
            raise
        raise UnsupportedCommand(f"command {kind}: bad payload ({exc})") from exc
    return message
