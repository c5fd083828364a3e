"""What every driver shares: plain jobs in, plain results out, a TCP link settings record."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field


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


def poll_bus(link, jobs, serve_meter, device_errors) -> BusResult:
    """The loop every driver runs on one bus: open ``link``, then for each meter in turn
    ``serve_meter(link, job, meter_result)`` (commands first, then the reading it stores in
    ``meter_result.values``).  A device error (``device_errors``) fails that meter only; a
    lost connection ends the bus.  Never raises for device errors: they are in the result."""
    started = time.monotonic()
    try:
        link.__enter__()
    except OSError as exc:
        settings = link.settings
        return BusResult(False, f"cannot connect to {settings.host}:{settings.port}: {exc}")
    result = BusResult(True)
    try:
        for job in jobs:
            meter = MeterResult(job.meter_id, job.address)
            result.meters.append(meter)
            try:
                serve_meter(link, job, meter)
                meter.read_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
                meter.ok = True
            except (Timeout, *device_errors) as exc:
                meter.error = str(exc)
            except OSError as exc:
                meter.error = f"connection lost: {exc}"
                result.error = meter.error
                break
    finally:
        link.__exit__()
    result.seconds = time.monotonic() - started
    return result
