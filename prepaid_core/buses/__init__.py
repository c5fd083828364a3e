"""Bus drivers (G1, G3, G4, G9): DL/T645, Modbus-RTU and DLMS/COSEM over a collector's
transparent TCP ports or local RS-485 adapters (pyserial URLs, ``common.BusLink``), with no
Odoo import.

Odoo's scheduled poll (``meter_gateway``) opens a link per bus for one poll
(``poll_bus``); the gateway runner (``prepaid_core.gateway_runner.collector``) keeps the
links open between polls (``serve_bus``).  Both run the same per-meter step of the bus's
protocol, found in ``DRIVERS``: commands first (a relay command whose answer is lost is
read back, never sent twice blindly: R8), then the reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prepaid_core.buses import common, dlms, dlt645_tcp, modbus_tcp
from prepaid_core.buses.common import (
    BusResult,
    CommandJob,
    CommandOutcome,
    LinkSettings,
    MeterJob,
    MeterResult,
    Timeout,
)
from prepaid_core.protocols import modbus
from prepaid_core.protocols.dlt645_data import DLT645Error

__all__ = [
    "DRIVERS",
    "POLLED_VALUES",
    "BusDriver",
    "BusResult",
    "CommandJob",
    "CommandOutcome",
    "LinkSettings",
    "MeterJob",
    "MeterResult",
    "Timeout",
    "poll_bus",
    "serve_bus",
]


#: the values of a poll that make a reading (of ``MeterResult.values``)
POLLED_VALUES = (
    "forward_total",
    "reverse_total",
    "tou_sharp",
    "tou_peak",
    "tou_flat",
    "tou_valley",
    "power",
    "relay_state",
    "status_word",
    "meter_balance",
)


@dataclass(frozen=True)
class BusDriver:
    """What a protocol brings: its link (one port to the bus, one request at a time), the
    per-meter step and the device errors that fail one meter without ending the bus."""

    link: type
    serve_meter: Callable
    device_errors: tuple[type[Exception], ...]


#: bus protocol (``prepaid.gateway.bus`` ``protocol``) -> its driver
DRIVERS = {
    "dlt645_2007": BusDriver(dlt645_tcp.Link, dlt645_tcp.serve_meter, (DLT645Error,)),
    "dlt645_1997": BusDriver(dlt645_tcp.Link, dlt645_tcp.serve_meter_1997, (DLT645Error,)),
    "modbus_rtu": BusDriver(modbus_tcp.Link, modbus_tcp.serve_meter, (modbus.ModbusCodecError,)),
    "dlms_hdlc": BusDriver(dlms.Link, dlms.serve_meter_hdlc, (dlms.DlmsError,)),
    "dlms_wrapper": BusDriver(dlms.Link, dlms.serve_meter_wrapper, (dlms.DlmsError,)),
}


def poll_bus(protocol: str, settings: LinkSettings, jobs: list[MeterJob]) -> BusResult:
    """Open a link to the bus, serve its meters in turn, close it."""
    driver = DRIVERS[protocol]
    return common.poll_bus(driver.link(settings), jobs, driver.serve_meter, driver.device_errors)


def serve_bus(protocol: str, link, jobs: list[MeterJob]) -> BusResult:
    """Serve the meters of a bus in turn over ``link``, open already (left open unless the
    connection was lost)."""
    driver = DRIVERS[protocol]
    return common.serve_bus(link, jobs, driver.serve_meter, driver.device_errors)
