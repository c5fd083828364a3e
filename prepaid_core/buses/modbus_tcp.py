"""Modbus-RTU on one RS-485 bus (a collector's TCP port or a local serial adapter), with no
Odoo import.

Same contract as ``dlt645_tcp.poll_bus``: the meters of one bus in turn, commands first, then
one coalesced read of the registers; a relay write whose answer is lost is checked by reading
the relay register back, never written twice blindly (R8).
"""

from __future__ import annotations

from decimal import Decimal

from prepaid_core.protocols import modbus

from . import common
from .common import (
    BusResult,
    CommandJob,
    CommandOutcome,
    LinkSettings,
    MeterJob,
    Timeout,
)

#: the measures a poll reads, those the meter's map has
READ_FIELDS = (
    "total_energy",
    "import_energy",
    "sharp_energy",
    "peak_energy",
    "flat_energy",
    "valley_energy",
    "active_power",
    "remaining_balance",
    "relay_state",
)
#: measure -> reading value; a meter with an import (forward) register bills by it, not by
#: its total (forward + reverse on bidirectional meters)
READING_NAMES = {
    "total_energy": "forward_total",
    "import_energy": "forward_total",
    "sharp_energy": "tou_sharp",
    "peak_energy": "tou_peak",
    "flat_energy": "tou_flat",
    "valley_energy": "tou_valley",
    "active_power": "power",
    "remaining_balance": "meter_balance",
}
#: registers read in one request across a gap of at most this many (mapped) registers
MAX_GAP = 2


class Link(common.BusLink):
    """One Modbus-RTU bus (a collector's TCP port or a serial device); one request at a time."""

    def transact(self, request: bytes, response_length: int) -> bytes:
        self.drain()
        self.send(request)
        deadline = self._deadline()
        buffer = b""
        while True:
            if len(buffer) >= 5 and buffer[1] & 0x80:
                return buffer[:5]  # exception response
            if len(buffer) >= response_length:
                return buffer[:response_length]
            buffer += self._receive(deadline)

    def read_values(self, job: MeterJob, names=READ_FIELDS) -> dict:
        regmap = modbus.register_map(job.register_map)
        names = [name for name in names if name in regmap]
        values = {}
        for request in modbus.build_read_requests(job.unit_id, regmap, names, max_gap=MAX_GAP):
            for attempt in range(self.settings.retries + 1):
                try:
                    reply = self.transact(request, request.response_length)
                    values.update(modbus.decode_read_response(reply, request))
                    break
                except Timeout:
                    if attempt == self.settings.retries:
                        raise
        return values


def _write(link: Link, request) -> None:
    modbus.check_write_response(link.transact(request, request.response_length), request)


def execute_command(link: Link, job: MeterJob, command: CommandJob) -> CommandOutcome:
    regmap = modbus.register_map(job.register_map)
    payload = command.payload or {}
    try:
        if command.kind in ("relay_on", "relay_off"):
            requests = [modbus.build_relay_write(job.unit_id, regmap, command.kind == "relay_on")]
        elif command.kind == "price":
            requests = [
                modbus.build_write(job.unit_id, regmap, "price", Decimal(str(payload["price"])))
            ]
        elif command.kind == "thresholds":
            requests = [
                modbus.build_write(job.unit_id, regmap, name, Decimal(str(payload[key])))
                for name, key in (("alarm_amount_1", "alarm1"), ("alarm_amount_2", "alarm2"))
            ]
        else:
            return CommandOutcome(
                command.command_id,
                False,
                f"command {command.kind} is not supported over Modbus",
                delivered=False,
                permanent=True,
            )
    except (KeyError, ArithmeticError, modbus.ModbusCodecError) as exc:
        return CommandOutcome(command.command_id, False, f"bad command: {exc}", permanent=True)
    try:
        for request in requests:
            _write(link, request)
    except modbus.ModbusExceptionResponse as exc:
        return CommandOutcome(command.command_id, False, f"meter refused: {exc}", permanent=True)
    except (Timeout, modbus.ModbusCodecError) as exc:
        if command.kind not in ("relay_on", "relay_off"):
            return CommandOutcome(command.command_id, False, str(exc))
        return common.read_back_outcome(
            command.command_id, lambda: _relay_matches(link, job, command)
        )
    if command.kind in ("relay_on", "relay_off"):
        if not _relay_matches(link, job, command):
            return CommandOutcome(command.command_id, False, "acknowledged, but read-back differs")
        return CommandOutcome(command.command_id, True, "acknowledged; read-back confirms")
    return CommandOutcome(command.command_id, True, "acknowledged")


def _relay_matches(link: Link, job: MeterJob, command: CommandJob) -> bool:
    state = link.read_values(job, ("relay_state",))["relay_state"]
    return ("off" if state else "on") == command.kind.removeprefix("relay_")


def serve_meter(link: Link, job: MeterJob, meter) -> None:
    """The meter's commands, then its reading (unless ``job.read`` is off)."""
    for command in job.commands:
        meter.outcomes.append(
            common.run_command(
                lambda command=command: execute_command(link, job, command),
                command.command_id,
                modbus.ModbusCodecError,
            )
        )
    if not job.read:
        return
    meter.values = reading_values(link.read_values(job))


def reading_values(raw: dict) -> dict:
    """The reading values of a meter's measures (``READING_NAMES``; import before total)."""
    values = {
        READING_NAMES[name]: raw[name]
        for name in sorted(raw, key=lambda name: name == "import_energy")
        if name in READING_NAMES
    }
    if "relay_state" in raw:
        values["relay_state"] = "off" if raw["relay_state"] else "on"
    return values


def poll_bus(settings: LinkSettings, jobs: list[MeterJob]) -> BusResult:
    """Commands then readings for each meter of one bus, in turn."""
    return common.poll_bus(Link(settings), jobs, serve_meter, (modbus.ModbusCodecError,))
