"""MQTT topics and JSON payloads of 4G prepaid meters, version 1 (G2, X1).

Topics are ``prepaid/v1/<address>/<kind>`` (``reading``, ``event``, ``cmd``, ``ack``,
``status``). ``parse_message(topic, payload)`` and ``decode(kind, payload)`` turn bytes into
a ``Reading``, ``Event``, ``Command``, ``Ack`` or ``Status``; ``encode(message)`` turns one
back into bytes. Numbers are ``Decimal``, unknown fields are refused, and ``SchemaError``
(naming the field) is the only error either way, whatever the input.

See docs/mqtt.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any, ClassVar

from prepaid_core.errors import PrepaidError

__all__ = [
    "ACK",
    "CMD",
    "COMMAND_TYPES",
    "EVENT",
    "EVENT_TYPES",
    "KINDS",
    "MAX_PAYLOAD_BYTES",
    "READING",
    "SCHEMA_VERSION",
    "SERVER_SUBSCRIPTIONS",
    "STATUS",
    "TOPIC_PREFIX",
    "Ack",
    "Command",
    "Event",
    "Reading",
    "SchemaError",
    "Status",
    "decode",
    "encode",
    "format_ts",
    "parse_message",
    "parse_topic",
    "subscription",
    "topic_for",
]

# === CONSTANTS === #

SCHEMA_VERSION = 1
TOPIC_PREFIX = f"prepaid/v{SCHEMA_VERSION}"
READING, EVENT, CMD, ACK, STATUS = "reading", "event", "cmd", "ack", "status"
KINDS = (READING, EVENT, CMD, ACK, STATUS)
SERVER_SUBSCRIPTIONS = tuple(f"{TOPIC_PREFIX}/+/{kind}" for kind in (READING, EVENT, ACK, STATUS))
MAX_PAYLOAD_BYTES = 4096
_MAX_TOPIC = 128

RELAY_STATES = ("on", "off")
TOU_BANDS = ("sharp", "peak", "flat", "valley", "deep_valley")
EVENT_TYPES = (
    "relay_on",
    "relay_off",
    "tamper_cover",
    "tamper_magnet",
    "tamper_cleared",
    "power_fail",
    "power_restore",
    "fault",
    "fault_cleared",
    "alarm1",
    "alarm2",
    "credit_exhausted",
    "overload",
    "token_accepted",
    "token_rejected",
    "zeroed",
)
COMMAND_TYPES = (
    "relay_on",
    "relay_off",
    "protect",
    "set_price",
    "set_thresholds",
    "time_sync",
    "zero",
    "credit_token",
    "read_now",
)

# [0-9], not \d: \d also matches the digits of other scripts ("١٢٣...")
_ADDRESS_RE = re.compile(r"[0-9]{12}")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_TS_RE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-]00:00)",
)
_BASE32_TOKEN_RE = re.compile(r"[A-Z2-7]{64}")
_KEYPAD_TOKEN_RE = re.compile(r"[0-9]{20}")
#: C0 controls (NUL included), DEL, C1 controls and (lone) surrogates: never in a text
_BAD_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

_MAX_ENERGY = Decimal("1e10")
_MAX_MONEY = Decimal("1e12")

#: decimals kept by the readings store (prepaid.meter.reading: energy, power and money
#: 16,4 / 12,4, voltage 10,2, current 12,3, power factor 6,3) and by the tariff (price 6)
PLACES = {"energy": 4, "money": 4, "power": 4, "voltage": 2, "current": 3, "pf": 3, "price": 6}
#: a context wide enough for every exact comparison below (values are range-checked first)
_EXACT = Context(prec=64, traps=[InvalidOperation])
_MAX_DEPTH = 8


# === ERRORS === #


class SchemaError(PrepaidError):
    """A topic or payload does not follow the schema; ``path`` names the field."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


def _show(value: Any, limit: int = 40) -> str:
    """A short, printable representation of a value for an error message."""
    if isinstance(value, str):
        text = str.__str__(value)
        return repr(text[:limit]) + ("..." if len(text) > limit else "")
    if isinstance(value, (bool, int, Decimal)) or value is None:
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 200 else "<int>"
        return text[:limit] + ("..." if len(text) > limit else "")
    return f"<{type(value).__name__}>"


# === TOPICS === #


def _check_address(address: str, path: str = "address") -> str:
    if not isinstance(address, str) or not _ADDRESS_RE.fullmatch(address):
        raise SchemaError(path, f"meter address must be 12 digits 0-9, got {_show(address)}")
    return address


def topic_for(address: str, kind: str) -> str:
    """``prepaid/v1/<address>/<kind>``."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise SchemaError("topic", f"unknown kind {_show(kind)}")
    return f"{TOPIC_PREFIX}/{_check_address(address)}/{kind}"


def subscription(kind: str, address: str = "+") -> str:
    """A subscription filter for one kind, for one meter or (``+``) for all."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise SchemaError("topic", f"unknown kind {_show(kind)}")
    if not (isinstance(address, str) and address == "+"):
        _check_address(address)
    return f"{TOPIC_PREFIX}/{address}/{kind}"


def parse_topic(topic: str) -> tuple[str, str]:
    """Return ``(address, kind)`` of a schema topic, or raise ``SchemaError``."""
    if not isinstance(topic, str):
        raise SchemaError("topic", "topic must be a string")
    if len(topic) > _MAX_TOPIC:
        raise SchemaError("topic", f"topic is longer than {_MAX_TOPIC} characters")
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "prepaid" or not parts[1].startswith("v"):
        raise SchemaError("topic", f"not a prepaid topic: {_show(topic, 80)}")
    if parts[1] != f"v{SCHEMA_VERSION}":
        raise SchemaError("topic", f"unsupported schema version {_show(parts[1])}")
    if parts[3] not in KINDS:
        raise SchemaError("topic", f"unknown kind {_show(parts[3])}")
    return _check_address(parts[2], "topic"), parts[3]


# === FIELD VALIDATORS === #


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Reader:
    """Reads the fields of one JSON object, remembering which were used."""

    def __init__(self, obj: Any, path: str):
        if not isinstance(obj, dict):
            raise SchemaError(path, f"must be an object, got {_json_type(obj)}")
        self.obj = obj
        self.path = path
        self.used: set[str] = set()

    def raw(self, name: str, required: bool) -> Any:
        self.used.add(name)
        value = self.obj.get(name)
        if value is None and required:
            raise SchemaError(_join(self.path, name), "is required")
        return value

    def number(
        self,
        name: str,
        *,
        required: bool = False,
        low: Decimal | None = None,
        high: Decimal | None = None,
        low_open: bool = False,
        places: int = 4,
    ) -> Decimal | None:
        value = self.raw(name, required)
        if value is None:
            return None
        return _number(value, _join(self.path, name), low, high, low_open, places)

    def integer(self, name: str, *, required: bool = False, low: int = 0, high: int = 65535):
        value = self.raw(name, required)
        if value is None:
            return None
        path = _join(self.path, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be an integer, got {_json_type(value)}")
        if not low <= value <= high:
            raise SchemaError(path, f"must be in {low}..{high}, got {value}")
        return value

    def text(self, name: str, *, required: bool = False, max_length: int = 200, pattern=None):
        value = self.raw(name, required)
        if value is None:
            return None
        path = _join(self.path, name)
        if not isinstance(value, str):
            raise SchemaError(path, f"must be a string, got {_json_type(value)}")
        return _text(value, path, max_length, pattern)

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False):
        value = self.raw(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or value not in choices:
            raise SchemaError(
                _join(self.path, name), f"must be one of {', '.join(choices)}, got {_show(value)}"
            )
        return value

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        value = self.raw(name, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise SchemaError(_join(self.path, name), f"must be true or false, got {_show(value)}")
        return value

    def timestamp(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.raw(name, required)
        if value is None:
            return None
        return _timestamp(value, _join(self.path, name))

    def done(self) -> None:
        unknown = [key for key in self.obj if key not in self.used]
        if unknown:
            raise SchemaError(_join(self.path, _key_label(unknown[0])), "unknown field")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _number(value, path, low=None, high=None, low_open=False, places=4) -> Decimal:
    """A finite number in ``low..high`` with at most ``places`` decimals (trailing zeros
    aside): what the store keeps exactly, so ``1e-20000`` or ``1e400`` never reach it."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise SchemaError(path, f"must be a number, got {_json_type(value)}")
    if isinstance(value, int) and int.bit_length(value) > 256:
        raise SchemaError(path, "is out of range")
    number = Decimal(value)
    if not number.is_finite():
        raise SchemaError(path, "must be a finite number")
    if low is not None and (number <= low if low_open else number < low):
        raise SchemaError(path, f"must be {'>' if low_open else '>='} {low}, got {_show(number)}")
    if high is not None and number > high:
        raise SchemaError(path, f"must be <= {high}, got {_show(number)}")
    if number.as_tuple().exponent < -places:
        rounded = number.quantize(Decimal(1).scaleb(-places), context=_EXACT)
        if rounded.compare(number, context=_EXACT):
            raise SchemaError(path, f"has more than {places} decimals: {_show(number)}")
        number = rounded  # 1.50000 -> 1.5000: same value, bounded exponent
    return number


def _key_label(key: str) -> str:
    """A field name as it can be shown in a path: itself if short and printable."""
    if len(key) <= 40 and not _BAD_TEXT.search(key):
        return key
    return _show(key)


def _text(value: Any, path: str, max_length: int, pattern=None) -> str:
    """A string of at most ``max_length`` characters, without control characters or
    unpaired surrogates, matching ``pattern`` if given."""
    if not isinstance(value, str):
        raise SchemaError(path, f"must be a string, got {_json_type(value)}")
    if len(value) > max_length:
        raise SchemaError(path, f"is longer than {max_length} characters")
    value = str.__str__(value)
    if _BAD_TEXT.search(value):
        raise SchemaError(path, "holds a control character or an unpaired surrogate")
    if pattern is not None and not pattern.fullmatch(value):
        raise SchemaError(path, f"is not valid: {_show(value, 80)}")
    return value


def _timestamp(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() != timedelta(0):
            raise SchemaError(path, "must be in UTC")
        return value
    if not isinstance(value, str):
        raise SchemaError(path, f"must be an ISO 8601 UTC string, got {_json_type(value)}")
    match = _TS_RE.fullmatch(value) if len(value) <= 40 else None
    if not match:
        raise SchemaError(
            path, f"must be ISO 8601 in UTC like 2025-01-31T12:00:00Z: {_show(value)}"
        )
    day, time_, fraction, _zone = match.groups()
    try:
        stamp = datetime.fromisoformat(f"{day}T{time_}.{(fraction or '').ljust(6, '0')}")
    except ValueError as exc:
        raise SchemaError(path, f"is not a valid date and time: {_show(value)}") from exc
    return stamp.replace(tzinfo=timezone.utc)


def format_ts(stamp: datetime, path: str = "ts") -> str:
    """ISO 8601 UTC with ``Z`` (milliseconds only when present)."""
    if not isinstance(stamp, datetime):
        raise SchemaError(path, f"must be a datetime, got {_show(stamp)}")
    if stamp.tzinfo is None:
        raise SchemaError(path, "must be in UTC")
    try:
        if stamp.utcoffset():
            stamp = stamp.astimezone(timezone.utc)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SchemaError(path, "is out of range once in UTC") from exc
    text = (
        f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}"
        f"T{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
    )
    if stamp.microsecond:
        return f"{text}.{stamp.microsecond // 1000:03d}Z"
    return text + "Z"


# === MESSAGES === #


@dataclass(frozen=True)
class _Message:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, obj: Any, path: str = ""):
        raise NotImplementedError

    def _json(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The message as JSON: the schema version, the message id, then ``fields`` in
        their order, without the empty ones."""
        return _strip_none({"v": SCHEMA_VERSION, "msg_id": self.msg_id, **fields})


def _head(obj: Any, path: str, id_fields: tuple[str, ...] = ("msg_id",)) -> _Reader:
    reader = _Reader(obj, path)
    version = reader.raw("v", True)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise SchemaError(_join(path, "v"), f"unsupported schema version {_show(version)}")
    for name in id_fields:
        reader.text(name, required=True, max_length=64, pattern=_ID_RE)
    return reader


def _strip_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


@dataclass(frozen=True)
class Reading(_Message):
    """Registers and instantaneous values of one meter at ``ts``."""

    kind: ClassVar[str] = READING

    msg_id: str
    ts: datetime
    forward_kwh: Decimal
    relay: str
    reverse_kwh: Decimal | None = None
    tou_kwh: Mapping[str, Decimal] = field(default_factory=dict)
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    power_kw: Decimal | None = None
    pf: Decimal | None = None
    balance: Decimal | None = None
    status_word: int | None = None

    @classmethod
    def from_dict(cls, obj: Any, path: str = "") -> Reading:
        reader = _head(obj, path)
        tou_raw = reader.raw("tou_kwh", False)
        tou: dict[str, Decimal] = {}
        if tou_raw is not None:
            tou_reader = _Reader(tou_raw, _join(path, "tou_kwh"))
            for band in TOU_BANDS:
                value = tou_reader.number(band, low=Decimal(0), high=_MAX_ENERGY)
                if value is not None:
                    tou[band] = value
            tou_reader.done()
        message = cls(
            msg_id=obj["msg_id"],
            ts=reader.timestamp("ts", required=True),
            forward_kwh=reader.number(
                "forward_kwh", required=True, low=Decimal(0), high=_MAX_ENERGY
            ),
            relay=reader.choice("relay", RELAY_STATES, required=True),
            reverse_kwh=reader.number("reverse_kwh", low=Decimal(0), high=_MAX_ENERGY),
            tou_kwh=tou,
            voltage_v=reader.number(
                "voltage_v", low=Decimal(0), high=Decimal(100000), places=PLACES["voltage"]
            ),
            current_a=reader.number(
                "current_a", low=Decimal(0), high=Decimal(100000), places=PLACES["current"]
            ),
            power_kw=reader.number("power_kw", low=Decimal(-100000), high=Decimal(100000)),
            pf=reader.number("pf", low=Decimal(-1), high=Decimal(1), places=PLACES["pf"]),
            balance=reader.number("balance", low=-_MAX_MONEY, high=_MAX_MONEY),
            status_word=reader.integer("status_word", high=0xFFFFFFFF),
        )
        reader.done()
        return message

    def to_dict(self) -> dict[str, Any]:
        return self._json(
            {
                "ts": format_ts(self.ts),
                "forward_kwh": self.forward_kwh,
                "reverse_kwh": self.reverse_kwh,
                "tou_kwh": _mapping_or_none(self.tou_kwh, "tou_kwh"),
                "voltage_v": self.voltage_v,
                "current_a": self.current_a,
                "power_kw": self.power_kw,
                "pf": self.pf,
                "balance": self.balance,
                "relay": self.relay,
                "status_word": self.status_word,
            }
        )


@dataclass(frozen=True)
class Event(_Message):
    """Something that happened on the meter."""

    kind: ClassVar[str] = EVENT

    msg_id: str
    ts: datetime
    event: str
    code: int | None = None
    detail: str | None = None
    relay: str | None = None

    @classmethod
    def from_dict(cls, obj: Any, path: str = "") -> Event:
        reader = _head(obj, path)
        event = reader.choice("event", EVENT_TYPES, required=True)
        message = cls(
            msg_id=obj["msg_id"],
            ts=reader.timestamp("ts", required=True),
            event=event,
            code=reader.integer("code", required=event == "fault"),
            detail=reader.text("detail"),
            relay=reader.choice("relay", RELAY_STATES),
        )
        reader.done()
        return message

    def to_dict(self) -> dict[str, Any]:
        return self._json(
            {
                "ts": format_ts(self.ts),
                "event": self.event,
                "code": self.code,
                "detail": self.detail,
                "relay": self.relay,
            }
        )


def _command_params(cmd: str, raw: Any, path: str) -> dict[str, Any]:
    reader = _Reader({} if raw is None else raw, path)
    params: dict[str, Any] = {}
    if cmd == "protect":
        params["on"] = reader.boolean("on", required=True)
    elif cmd == "set_price":
        params["price"] = reader.number(
            "price",
            required=True,
            low=Decimal(0),
            low_open=True,
            high=_MAX_MONEY,
            places=PLACES["price"],
        )
    elif cmd == "set_thresholds":
        alarm1 = reader.number("alarm1", required=True, low=Decimal(0), high=_MAX_MONEY)
        alarm2 = reader.number("alarm2", required=True, low=Decimal(0), high=_MAX_MONEY)
        if alarm1 < alarm2:
            raise SchemaError(_join(path, "alarm1"), "must be >= alarm2")
        params["alarm1"], params["alarm2"] = alarm1, alarm2
        overload = reader.number("overload_kw", low=Decimal(0), low_open=True, high=_MAX_ENERGY)
        if overload is not None:
            params["overload_kw"] = overload
    elif cmd == "time_sync":
        params["time"] = reader.timestamp("time", required=True)
    elif cmd == "credit_token":
        token = reader.text("token", required=True, max_length=64)
        if not (_BASE32_TOKEN_RE.fullmatch(token) or _KEYPAD_TOKEN_RE.fullmatch(token)):
            raise SchemaError(
                _join(path, "token"), "must be a 64-character base32 or a 20-digit token"
            )
        params["token"] = token
    reader.done()
    return params


def _params_to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    params = _mapping_or_none(params, "params") or {}
    return {
        key: format_ts(value, f"params.{key}") if isinstance(value, datetime) else value
        for key, value in params.items()
    }


def _mapping_or_none(value: Any, path: str) -> dict[str, Any] | None:
    """A mapping field as a plain dict (None when empty), or ``SchemaError``."""
    if value is None:
        return None
    if isinstance(value, dict):
        return dict(dict.items(value)) or None
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"must be a mapping, got {_show(value)}")
    try:
        return dict(value.items()) or None
    except Exception as exc:  # a foreign mapping: whatever its failure, refuse it
        raise SchemaError(path, f"cannot read the {type(value).__name__} mapping") from exc


@dataclass(frozen=True)
class Command(_Message):
    """One instruction for one meter; ``params`` depends on ``cmd``."""

    kind: ClassVar[str] = CMD

    msg_id: str
    cmd_id: str
    ts: datetime
    cmd: str
    params: Mapping[str, Any] = field(default_factory=dict)
    expires: datetime | None = None

    @classmethod
    def from_dict(cls, obj: Any, path: str = "") -> Command:
        reader = _head(obj, path, ("msg_id", "cmd_id"))
        cmd = reader.choice("cmd", COMMAND_TYPES, required=True)
        message = cls(
            msg_id=obj["msg_id"],
            cmd_id=obj["cmd_id"],
            ts=reader.timestamp("ts", required=True),
            cmd=cmd,
            params=_command_params(cmd, reader.raw("params", False), _join(path, "params")),
            expires=reader.timestamp("expires"),
        )
        reader.done()
        return message

    def to_dict(self) -> dict[str, Any]:
        return self._json(
            {
                "cmd_id": self.cmd_id,
                "ts": format_ts(self.ts),
                "cmd": self.cmd,
                "params": _params_to_json(self.params),
                "expires": None if self.expires is None else format_ts(self.expires, "expires"),
            }
        )


@dataclass(frozen=True)
class Ack(_Message):
    """The meter's answer to one command."""

    kind: ClassVar[str] = ACK

    msg_id: str
    ts: datetime
    cmd_id: str
    result: str
    relay: str
    error: str | None = None
    balance: Decimal | None = None
    duplicate: bool = False

    @classmethod
    def from_dict(cls, obj: Any, path: str = "") -> Ack:
        reader = _head(obj, path, ("msg_id", "cmd_id"))
        result = reader.choice("result", ("ok", "failed"), required=True)
        message = cls(
            msg_id=obj["msg_id"],
            ts=reader.timestamp("ts", required=True),
            cmd_id=obj["cmd_id"],
            result=result,
            relay=reader.choice("relay", RELAY_STATES, required=True),
            error=reader.text("error", required=result == "failed"),
            balance=reader.number("balance", low=-_MAX_MONEY, high=_MAX_MONEY),
            duplicate=bool(reader.boolean("duplicate")),
        )
        reader.done()
        return message

    def to_dict(self) -> dict[str, Any]:
        return self._json(
            {
                "ts": format_ts(self.ts),
                "cmd_id": self.cmd_id,
                "result": self.result,
                "relay": self.relay,
                "error": self.error,
                "balance": self.balance,
                "duplicate": None if self.duplicate is False else self.duplicate,
            }
        )


@dataclass(frozen=True)
class Status(_Message):
    """Online on connect, offline as the last will (retained)."""

    kind: ClassVar[str] = STATUS

    msg_id: str
    ts: datetime
    state: str

    @classmethod
    def from_dict(cls, obj: Any, path: str = "") -> Status:
        reader = _head(obj, path)
        message = cls(
            msg_id=obj["msg_id"],
            ts=reader.timestamp("ts", required=True),
            state=reader.choice("state", ("online", "offline"), required=True),
        )
        reader.done()
        return message

    def to_dict(self) -> dict[str, Any]:
        return self._json({"ts": format_ts(self.ts), "state": self.state})


_CLASSES: dict[str, type[_Message]] = {
    READING: Reading,
    EVENT: Event,
    CMD: Command,
    ACK: Ack,
    STATUS: Status,
}
_ENCODABLE = frozenset(_CLASSES.values())


# === JSON === #


def _reject_constant(name: str) -> Any:
    raise SchemaError("", f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise SchemaError(key, "duplicate field")
        obj[key] = value
    return obj


def _loads(payload: bytes | str) -> Any:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise SchemaError("", f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SchemaError("", "payload is not UTF-8") from exc
    elif not isinstance(payload, str):
        raise SchemaError("", "payload must be bytes or str")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise SchemaError("", f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        return json.loads(
            payload,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except SchemaError:
        raise
    except (ValueError, RecursionError) as exc:
        raise SchemaError("", f"payload is not valid JSON: {exc}") from exc


_PLAIN_STRING = re.compile(r'[^"\\\x00-\x1f\x7f-\U0010ffff]*')


_KEYS: dict[str, str] = {}


class _Writer:
    """JSON text of checked values, refused as soon as it outgrows a payload."""

    __slots__ = ("out", "size")

    def __init__(self):
        self.out: list[str] = []
        self.size = 0

    def add(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_PAYLOAD_BYTES:
            raise SchemaError("", f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        self.out.append(text)

    def text(self) -> str:
        return "".join(self.out)


def _dump_key(key: Any) -> str:
    if not isinstance(key, str):
        raise SchemaError("", f"field names must be strings, got {_show(key)}")
    key = str.__str__(key)
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = _dump_str(key)
        if len(_KEYS) < 1024:
            _KEYS[key] = encoded
    return encoded


def _dump_str(value: str) -> str:
    if len(value) > MAX_PAYLOAD_BYTES:
        raise SchemaError("", f"a string is longer than a payload ({MAX_PAYLOAD_BYTES} bytes)")
    if _PLAIN_STRING.fullmatch(value):
        return f'"{value}"'
    if _BAD_TEXT.search(value):
        raise SchemaError("", f"{_show(value)} holds a control character or unpaired surrogate")
    return json.dumps(value, ensure_ascii=False)


def _dump_decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise SchemaError("", f"{_show(value)} is not a JSON number")
    _sign, digits, exponent = value.as_tuple()
    width = max(len(digits) + exponent, 1) + max(-exponent, 0)
    if width > MAX_PAYLOAD_BYTES:
        raise SchemaError("", f"a number of {width} digits does not fit in a payload")
    return format(value, "f")


def _dump(value: Any, out: _Writer, depth: int = 0) -> None:
    kind = type(value)
    if kind is str:
        out.add(_dump_str(value))
    elif kind is Decimal:
        out.add(_dump_decimal(value))
    elif value is None:
        out.add("null")
    elif value is True:
        out.add("true")
    elif value is False:
        out.add("false")
    elif isinstance(value, int):
        if int.bit_length(value) > 4 * MAX_PAYLOAD_BYTES:
            raise SchemaError("", "an integer does not fit in a payload")
        out.add(int.__repr__(value))
    elif isinstance(value, Decimal):
        out.add(_dump_decimal(Decimal(value)))
    elif isinstance(value, str):
        out.add(_dump_str(str.__str__(value)))
    elif depth >= _MAX_DEPTH:
        raise SchemaError("", f"nested deeper than {_MAX_DEPTH} levels")
    elif isinstance(value, dict):
        _dump_object(dict.items(value), out, depth)
    elif isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception as exc:  # a foreign mapping: whatever its failure, refuse it
            raise SchemaError("", f"cannot read the {type(value).__name__} mapping") from exc
        _dump_object(items, out, depth)
    elif isinstance(value, (list, tuple)):
        out.add("[")
        for index, item in enumerate(value):
            if index:
                out.add(",")
            _dump(item, out, depth + 1)
        out.add("]")
    else:
        raise SchemaError("", f"cannot write {type(value).__name__} as JSON")


def _dump_object(items, out: _Writer, depth: int) -> None:
    out.add("{")
    first = True
    for key, item in items:
        if not first:
            out.add(",")
        first = False
        out.add(_dump_key(key))
        out.add(":")
        _dump(item, out, depth + 1)
    out.add("}")


def encode(message: _Message, *, validate: bool = True) -> bytes:
    """UTF-8 JSON of a message; with ``validate`` it is checked as a receiver would.

    Raises ``SchemaError`` only, whatever the message holds; without ``validate`` the
    values are still checked to be writable (finite numbers, text without control
    characters or unpaired surrogates, at most ``MAX_PAYLOAD_BYTES``).
    """
    if type(message) not in _ENCODABLE:
        raise SchemaError("", f"cannot encode {type(message).__name__}: not a schema message")
    out = _Writer()
    _dump(message.to_dict(), out)
    payload = out.text().encode("utf-8")
    if validate:
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise SchemaError("", f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        type(message).from_dict(_loads(payload))
    return payload


def decode(kind: str, payload: bytes | str):
    """Validate a payload of ``kind`` and return its message (``Reading``, ``Event``...)."""
    try:
        cls = _CLASSES[kind]
    except (KeyError, TypeError) as exc:
        raise SchemaError("topic", f"unknown kind {kind!r}") from exc
    return cls.from_dict(_loads(payload))


def parse_message(topic: str, payload: bytes | str):
    """Return ``(address, message)`` for a message received on a schema topic."""
    address, kind = parse_topic(topic)
    return address, decode(kind, payload)
