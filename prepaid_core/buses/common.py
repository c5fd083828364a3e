"""What every bus driver shares: plain jobs in, plain results out, the link to one bus.

A link is a pyserial port opened from a URL (``serial.serial_for_url``): a collector's
transparent TCP port (``socket://host:port``) and a local RS-485 adapter
(``/dev/ttyUSB0`` at 2400 8E1) are served by the same code.  ``poll_bus`` opens a link,
serves the bus once and closes it (Odoo's scheduled poll); ``serve_bus`` serves a link
that is already open (the gateway runner holds it between polls).  Both run the same
per-meter step of the driver (``serve_meter``)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import socket
import time
from dataclasses import dataclass, field

import serial

try:
    from termios import error as _LineSettingsRefused  # a port that refuses a line setting
except ImportError:  # pragma: no cover - not a POSIX system
    _LineSettingsRefused = ValueError

_logger = logging.getLogger(__name__)


class Timeout(Exception):
    """No (matching) answer within the timeout."""


class DeviceRefused(Exception):
    """The meter answered, refusing what the reading needs (a slave error reply): its
    reading fails with that reason, yet it is reachable, not on its way to *lost*."""


@dataclass
class CommandJob:
    command_id: int
    kind: str
    payload: dict | None = None


#: the secrets of a DLMS association, sent in hexadecimal in a gateway runner's config
_DLMS_SECRETS = ("password", "system_title", "block_cipher_key", "authentication_key")
_DLMS_CHOICES = {
    "interface": ("hdlc", "wrapper"),
    "authentication": ("none", "low", "high_gmac"),
    "security": ("none", "authentication", "encryption", "authentication_encryption"),
}


@dataclass(frozen=True)
class DlmsSettings:
    """How to reach one DLMS/COSEM meter (G9, IEC 62056): its addresses, the client it is
    read as and the security of that association.  Keys and password are plain bytes here:
    they are decrypted by the caller for one poll and never logged (not in the repr)."""

    interface: str = "wrapper"  # "hdlc" (IEC 62056-46, behind a collector) or "wrapper" (TCP)
    client_address: int = 16  # 16: public client; 1: management client (usual)
    logical_address: int = 1  # the meter's logical device (1: management)
    physical_address: int = 0  # HDLC: the meter's own (lower) address on its bus
    authentication: str = "none"  # "none", "low" (password) or "high_gmac" (HLS, suite 0)
    #: ciphering of the association (suite 0, AES-GCM-128): "none", "authentication",
    #: "encryption" or "authentication_encryption"
    security: str = "none"
    password: bytes = field(default=b"", repr=False)
    system_title: bytes = b""  # the client's 8-byte system title (ciphered associations)
    block_cipher_key: bytes = field(default=b"", repr=False)
    authentication_key: bytes = field(default=b"", repr=False)
    #: read by the public client before a ciphered association: the meter's frame counter
    invocation_counter_obis: str = "0.0.43.1.0.255"

    def to_config(self) -> dict:
        """The settings as JSON values (bytes in hexadecimal), for a gateway runner."""
        config = dataclasses.asdict(self)
        config.update({name: getattr(self, name).hex() for name in _DLMS_SECRETS})
        return config

    @classmethod
    def from_config(cls, config) -> DlmsSettings:
        """Settings from :meth:`to_config`'s form; ``ValueError`` naming the field that is
        missing, unknown or not what it must be."""
        if not isinstance(config, dict):
            raise ValueError("dlms: settings must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(config) - names):
            raise ValueError(f"dlms: unknown settings {', '.join(unknown)}")
        values = {}
        for item in dataclasses.fields(cls):
            value = config.get(item.name, item.default)
            values[item.name] = _dlms_config_value(item.name, value)
        return cls(**values)


def _dlms_config_value(name: str, value):
    """One field of a DLMS config, checked (hexadecimal secrets decoded)."""
    if name in _DLMS_SECRETS:
        if isinstance(value, bytes):
            return value
        try:
            return bytes.fromhex(value)
        except (TypeError, ValueError):
            raise ValueError(f"dlms: {name} must be hexadecimal") from None
    if name in _DLMS_CHOICES:
        if value not in _DLMS_CHOICES[name]:
            raise ValueError(f"dlms: {name} must be one of {', '.join(_DLMS_CHOICES[name])}")
        return value
    if name == "invocation_counter_obis":
        if not isinstance(value, str):
            raise ValueError("dlms: invocation_counter_obis must be a text")
        return value
    if type(value) is not int or not 0 <= value <= 0x3FFF:
        raise ValueError(f"dlms: {name} must be a whole number from 0 to 16383")
    return value


@dataclass
class MeterJob:
    meter_id: int
    address: str
    commands: list[CommandJob] = field(default_factory=list)
    unit_id: int = 0  # Modbus unit id
    register_map: str = ""  # Modbus register map (prepaid_core.protocols.modbus_maps)
    read: bool = True  # read the meter after its commands (off: commands only)
    read_daily_frozen: bool = False  # also read the last daily frozen energy (DL/T645)
    read_clock: bool = False  # also read the meter's date and time: its drift (DL/T645)
    #: DL/T645: how the meter's energy was read last ("block" or "items"; "" not known)
    read_mode: str = ""
    #: DL/T645: the register that bills ("combined", "forward", "forward_reverse")
    billing_register: str = "combined"
    read_balance: bool = False  # also read the meter's own remaining balance
    dlms: DlmsSettings | None = None  # DLMS/COSEM: addresses and security of the meter
    #: DL/T645, as the meter model says: "auto" (block, single items when refused, the
    #: way that worked tried first), or "block" or "items" only
    read_way: str = "auto"
    wake_up_bytes: int = 4  # DL/T645: FE bytes before each frame to wake the meter (0-4)


@dataclass
class CommandOutcome:
    command_id: int
    success: bool
    reason: str
    delivered: bool = True  # the request went on the wire
    permanent: bool = False  # retrying cannot help (refused by the meter, unsupported)


@dataclass
class MeterResult:
    meter_id: int
    address: str
    ok: bool = False
    error: str = ""
    answered: bool = False  # not ok, yet the meter answered (``DeviceRefused``)
    read_at: dt.datetime | None = None
    values: dict = field(default_factory=dict)
    outcomes: list[CommandOutcome] = field(default_factory=list)


@dataclass
class BusResult:
    connected: bool
    error: str = ""
    meters: list[MeterResult] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class LinkSettings:
    """How to reach one bus and talk to its meters.  ``url`` is a pyserial URL: a
    collector's TCP port (``socket://host:port``, derived from ``host`` and ``port`` when
    not given) or a serial device (``/dev/ttyUSB0``) at ``baudrate``, ``bytesize``,
    ``parity`` (``N``, ``E`` or ``O``) and ``stopbits`` (a TCP port ignores these)."""

    host: str = ""
    port: int = 0
    timeout: float = 1.0
    retries: int = 2
    password: str = "02000000"
    operator: str = "00000000"
    #: the meters' local time is UTC + this (DL/T645 times carry no zone)
    utc_offset_minutes: int = 480
    #: validity given to relay commands: a command delayed beyond it is refused by the meter
    valid_minutes: int = 10
    url: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1

    def __post_init__(self):
        if not self.url:
            if not self.host:
                raise ValueError("a bus link needs a URL, or a host and a port")
            self.url = f"socket://{self.host}:{self.port}"

    @property
    def where(self) -> str:
        """The bus in messages: the collector's host:port, or the serial device."""
        return self.url.removeprefix("socket://")


def read_back_outcome(command_id: int, read_back) -> CommandOutcome:
    """R8: the answer to a command was lost; ``read_back()`` tells whether the meter shows
    the command executed (it is never sent again blindly)."""
    try:
        matches = read_back()
    except Timeout:
        return CommandOutcome(command_id, False, "no answer, read-back failed too")
    if matches:
        return CommandOutcome(command_id, True, "answer lost; read-back shows the command executed")
    return CommandOutcome(command_id, False, "no answer; read-back shows it did not run")


class BusLink:
    """One open port to one bus (pyserial, from ``settings.url``); one request at a time.
    The drivers' links add their protocol's framing (``transact``)."""

    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self.serial = None

    def __enter__(self):
        s = self.settings
        port = serial.serial_for_url(
            s.url,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            timeout=s.timeout,
        )
        try:
            # configured again (setting the timeout does): a device that silently dropped
            # a line setting the first time (a pseudo-terminal drops the parity) refuses it
            port.timeout = s.timeout
        except (ValueError, _LineSettingsRefused) as exc:
            _close(port)
            raise serial.SerialException(f"line settings refused: {exc}") from exc
        self.serial = port
        return self

    def __exit__(self, *exc):
        if self.serial is not None:
            _close(self.serial)
            self.serial = None

    def send(self, data: bytes) -> None:
        self.serial.write(data)

    def drain(self) -> None:
        """Drop bytes waiting from an earlier request (a late answer)."""
        self.serial.reset_input_buffer()

    def alive(self) -> bool:
        """Whether an idle link is still open (a collector that closed its end, an adapter
        unplugged); bytes waiting, late answers of an earlier request, are dropped."""
        if self.serial is None:
            return False
        try:
            self.serial.timeout = 0
            self.serial.read(4096)
        except serial.SerialException:
            return False
        return True

    def _deadline(self) -> float:
        """When the answer to a request sent now is late."""
        return time.monotonic() + self.settings.timeout

    def _receive(self, deadline: float, source: str = "") -> bytes:
        """The next bytes from the bus before ``deadline``; :class:`Timeout` when none
        came (``source`` names who was asked, for the message), ``ConnectionError`` when
        the collector closed the connection or the device went away."""
        late = f"no answer{source} within {self.settings.timeout}s"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(late)
        port = self.serial
        try:
            port.timeout = remaining
            data = port.read(1)  # the first byte, waited for until the deadline
            if data:
                port.timeout = 0
                data += port.read(4096)  # and whatever came with it
        except serial.SerialException as exc:
            raise ConnectionError(f"the bus link closed: {exc}") from None
        if not data:
            raise Timeout(late)
        return data


def _close(port) -> None:
    """Close a pyserial port.  pyserial's ``socket://`` port waits 0.3 s after closing its
    socket (a pause for quick reconnects to the same server) that would lengthen every
    poll of a bus: its socket is closed here without it."""
    sock = getattr(port, "_socket", None)
    if sock is None:
        port.close()
        return
    port._socket, port.is_open = None, False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def poll_bus(link, jobs, serve_meter, device_errors) -> BusResult:
    """The loop every driver runs on one bus: open ``link``, then for each meter in turn
    ``serve_meter(link, job, meter_result)`` (commands first, then the reading it stores in
    ``meter_result.values``), then close it.  A device error (``device_errors``) fails that
    meter only; a lost connection ends the bus.  Never raises for device errors: they are
    in the result."""
    started = time.monotonic()
    try:
        link.__enter__()
    except OSError as exc:
        return BusResult(False, f"cannot connect to {link.settings.where}: {exc}")
    try:
        result = serve_bus(link, jobs, serve_meter, device_errors)
    finally:
        link.__exit__()
    result.seconds = time.monotonic() - started
    return result


def serve_bus(link, jobs, serve_meter, device_errors) -> BusResult:
    """``poll_bus`` on a link that is open already, left open unless the connection was
    lost (then ``result.error`` says why and the link is closed: the caller reconnects).

    One meter's failure of any kind (no answer, a garbled or absurd reply, a value or a
    map the driver cannot use, a bug) fails that meter only: its reason is in its
    result and in the log, with its address, and the next meter is served (R12)."""
    started = time.monotonic()
    result = BusResult(True)
    where = link.settings.where
    for job in jobs:
        meter = MeterResult(job.meter_id, job.address)
        result.meters.append(meter)
        try:
            serve_meter(link, job, meter)
            if job.read:
                meter.read_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            meter.ok = True
        except DeviceRefused as exc:
            meter.error, meter.answered = str(exc), True
            _logger.warning("bus %s: meter %s refused: %s", where, job.address, meter.error)
        except (Timeout, *device_errors) as exc:
            meter.error = str(exc) or type(exc).__name__
            _logger.warning("bus %s: meter %s failed: %s", where, job.address, meter.error)
        except OSError as exc:
            meter.error = f"connection lost: {exc}"
            result.error = meter.error
            _logger.warning("bus %s: %s (at meter %s)", where, meter.error, job.address)
            link.__exit__()
            break
        except Exception as exc:
            meter.error = f"unexpected {type(exc).__name__}: {exc}"
            _logger.exception("bus %s: meter %s failed: %s", where, job.address, meter.error)
        if not meter.ok:
            meter.values = {}
    result.seconds = time.monotonic() - started
    return result


def run_command(execute, command_id: int, device_errors) -> CommandOutcome:
    """``execute()`` (one command of a meter, giving its outcome), any failure of its own
    turned into its outcome: a garbled answer (``device_errors``) is retried, anything
    else (a payload the driver cannot use) fails the command for good.  Timeouts and a
    lost connection are the meter's and the bus's: they go up."""
    try:
        return execute()
    except (Timeout, OSError):
        raise
    except device_errors as exc:
        return CommandOutcome(command_id, False, f"bad answer: {exc}")
    except Exception as exc:
        _logger.exception("command %s failed", command_id)
        return CommandOutcome(
            command_id, False, f"unexpected {type(exc).__name__}: {exc}", permanent=True
        )
