"""What every bus driver shares: plain jobs in, plain results out, a TCP link settings record.

``poll_bus`` opens a link, serves the bus once and closes it (Odoo's scheduled poll);
``serve_bus`` serves a link that is already open (the gateway runner holds it between
polls).  Both run the same per-meter step of the driver (``serve_meter``)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from dataclasses import dataclass, field

_logger = logging.getLogger(__name__)


class Timeout(Exception):
    """No (matching) answer within the timeout."""


@dataclass
class CommandJob:
    command_id: int
    kind: str
    payload: dict | None = None


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
    host: str
    port: int
    timeout: float = 1.0
    retries: int = 2
    password: str = "02000000"
    operator: str = "00000000"
    #: the meters' local time is UTC + this (DL/T645 times carry no zone)
    utc_offset_minutes: int = 480
    #: validity given to relay commands: a command delayed beyond it is refused by the meter
    valid_minutes: int = 10


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


class TcpLink:
    """One TCP connection to one collector port (one bus); one request at a time.  The
    drivers' links add their protocol's framing (``transact``)."""

    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self.sock = None

    def __enter__(self):
        self.sock = socket.create_connection(
            (self.settings.host, self.settings.port), timeout=self.settings.timeout
        )
        return self

    def __exit__(self, *exc):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _deadline(self) -> float:
        """When the answer to a request sent now is late."""
        return time.monotonic() + self.settings.timeout

    def _receive(self, deadline: float, source: str = "") -> bytes:
        """The next bytes from the collector before ``deadline``; :class:`Timeout` when
        none came (``source`` names who was asked, for the message), ``ConnectionError``
        when the collector closed the connection."""
        late = f"no answer{source} within {self.settings.timeout}s"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(late)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            raise Timeout(late) from None
        if not data:
            raise ConnectionError("collector closed the connection")
        return data


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
        settings = link.settings
        return BusResult(False, f"cannot connect to {settings.host}:{settings.port}: {exc}")
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
    where = f"{link.settings.host}:{link.settings.port}"
    for job in jobs:
        meter = MeterResult(job.meter_id, job.address)
        result.meters.append(meter)
        try:
            serve_meter(link, job, meter)
            if job.read:
                meter.read_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            meter.ok = True
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
