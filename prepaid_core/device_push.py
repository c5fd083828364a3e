"""G5/X1: the device API's checks of what a device sends, before anything is stored.

A push carries four lists (readings, events, daily freezes, clocks).  Only a malformed
message is refused as a whole (:class:`DeviceApiError`); an item that cannot be stored is
left out with its reason (a :class:`Refusal`) and the rest goes on.  Events, freezes and
clocks are checked by one table-driven checker (:data:`ITEM_KINDS`, :func:`check_items`):
the same address and key rules, then the values of each kind.  Readings have a checker of
their own, with a fast path for well-formed rows (a message carries thousands); their values
are checked by the readings' ingest (:mod:`prepaid_core.readings`).  Acknowledgements of
commands and a collector runner's poll report are parsed here into named tuples.

Meters are named by their address.  A Modbus meter addressed on its bus by its unit id
alone has none: it is named by its *unit key* (:func:`unit_key`, ``modbus:<bus
number>:<unit id>``), which the collector config gives and the runner sends back.

Times a device sends are UTC, ``YYYY-MM-DD HH:MM:SS`` (a ``T`` and a ``Z`` allowed), naive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from . import readings as validation
from .protocols import mqtt_schema

#: the lists of a push, and the kind of item each holds in *Rejected Readings*
PUSH_KINDS = {
    "readings": "reading",
    "events": "event",
    "daily_frozen": "daily_frozen",
    "clocks": "clock",
}
#: keys a pushed reading must have (its others are the reading's values)
REQUIRED_READING_KEYS = ("address", "read_at", "forward_total")
#: the connection state a connection event tells (the broker's view of a 4G meter's
#: connection: its status message and will)
CONNECTION_EVENTS = {"connection_lost": "lost", "connection_restored": "online"}
#: events a device may report: those of the meters' MQTT schema (its ``zeroed`` is the
#: meter log's ``zeroing``, as Bluetooth meters and collectors name it) and connections
DEVICE_EVENTS = frozenset({*mqtt_schema.EVENT_TYPES, "zeroing", *CONNECTION_EVENTS} - {"zeroed"})
#: a meter's daily freeze pushed by a collector's runner (G3): energy keys are optional but
#: the total; ``frozen_at`` is UTC
FROZEN_ENERGY_KEYS = ("forward_total", "tou_sharp", "tou_peak", "tou_flat", "tou_valley")
FROZEN_KEYS = frozenset({"address", "frozen_at", *FROZEN_ENERGY_KEYS})
#: a meter's clock as a collector's runner measured it (G3): ``checked_at`` is UTC,
#: ``drift_seconds`` null when the meter does not tell its clock
CLOCK_KEYS = frozenset({"address", "checked_at", "drift_seconds"})
#: a clock drift beyond this (seconds, about 30 years) is not a measurement
MAX_DRIFT_SECONDS = 10**9
#: most items of one list in one message
MAX_BATCH = 5000
#: largest id of a record (PostgreSQL integer)
MAX_RECORD_ID = 2**31 - 1
#: the longest address, event id, event reason, event code and command answer reason
MAX_ADDRESS = 64
MAX_EVENT_ID = 128
MAX_EVENT_REASON = 1000
MAX_CODE = 64
MAX_ACK_REASON = 500
#: the longest time text a device may send
MAX_TIME_TEXT = 64
UNKNOWN_METER = "unknown meter on this gateway"
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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


class Refusal(NamedTuple):
    """An item left out of a push: its position in its list, why, and its address when
    it names a meter (the rejection is then kept with that meter)."""

    index: int
    reason: str
    address: str | None = None


# === TEXTS === #
def text_array(values) -> str:
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


def device_text(value, limit: int) -> str:
    """Text sent by a device as PostgreSQL can store it: NULs and unpaired surrogates
    escaped (``\\x00``, ``\\ud800``), at most ``limit`` characters; not text: ``""``."""
    if not isinstance(value, str):
        return ""
    text = value[: limit * 2].replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def to_address(value) -> str:
    """A meter's address as a device sent it (text, or a JSON number), checked."""
    return validation.to_text(value, "address", MAX_ADDRESS, identifier=True)


#: a Modbus meter without address named by its bus number and unit id (1-247)
_UNIT_KEY = re.compile(r"modbus:([0-9]{1,9}):([0-9]{1,3})")


def unit_key(bus_number: int, unit_id: int) -> str:
    """The name of a Modbus meter without address in the device API: its bus, its unit id."""
    return f"modbus:{int(bus_number)}:{int(unit_id)}"


def parse_unit_key(name) -> tuple[int, int] | None:
    """``(bus number, unit id)`` of a unit key (:func:`unit_key`); None for an address."""
    match = _UNIT_KEY.fullmatch(name) if isinstance(name, str) else None
    return (int(match[1]), int(match[2])) if match else None


#: a DLMS meter without address named by its bus number, logical device and physical
#: address (0 behind a TCP wrapper, where meters have none)
_DLMS_KEY = re.compile(r"dlms:([0-9]{1,9}):([0-9]{1,5}):([0-9]{1,5})")


def dlms_key(bus_number: int, logical_address: int, physical_address: int) -> str:
    """The name of a DLMS meter without address in the device API: its bus and addresses."""
    return f"dlms:{int(bus_number)}:{int(logical_address)}:{int(physical_address)}"


def parse_dlms_key(name) -> tuple[int, int, int] | None:
    """``(bus number, logical, physical address)`` of a DLMS key (:func:`dlms_key`); None
    for anything else."""
    match = _DLMS_KEY.fullmatch(name) if isinstance(name, str) else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def keys_text(keys) -> str:
    """Unknown keys of an item, for its reason: a few, escaped and cut short."""
    names = sorted(keys)
    text = ", ".join(ascii(name)[1:-1][:40] for name in names[:5])
    return text + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")


# === MESSAGES === #
def message_object(payload) -> dict:
    """The message, which must be a JSON object."""
    if not isinstance(payload, dict):
        raise DeviceApiError("bad_payload", "the body must be a JSON object")
    return payload


def message_list(payload: dict, key: str) -> list:
    """The list ``key`` of a message (empty when not given), at most :data:`MAX_BATCH`."""
    items = payload.get(key, [])
    if not isinstance(items, list):
        raise DeviceApiError("bad_payload", f"'{key}' must be a list")
    if len(items) > MAX_BATCH:
        raise DeviceApiError("batch_too_large", f"at most {MAX_BATCH} {key} per message")
    return items


def push_lists(payload) -> dict:
    """``{key: list}`` of the push's lists (:data:`PUSH_KINDS`); at least one not empty."""
    lists = {key: message_list(message_object(payload), key) for key in PUSH_KINDS}
    if not any(lists.values()):
        raise DeviceApiError(
            "bad_payload",
            "nothing to do: send 'readings', 'events', 'daily_frozen' or 'clocks'",
        )
    return lists


def fetch_limit(payload) -> int:
    """How many commands a fetch asks for (100 when not said)."""
    limit = payload.get("limit", 100) if isinstance(payload, dict) else None
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise DeviceApiError("bad_payload", "'limit' must be an integer from 1 to 1000")
    return limit


# === TIMES === #
def parse_time(value, field: str, now: datetime) -> datetime:
    """A time a device sent (see the module's docstring) within the range readings may
    have; ``now`` when not given."""
    if not value:
        return now
    try:
        if type(value) is not str or len(value) > MAX_TIME_TEXT or not value.isprintable():
            raise ValueError(value)
        text = value.replace("T", " ").removesuffix("Z")[:19]
        if not text:
            raise ValueError(value)
        at = datetime.strptime(text, _DATETIME_FORMAT[: len(text) - 2])
    except ValueError:
        raise DeviceApiError("bad_payload", f"bad time {validation.shown(value)}") from None
    try:
        return validation.check_time(at, field)
    except validation.ReadingError as exc:
        raise DeviceApiError("bad_payload", str(exc)) from None


def required_time(value, field: str) -> datetime:
    """A time that must be given (see :func:`parse_time`)."""
    if not value or not isinstance(value, str):
        raise ValueError(f"{field}: a time is required (UTC, ISO 8601)")
    return parse_time(value, field, None)


# === READINGS === #
def check_readings(readings: list, refused: list, allowed_keys: frozenset):
    """The indexes of the pushed readings in shape (required keys, none but
    ``allowed_keys``, an address) and the set of their addresses; the others go to
    ``refused``.  One pass, with a fast path for a well-formed row (a C-level subset test
    of its keys) and one check of all the addresses together.  A reading's address sent as
    a number is replaced by its text in the row."""
    good, addresses = [], set()
    for index, row in enumerate(readings):
        if type(row) is not dict:
            refused.append(Refusal(index, "not an object"))
            continue
        address = row.get("address")
        if not (
            row.keys() <= allowed_keys
            and address is not None
            and row.get("read_at") is not None
            and row.get("forward_total") is not None
        ):
            refused.append(_misshapen_reading(index, row, allowed_keys))
            continue
        if type(address) is not str:
            try:
                row["address"] = address = to_address(address)
            except ValueError as exc:
                refused.append(Refusal(index, str(exc)))
                continue
        addresses.add(address)
        good.append(index)
    if not validation.clean_identifiers(addresses, MAX_ADDRESS):
        good = _drop_bad_addresses(readings, good, addresses, refused)
    return good, addresses


def _misshapen_reading(index: int, row: dict, allowed_keys: frozenset) -> Refusal:
    """Why a reading lacks a required key or has an unknown one."""
    missing = [key for key in REQUIRED_READING_KEYS if row.get(key) is None]
    unknown = row.keys() - allowed_keys
    reasons = [f"missing {', '.join(missing)}"] if missing else []
    if unknown:
        reasons.append(f"unknown keys {keys_text(unknown)}")
    address = row.get("address")
    clean = validation.clean_identifiers([address], MAX_ADDRESS)
    return Refusal(index, "; ".join(reasons), address if clean else None)


def _drop_bad_addresses(readings: list, good: list, addresses: set, refused: list) -> list:
    """``good`` without the readings whose address cannot be stored (refused); those
    addresses leave ``addresses``."""
    bad = {}
    for address in addresses:
        try:
            to_address(address)
        except ValueError as exc:
            bad[address] = str(exc)
    addresses.difference_update(bad)
    kept = []
    for index in good:
        reason = bad.get(readings[index]["address"])
        if reason:
            refused.append(Refusal(index, reason))
        else:
            kept.append(index)
    return kept


# === EVENTS, DAILY FREEZES, CLOCKS === #
@dataclass(frozen=True)
class ItemKind:
    """How one list of a push is checked: every item is an object with an address and
    (``keys`` not None) no key but those; ``parse(item, now)`` gives its other values."""

    noun: str
    keys: frozenset | None
    parse: Callable[[dict, datetime], dict]


def _event_values(event: dict, now: datetime) -> dict:
    event_type = event.get("event_type")
    if type(event_type) is not str or event_type not in DEVICE_EVENTS:
        raise ValueError(f"unknown event_type {validation.shown(event_type)}")
    event_id = event.get("event_id")
    if event_id is not None:
        if type(event_id) is not str or not 1 <= len(event_id) <= MAX_EVENT_ID:
            raise ValueError(f"event_id must be 1-{MAX_EVENT_ID} characters")
        validation.to_text(event_id, "event_id", MAX_EVENT_ID, identifier=True)
    reason, code = event.get("reason"), event.get("code")
    return {
        "event_type": event_type,
        "event_id": event_id,
        "event_at": parse_time(event.get("event_at"), "event_at", now),
        "reason": None
        if reason is None or reason == ""
        else validation.to_text(reason, "reason", MAX_EVENT_REASON),
        "code": None
        if code is None
        else validation.to_text(code, "code", MAX_CODE, identifier=True),
    }


def _frozen_values(item: dict, now: datetime) -> dict:
    values = {"frozen_at": required_time(item.get("frozen_at"), "frozen_at")}
    for key in FROZEN_ENERGY_KEYS:
        if key in item or key == "forward_total":
            values[key] = validation.to_quantity(item.get(key), key)
    return values


def _clock_values(item: dict, now: datetime) -> dict:
    drift = item.get("drift_seconds")
    if "drift_seconds" not in item or (
        drift is not None and (type(drift) is not int or abs(drift) > MAX_DRIFT_SECONDS)
    ):
        raise ValueError("drift_seconds must be an integer (null: the meter tells no clock)")
    return {
        "checked_at": required_time(item.get("checked_at"), "checked_at"),
        "drift_seconds": drift,
    }


#: the checks of each list of a push but the readings
ITEM_KINDS = {
    "events": ItemKind("an event", None, _event_values),
    "daily_frozen": ItemKind("a freeze", FROZEN_KEYS, _frozen_values),
    "clocks": ItemKind("a clock", CLOCK_KEYS, _clock_values),
}


def check_items(key: str, items: list, refused: list, now: datetime) -> list:
    """The items of the push's list ``key`` that can be kept, ``[(index, values)]`` with
    their values parsed (``address`` checked, times as datetimes); the others go to
    ``refused``."""
    kind = ITEM_KINDS[key]
    parsed = []
    for index, item in enumerate(items):
        address = None
        try:
            if type(item) is not dict or not item.get("address"):
                raise ValueError(f"{kind.noun} needs an address")
            address = to_address(item["address"])
            unknown = kind.keys is not None and item.keys() - kind.keys
            if unknown:
                raise ValueError(f"unknown keys {keys_text(unknown)}")
            parsed.append((index, {"address": address, **kind.parse(item, now)}))
        except ValueError as exc:  # (ReadingError, DeviceApiError)
            refused.append(Refusal(index, str(exc), address))
    return parsed


# === COMMAND ANSWERS === #
class Ack(NamedTuple):
    """A device's answer to a command (``commands/ack``)."""

    id: int
    address: object
    success: bool
    reason: str
    relay_state: str | None
    delivered: bool
    permanent: bool

    @property
    def outcome(self) -> str:
        """``requeue``: the device could not reach the meter (no attempt used);
        ``fail``: refused for good, no retry; ``result``: the meter's answer."""
        if not self.delivered and not self.permanent:
            return "requeue"
        if not self.success and self.permanent:
            return "fail"
        return "result"


def _ack_malformed(ack) -> bool:
    return (
        not isinstance(ack, dict)
        or not isinstance(ack.get("id"), int)
        or isinstance(ack["id"], bool)
        or not isinstance(ack.get("success"), bool)
        or ack.get("relay_state") not in (None, "on", "off")
        or not isinstance(ack.get("delivered", True), bool)
        or not isinstance(ack.get("permanent", False), bool)
    )


def parse_acks(payload) -> list[Ack]:
    """The answers of ``{"acks": [...]}``; one malformed refuses the whole message."""
    acks = message_list(message_object(payload), "acks")
    errors = [
        {"acks": index, "reason": "needs an integer 'id' and a boolean 'success'"}
        for index, ack in enumerate(acks)
        if _ack_malformed(ack)
    ]
    if errors:
        raise DeviceApiError("bad_payload", "some acknowledgements are malformed", details=errors)
    return [
        Ack(
            id=ack["id"],
            address=ack.get("address"),
            success=ack["success"],
            reason=device_text(ack.get("reason"), MAX_ACK_REASON)
            or ("done" if ack["success"] else "failed"),
            relay_state=ack.get("relay_state"),
            delivered=ack.get("delivered", True),
            permanent=ack.get("permanent", False),
        )
        for ack in acks
    ]


# === POLL REPORTS === #
class PollReport(NamedTuple):
    """One poll of a collector's gateway runner (``runner/report``)."""

    started_at: datetime
    answered: list
    failed: dict  # {address: error}
    connected: bool | None
    errors: set
    seconds: float
    stored: int


def _poll_report_problems(answered, failed, connected, errors, seconds) -> list:
    problems = []
    if not all(isinstance(a, str) for a in answered):
        problems.append({"answered": "a list of meter addresses"})
    if not all(
        isinstance(f, dict) and isinstance(f.get("address"), str) and f.get("error") for f in failed
    ):
        problems.append({"failed": "a list of {address, error}"})
    if connected not in (True, False, None):
        problems.append({"connected": "true, false or null"})
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        problems.append({"errors": "a list of strings"})
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        problems.append({"seconds": "a number"})
    return problems


def parse_poll_report(payload, now: datetime) -> PollReport:
    """The poll report of ``payload``; a malformed one is refused with its problems."""
    payload = message_object(payload)
    answered = message_list(payload, "answered")
    failed = message_list(payload, "failed")
    connected = payload.get("connected")
    errors = payload.get("errors") or []
    seconds = payload.get("seconds", 0)
    problems = _poll_report_problems(answered, failed, connected, errors, seconds)
    if problems:
        raise DeviceApiError("bad_payload", "the poll report is malformed", details=problems)
    return PollReport(
        started_at=parse_time(payload.get("started_at"), "time", now),
        answered=answered,
        failed={f["address"]: str(f["error"]) for f in failed},
        connected=connected,
        errors=set(errors),
        seconds=float(seconds),
        stored=int(payload.get("stored") or 0),
    )
