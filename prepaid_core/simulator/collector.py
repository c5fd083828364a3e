"""TCP collectors (serial servers) with RS-485 buses of virtual meters (G7).

A ``Collector`` exposes each of its buses as a TCP port in transparent mode, as a serial
device server does; a ``Bus`` carries up to 32 meters of one protocol, answered by
``Dlt645Responder`` (DL/T645-2007, with the -1997 reads) or ``ModbusResponder``, with the
wire time of the bus emulated and silence where a real bus would be silent. Fault hooks
(lost, stale, foreign or corrupt replies, a collector outage) serve the gateway's tests.

See docs/simulator.md (what a meter answers, wire time, faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from prepaid_core.protocols import dlt645, modbus
from prepaid_core.protocols.dlt645_data import DLT645Error, MeterStatus3, is_block
from prepaid_core.simulator.meter import VirtualMeter

__all__ = [
    "BITS_PER_BYTE",
    "MAX_METERS_PER_BUS",
    "Bus",
    "Collector",
    "Dlt645Responder",
    "ModbusResponder",
    "wire_time",
]

_logger = logging.getLogger(__name__)

MAX_METERS_PER_BUS = 32
BITS_PER_BYTE = 11  # 8E1
WILDCARD = dlt645.WILDCARD_ADDRESS
BROADCAST = dlt645.BROADCAST_ADDRESS
_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def wire_time(n_bytes: int, baud: int) -> float:
    """Seconds ``n_bytes`` take on an 8E1 serial line at ``baud``."""
    return n_bytes * BITS_PER_BYTE / baud


def _local_naive(meter: VirtualMeter) -> dt.datetime:
    """The meter's local wall-clock time (DL/T645 times carry no zone)."""
    offset = dt.timedelta(minutes=meter.profile.utc_offset_minutes)
    return (meter.local_now() + offset).replace(tzinfo=None)


def _from_local_naive(meter: VirtualMeter, when: dt.datetime) -> dt.datetime:
    offset = dt.timedelta(minutes=meter.profile.utc_offset_minutes)
    return (when - offset).replace(tzinfo=dt.timezone.utc)


# === DL/T645 === #

_TARIFF_BANDS = ("sharp", "peak", "flat", "valley")


class Dlt645Responder:
    """A DL/T645-2007 meter's protocol face over a ``VirtualMeter``."""

    protocol = "dlt645"

    def __init__(
        self,
        meter: VirtualMeter,
        *,
        password: str = "02000000",
        preamble: int = 4,
        refuses_blocks: bool = False,
    ):
        self.meter = meter
        self.address = meter.address
        self.password = password.upper()
        self.preamble = preamble
        #: fault injection: the next N read replies are garbled as ``corruption`` says:
        #: ``"non_bcd"`` (value digits FH: not BCD) or ``"no_value"`` (the identifier alone)
        self.corrupt_reads = 0
        self.corruption = "non_bcd"
        #: quirk of many real meters: "no data" to every block (DI with FF), single
        #: items only
        self.refuses_blocks = refuses_blocks
        #: data identifiers the meter has not: "no data" (a meter without combined energy)
        self.missing: set[int] = set()
        #: fault injection: the next N reads are answered with another item's reply only
        self.wrong_item_replies = 0
        #: the data identifiers read from this meter, oldest first (the last 1000)
        self.reads: deque[int] = deque(maxlen=1000)

    def matches(self, address: str) -> bool:
        """Exact address, or AA bytes as wildcards."""
        return all(
            want == "AA" or want == have
            for want, have in zip(
                (address[i : i + 2] for i in range(0, 12, 2)),
                (self.address[i : i + 2] for i in range(0, 12, 2)),
                strict=True,
            )
        )

    # --- values --- #

    def _values_2007(self) -> dict[int, object]:
        snap = self.meter.snapshot()
        tou = [snap.tou_kwh[band] for band in _TARIFF_BANDS]
        now = _local_naive(self.meter)
        meter = self.meter
        values: dict[int, object] = {
            0x00000000: snap.forward_kwh,
            0x0000FF00: (snap.forward_kwh, *tou),
            0x00010000: snap.import_kwh,
            0x0001FF00: (snap.import_kwh, *tou),
            0x00020000: snap.reverse_kwh,
            0x02010100: snap.voltage_v,
            0x0201FF00: (snap.voltage_v,),
            0x02020100: snap.current_a,
            0x0202FF00: (snap.current_a,),
            0x02030000: snap.power_kw,
            0x02030100: snap.power_kw,
            0x0203FF00: (snap.power_kw, snap.power_kw),
            0x02060000: snap.pf,
            0x02060100: snap.pf,
            0x00900200: max(snap.balance, Decimal(0)),
            0x00900201: max(-snap.balance, Decimal(0)),
            0x04001001: snap.alarm1,
            0x04001002: snap.alarm2,
            0x04001004: meter.config.overdraft_limit,
            0x04000503: MeterStatus3.to_word(
                relay_off=snap.relay == "off",
                pre_trip_alarm=snap.balance < snap.alarm2,
                relay_command_off="remote" in meter.cut_reasons,
                protected=snap.protect,
                prepaid_type=2,
            ),
            0x04000101: now.date(),
            0x04000102: now.time(),
            0x04000401: self.address,
            0x04000402: self.address,
        }
        freeze = meter.daily_freeze
        if freeze is not None:
            values[0x05060001] = freeze.at
            values[0x05060101] = (
                freeze.import_kwh,
                *(freeze.tou_kwh[band] for band in _TARIFF_BANDS),
            )
        for n, band in enumerate(_TARIFF_BANDS, start=1):
            values[0x00000000 + (n << 8)] = snap.tou_kwh[band]
            values[0x00010000 + (n << 8)] = snap.tou_kwh[band]
            values[0x04050100 + n] = snap.price
        for n in (1, 2, 4, 5, 6, 7):
            values[0x04000500 + n] = 0
        return values

    def _values_1997(self) -> dict[int, object]:
        snap = self.meter.snapshot()
        tou = [snap.tou_kwh[band] for band in _TARIFF_BANDS]
        now = _local_naive(self.meter)
        values: dict[int, object] = {
            0x9010: snap.forward_kwh,
            0x901F: (snap.forward_kwh, *tou),
            0x9020: snap.reverse_kwh,
            0xB611: snap.voltage_v.to_integral_value(),
            0xB621: abs(snap.current_a).quantize(Decimal("0.01")),
            0xB630: abs(snap.power_kw),
            0xB650: abs(snap.pf),
            0xC010: now.date(),
            0xC011: now.time(),
        }
        for n, band in enumerate(_TARIFF_BANDS, start=1):
            values[0x9010 + n] = snap.tou_kwh[band]
        return values

    # --- requests --- #

    def answer(self, frame: dlt645.Frame) -> bytes:
        """The reply to one request addressed to this meter (``b""`` = silence)."""
        if not self.meter.powered:
            return b""
        try:
            request = dlt645.parse_request(frame)
        except DLT645Error:
            return self._error(frame.control, dlt645.ErrorBits.OTHER)
        handler = getattr(self, f"_on_{request.kind}", None)
        if handler is None:
            return self._error(frame.control, dlt645.ErrorBits.OTHER)
        return handler(request)

    def _error(self, control: int, bits: int) -> bytes:
        return dlt645.build_error_reply(self.address, control, bits, preamble=self.preamble)

    def _on_read(self, request: dlt645.Request) -> bytes:
        self.reads.append(request.di)
        if self.wrong_item_replies > 0:
            self.wrong_item_replies -= 1
            return self.other_item_reply(request.frame)
        return self._read_reply(request.di, 2007)

    def _on_read_1997(self, request: dlt645.Request) -> bytes:
        self.reads.append(request.di)
        return self._read_reply(request.di, 1997)

    def _read_reply(self, di: int, version: int) -> bytes:
        values = self._values_2007() if version == 2007 else self._values_1997()
        value = values.get(di)
        refused = di in self.missing or (self.refuses_blocks and is_block(di, version))
        if value is None or refused:
            return self._error(0x11 if version == 2007 else 0x01, dlt645.ErrorBits.NO_DATA)
        reply = dlt645.build_read_reply(
            self.address, di, value, version=version, preamble=self.preamble
        )
        if self.corrupt_reads > 0:
            self.corrupt_reads -= 1
            reply = self._corrupted(reply, 4 if version == 2007 else 2)
        return reply

    def _corrupted(self, reply: bytes, di_size: int) -> bytes:
        """``reply`` garbled as ``corruption`` says, in a well-formed frame."""
        frame = dlt645.decode(reply)[1]
        di, value = frame.data[:di_size], frame.data[di_size:]
        if self.corruption == "no_value":
            value = b""
        else:
            value = b"\xfa" * len(value)
        return dlt645.encode_frame(self.address, frame.control, di + value, preamble=self.preamble)

    def same_item_reply(self, frame: dlt645.Frame) -> bytes:
        """This meter's reply to the read ``frame`` asks of another meter (``b""`` when
        ``frame`` is no read)."""
        try:
            request = dlt645.parse_request(frame)
        except DLT645Error:
            return b""
        if request.kind not in ("read", "read_1997"):
            return b""
        return self._read_reply(request.di, 2007 if request.kind == "read" else 1997)

    def other_item_reply(self, frame: dlt645.Frame) -> bytes:
        """The reply this meter gives to a read of another item than ``frame`` asks (a
        late reply to an earlier request, as a slow meter sends it); ``b""`` when
        ``frame`` is no read."""
        try:
            request = dlt645.parse_request(frame)
        except DLT645Error:
            return b""
        if request.kind == "read":
            other = 0x00900200 if request.di != 0x00900200 else 0x00000000
            return self._read_reply(other, 2007)
        if request.kind == "read_1997":
            other = 0xB630 if request.di != 0xB630 else 0x9010
            return self._read_reply(other, 1997)
        return b""

    def _on_read_address(self, request: dlt645.Request) -> bytes:
        return dlt645.build_address_reply(self.address, preamble=self.preamble)

    def _on_broadcast_time(self, request: dlt645.Request) -> bytes:
        self.meter.time_sync(_from_local_naive(self.meter, request.time))
        return b""

    def _authorised(self, request: dlt645.Request) -> bool:
        return request.password.upper() == self.password

    def _on_write(self, request: dlt645.Request) -> bytes:
        if not self._authorised(request):
            return self._error(request.control, dlt645.ErrorBits.UNAUTHORIZED)
        meter, di, value = self.meter, request.di, request.value
        try:
            if di == 0x04001001:
                meter.set_thresholds(value, min(meter.alarm2, value))
            elif di == 0x04001002:
                meter.set_thresholds(max(meter.alarm1, value), value)
            elif 0x04050101 <= di <= 0x04050104:
                meter.set_price(value)
            elif di == 0x04000101:
                local = _local_naive(meter)
                meter.time_sync(_from_local_naive(meter, dt.datetime.combine(value, local.time())))
            elif di == 0x04000102:
                local = _local_naive(meter)
                meter.time_sync(_from_local_naive(meter, dt.datetime.combine(local.date(), value)))
            else:
                return self._error(request.control, dlt645.ErrorBits.OTHER)
        except (TypeError, ValueError):
            return self._error(request.control, dlt645.ErrorBits.OTHER)
        return dlt645.build_ack(self.address, request.control, preamble=self.preamble)

    def _on_other(self, request: dlt645.Request) -> bytes:
        """Meter clear (1AH, "zeroing": consumption and balance): password + operator.

        Adapter: the codec parses 1AH as ``other``; the password is read here as the codec
        writes it (level byte, then the password low byte first).
        """
        if request.frame.function != dlt645.Function.CLEAR_METER or len(request.params) < 8:
            return self._error(request.control, dlt645.ErrorBits.OTHER)
        raw = request.params[:4]
        if (raw[:1] + raw[:0:-1]).hex().upper() != self.password:
            return self._error(request.control, dlt645.ErrorBits.UNAUTHORIZED)
        self.meter.zero()
        return dlt645.build_ack(self.address, request.control, preamble=self.preamble)

    def _on_relay(self, request: dlt645.Request) -> bytes:
        if not self._authorised(request):
            return self._error(request.control, dlt645.ErrorBits.UNAUTHORIZED)
        if request.valid_until is not None and request.valid_until < _local_naive(self.meter):
            return self._error(request.control, dlt645.ErrorBits.OTHER)  # stale command
        command = request.relay_command
        RC = dlt645.RelayCommand
        if command == RC.TRIP:
            self.meter.relay_off()
        elif command in (RC.CLOSE_ALLOWED, RC.DIRECT_CLOSE):
            self.meter.relay_on()
        elif command in (RC.PROTECT, RC.PROTECT_RELEASE):
            self.meter.set_protect(command == RC.PROTECT)
        elif command not in (RC.ALARM, RC.ALARM_RELEASE):
            return self._error(request.control, dlt645.ErrorBits.OTHER)
        return dlt645.build_ack(self.address, request.control, preamble=self.preamble)


# === MODBUS === #


class ModbusResponder:
    """A Modbus-RTU meter over a ``VirtualMeter``: serves any register map ``model`` (a
    shipped map's name, a map in its plain form or a ``RegisterMap``), the measures it
    has."""

    protocol = "modbus"

    def __init__(self, meter: VirtualMeter, unit_id: int, model="acrel_prepaid_1p"):
        if not 1 <= unit_id <= 247:
            raise ValueError("a Modbus unit id is 1..247")
        self.meter = meter
        self.unit_id = unit_id
        self.regmap = modbus.register_map(model)

    def _values(self) -> dict[str, object]:
        snap = self.meter.snapshot()
        values = {
            "total_energy": snap.forward_kwh,
            "import_energy": snap.forward_kwh,
            "export_energy": 0,
            "sharp_energy": snap.tou_kwh["sharp"],
            "peak_energy": snap.tou_kwh["peak"],
            "flat_energy": snap.tou_kwh["flat"],
            "valley_energy": snap.tou_kwh["valley"],
            "voltage": snap.voltage_v,
            "current": snap.current_a,
            "active_power": snap.power_kw,
            **{f"voltage_{phase}": snap.voltage_v for phase in "abc"},
            **{f"current_{phase}": snap.current_a for phase in "abc"},
            **{f"active_power_{phase}": snap.power_kw / 3 for phase in "abc"},
            "power_factor": snap.pf,
            "frequency": Decimal("50.00"),
            "remaining_balance": snap.balance,
            "purchase_count": snap.last_token_sequence & 0xFFFF,
            "cumulative_purchase": self.meter.credited_total,
            "alarm_amount_1": snap.alarm1,
            "alarm_amount_2": snap.alarm2,
            "overdraft_limit": self.meter.config.overdraft_limit,
            "price": snap.price,
            "relay_state": 0 if snap.relay == "on" else 1,
            "relay_control": 0,
            "ct_ratio": 1,
            "pt_ratio": 1,
            "relay_coil": snap.relay == "off",
        }
        return {name: value for name, value in values.items() if name in self.regmap}

    def answer(self, frame: bytes) -> bytes:
        if not self.meter.powered:
            return b""
        values = self._values()
        coil_names = {f.name for f in self.regmap.fields if f.type == "coil"}
        # Coils and registers are encoded apart: they share addresses (coil 0, register 0).
        registers = {
            address: int(raw)
            for address, raw in modbus.encode_register_values(
                self.regmap, {k: v for k, v in values.items() if k not in coil_names}
            ).items()
        }
        coils = {
            address: bool(raw)
            for address, raw in modbus.encode_register_values(
                self.regmap, {k: v for k, v in values.items() if k in coil_names}
            ).items()
        }
        before, coils_before = dict(registers), dict(coils)
        try:
            reply = modbus.answer_request(frame, registers, unit_id=self.unit_id, coils=coils)
        except modbus.ModbusCodecError:
            return b""
        self._apply_writes(before, registers, coils_before, coils)
        return reply

    def _apply_writes(self, before, registers, coils_before, coils) -> None:
        meter, regmap = self.meter, self.regmap
        changed = {a for a, v in registers.items() if before.get(a) != v}
        relay = regmap.relay
        for field_ in regmap.fields:
            if field_.type == "coil":
                if coils.get(field_.address) != coils_before.get(field_.address):
                    meter.relay_off() if coils[field_.address] else meter.relay_on()
                continue
            span = set(range(field_.address, field_.address + field_.count))
            if not (span & changed) or not field_.writable:
                continue
            value = modbus.decode_registers(
                field_, [registers[field_.address + i] for i in range(field_.count)]
            )
            with contextlib.suppress(ValueError):
                if relay is not None and field_.name == relay.field:
                    if int(value) == relay.trip_value:
                        meter.relay_off()
                    elif int(value) == relay.close_value:
                        meter.relay_on()
                elif field_.name == "alarm_amount_1":
                    meter.set_thresholds(value, min(meter.alarm2, value))
                elif field_.name == "alarm_amount_2":
                    meter.set_thresholds(max(meter.alarm1, value), value)
                elif field_.name == "price":
                    meter.set_price(value)


# === BUS AND COLLECTOR === #


@dataclass
class Bus:
    """One RS-485 bus: its meters, protocol, baud rate and TCP port."""

    responders: list
    protocol: str = "dlt645"
    baud: int = 2400
    port: int = 0
    turnaround: float = 0.02
    name: str = ""
    drop_replies: int = 0  # fault injection: the next N replies are lost on the wire
    #: fault injection: the next N read replies come after the same meter's (late) reply
    #: to a read of another item
    stale_replies: int = 0
    #: fault injection: the next N read replies come after another meter's reply to the
    #: same read (a meter that took the request for its own)
    foreign_replies: int = 0
    transactions: int = 0
    busy_seconds: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        if len(self.responders) > MAX_METERS_PER_BUS:
            raise ValueError(f"an RS-485 bus carries at most {MAX_METERS_PER_BUS} meters")
        if self.protocol not in ("dlt645", "modbus"):
            raise ValueError("protocol is 'dlt645' or 'modbus'")
        if self.baud not in _BAUD_RATES:
            raise ValueError(f"baud rate must be one of {_BAUD_RATES}")
        if any(r.protocol != self.protocol for r in self.responders):
            raise ValueError("every meter of a bus speaks the bus protocol")

    @classmethod
    def of_meters(
        cls,
        meters: Iterable[VirtualMeter],
        protocol: str = "dlt645",
        *,
        model: str = "acrel_prepaid_1p",
        **kwargs,
    ) -> Bus:
        meters = list(meters)
        if protocol == "modbus":
            responders = [ModbusResponder(m, n, model) for n, m in enumerate(meters, start=1)]
        else:
            responders = [Dlt645Responder(m) for m in meters]
        return cls(responders, protocol, **kwargs)

    @property
    def meters(self) -> list[VirtualMeter]:
        return [r.meter for r in self.responders]

    def _answer_dlt645(self, frame: dlt645.Frame) -> bytes:
        address = frame.address
        if address == BROADCAST:
            for responder in self.responders:
                if responder.meter.powered:
                    responder.answer(frame)
            return b""
        targets = [r for r in self.responders if r.matches(address)]
        if len(targets) != 1:
            return b""  # nobody, or a collision of several answers
        reply = targets[0].answer(frame)
        if reply and self.stale_replies > 0:
            stale = targets[0].other_item_reply(frame)
            if stale:
                self.stale_replies -= 1
                reply = stale + reply
        others = [r for r in self.responders if r is not targets[0]]
        if reply and others and self.foreign_replies > 0:
            foreign = others[-1].same_item_reply(frame)
            if foreign:
                self.foreign_replies -= 1
                reply = foreign + reply
        return reply

    def _answer_modbus(self, frame: bytes) -> bytes:
        replies = [r.answer(frame) for r in self.responders]
        replies = [reply for reply in replies if reply]
        return replies[0] if len(replies) == 1 else b""

    async def transact(self, frame, request_length: int) -> bytes:
        """Put one request on the bus; return the reply (``b""``: silence)."""
        async with self._lock:
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(wire_time(request_length, self.baud))
            if self.protocol == "dlt645":
                reply = self._answer_dlt645(frame)
            else:
                reply = self._answer_modbus(frame)
            if reply:
                await asyncio.sleep(self.turnaround + wire_time(len(reply), self.baud))
                if self.drop_replies > 0:  # executed, but the answer never arrives
                    self.drop_replies -= 1
                    reply = b""
            self.transactions += 1
            self.busy_seconds += asyncio.get_running_loop().time() - start
            return reply


class Collector:
    """A serial device server: one TCP port per RS-485 bus (``base_port + index``)."""

    def __init__(self, buses: list[Bus], *, host: str = "127.0.0.1", name: str = "collector"):
        self.buses = buses
        self.host = host
        self.name = name
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        for index, bus in enumerate(self.buses):
            bus.name = bus.name or f"{self.name}/bus{index + 1}"
            server = await asyncio.start_server(
                lambda r, w, bus=bus: self._serve(bus, r, w), self.host, bus.port
            )
            bus.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._connections):
            writer.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _serve(self, bus: Bus, reader: asyncio.StreamReader, writer) -> None:
        self._connections.add(writer)
        framer = dlt645.Framer() if bus.protocol == "dlt645" else None
        buffer = b""
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                if framer is not None:
                    requests = [(f, len(f.encode()) + 4) for f in framer.feed(data)]
                else:
                    buffer += data
                    requests = []
                    while True:
                        used, frame = modbus.decode_frame(buffer, server=True)
                        buffer = buffer[used:]
                        if frame is None:
                            break
                        requests.append((frame, len(frame)))
                for frame, length in requests:
                    reply = await bus.transact(frame, length)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # the fleet is shutting down mid-request: end the connection quietly (a
            # cancelled handler would be reported as an error by asyncio's stream callback)
            pass
        except Exception:  # a simulator bug must not kill the collector
            _logger.exception("collector %s: bus %s failed", self.name, bus.name)
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
