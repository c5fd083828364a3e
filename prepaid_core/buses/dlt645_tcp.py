"""DL/T645-2007 and -1997 on one RS-485 bus (a collector's TCP port or a local serial
adapter), with no Odoo import.

``poll_bus(link, jobs)`` talks to the meters of one bus in turn: it first executes each
meter's queued commands, then reads its registers and status word 3 (relay and protect
state).  A reply is taken only from the meter asked, to the function asked and, for a
read, for the data identifier asked: a late reply to an earlier request (another item) is
discarded and the wait goes on.  A relay command whose acknowledgement is lost is not
sent again blindly: the relay state is read back and the command counts as done when the
meter already shows it (R8).
When asked, it also reads the meter's last daily freeze (05060001H/05060101H) and its
clock (04000101H/04000102H: how far it drifted from the true time).

``poll_bus_1997`` serves older DL/T645-1997 meters: energy (forward block 901FH: total and
tariff bands) and instantaneous power (B630H) with the 1997 read (01H) and, when asked,
their clock (date C010H and time C011H, the 1997 identifiers of the same YYMMDDWW and
hhmmss); they have no status word 3 and no remote relay in that standard, so only the
broadcast time sync (08H, in both editions) is sent to them and any other command fails
permanently with its reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from decimal import Decimal

from prepaid_core.protocols import dlt645, dlt645_data
from prepaid_core.protocols.dlt645_data import (
    BLOCK,
    ITEMS,
    DataFormatError,
    DLT645Error,
    MeterErrorReply,
    MeterStatus3,
    ReplyMismatchError,
)

from . import common
from .common import (
    BusResult,
    CommandJob,
    CommandOutcome,
    LinkSettings,
    MeterJob,
    Timeout,
)

__all__ = [
    "Link",
    "ReadingRefused",
    "poll_bus",
    "poll_bus_1997",
    "read_bus_address",
    "serve_meter",
    "serve_meter_1997",
]

_logger = logging.getLogger(__name__)

DI_ENERGY_BLOCK = 0x0000FF00  # combined active: total, sharp, peak, flat, valley
DI_REVERSE = 0x00020000
DI_POWER = 0x02030000
DI_BALANCE = 0x00900200  # remaining amount
DI_OVERDRAFT = 0x00900201  # overdraft amount, when nothing remains
DI_STATUS3 = 0x04000503
DI_PRICE = 0x04050101
DI_ALARM1 = 0x04001001
DI_ALARM2 = 0x04001002
DI_DATE = 0x04000101  # YYMMDDWW, the meter's local date
DI_TIME = 0x04000102  # hhmmss, the meter's local time
DI_DAILY_FROZEN_TIME = 0x05060001
DI_DAILY_FROZEN_FORWARD = 0x05060101  # total, then tariffs 1 to 4

TOU_BANDS = ("tou_sharp", "tou_peak", "tou_flat", "tou_valley")  # tariffs 1 to 4

RELAY_COMMANDS = {
    "relay_off": dlt645.RelayCommand.TRIP,
    "relay_on": dlt645.RelayCommand.DIRECT_CLOSE,
    "protect_on": dlt645.RelayCommand.PROTECT,
    "protect_off": dlt645.RelayCommand.PROTECT_RELEASE,
}


class Link(common.BusLink):
    """One DL/T645 bus (a collector's TCP port or a serial device); one request at a time.
    Each frame sent opens with ``wake_up_bytes`` FE bytes, set for each meter served."""

    def __init__(self, settings: LinkSettings):
        super().__init__(settings)
        self.framer = dlt645.Framer()
        #: FE bytes sent before each frame, as the meter served now wants (its model's)
        self.wake_up_bytes = 4

    def transact(
        self, address: str | None, request: bytes, function: int, di: int | None = None
    ) -> dlt645.Frame:
        """Send ``request`` and wait for the reply of ``address`` (None: of any meter) to
        ``function`` (and, for a read, to data identifier ``di``).

        Any other frame is discarded and the wait goes on until the deadline: frames of
        other meters, replies to other functions and late replies to an earlier request
        (a read answered after its timeout carries the identifier of its own item, never
        read as the value of this one); the timeout names the last one discarded.  An
        error reply carries no identifier: it is taken as the answer when address and
        function match."""
        self.framer.reset()
        self.send(request)
        deadline = self._deadline()
        discarded = ""
        try:
            while True:
                for frame in self.framer.feed(self._receive(deadline, f" from {address}")):
                    try:
                        dlt645.check_reply_to(frame, address=address, function=function, di=di)
                    except ReplyMismatchError as exc:
                        discarded = str(exc)
                        _logger.info("meter %s: reply discarded (%s)", address, discarded)
                        continue
                    return frame
        except Timeout as exc:
            if not discarded:
                raise
            raise Timeout(f"{exc}; reply discarded: {discarded}") from None

    def ask(self, address: str | None, request: bytes, function: int, di: int | None = None):
        """``transact``, retrying on timeouts (for requests harmless to repeat: reads)."""
        for attempt in range(self.settings.retries + 1):
            try:
                return self.transact(address, request, function, di)
            except Timeout:
                if attempt == self.settings.retries:
                    raise
        raise Timeout(address)  # pragma: no cover

    def read_item(self, address: str, di: int, version: int = 2007):
        """Read one data item, retrying on timeouts (reads are harmless to repeat)."""
        request = dlt645.read_request(address, di, version=version, preamble=self.wake_up_bytes)
        function = dlt645.Function.READ if version == 2007 else dlt645.Function.READ_1997
        frame = self.ask(address, request, function, di)
        return dlt645.parse_read_reply(frame, address=address, di=di).value

    def read_address(self) -> str:
        """The address of the only meter on the bus (read address 13H to AAAAAAAAAAAA)."""
        request = dlt645.read_address_request(preamble=self.wake_up_bytes)
        return dlt645.parse_address_reply(self.ask(None, request, dlt645.Function.READ_ADDRESS))

    def meter_local_now(self) -> dt.datetime:
        offset = dt.timedelta(minutes=self.settings.utc_offset_minutes)
        return (dt.datetime.now(dt.UTC) + offset).replace(tzinfo=None)


def _password_bytes(password: str) -> bytes:
    """Level byte then the password, low byte first (as the codec writes it)."""
    return bytes.fromhex(password[:2]) + bytes.fromhex(password[2:])[::-1]


def _relay_state(status_word: int) -> tuple[str, bool]:
    status = MeterStatus3.from_word(status_word)
    return ("off" if status.relay_off else "on"), status.protected


def _read_back_matches(link: Link, job: CommandJob, address: str) -> bool | None:
    """Whether the meter already shows what ``job`` asks (None: not a readable state)."""
    if job.kind not in RELAY_COMMANDS:
        return None
    relay, protected = _relay_state(link.read_item(address, DI_STATUS3))
    if job.kind.startswith("relay_"):
        return relay == job.kind.removeprefix("relay_")
    return protected == (job.kind == "protect_on")


def _request_for(link: Link, address: str, job: CommandJob):
    """(request bytes, function) for one command; raises ValueError when unsupported."""
    s = link.settings
    payload = job.payload or {}
    if job.kind in RELAY_COMMANDS:
        valid_until = link.meter_local_now() + dt.timedelta(minutes=s.valid_minutes)
        return (
            dlt645.relay_request(
                address,
                RELAY_COMMANDS[job.kind],
                s.password,
                s.operator,
                valid_until,
                preamble=link.wake_up_bytes,
            ),
            dlt645.Function.RELAY,
        )
    if job.kind == "price":
        price = Decimal(str(payload["price"]))
        return (
            dlt645.write_request(
                address, DI_PRICE, price, s.password, s.operator, preamble=link.wake_up_bytes
            ),
            dlt645.Function.WRITE,
        )
    if job.kind == "zeroing":
        data = _password_bytes(s.password) + bytes.fromhex(s.operator)[::-1]
        return (
            dlt645.encode_frame(
                address, dlt645.Function.CLEAR_METER, data, preamble=link.wake_up_bytes
            ),
            dlt645.Function.CLEAR_METER,
        )
    raise ValueError(f"command {job.kind} is not supported over DL/T645")


def execute_command(link: Link, address: str, job: CommandJob) -> CommandOutcome:
    """Send one command once; on a lost answer, read back instead of sending it again."""
    if job.kind == "time_sync":
        link.send(dlt645.broadcast_time(link.meter_local_now(), preamble=link.wake_up_bytes))
        return CommandOutcome(job.command_id, True, "time broadcast sent (meters do not answer)")
    if job.kind == "thresholds":
        return _write_thresholds(link, address, job)
    try:
        request, function = _request_for(link, address, job)
    except (ValueError, KeyError, ArithmeticError, DLT645Error) as exc:
        return CommandOutcome(job.command_id, False, str(exc), delivered=False, permanent=True)
    try:
        dlt645.check_ack(link.transact(address, request, function), function)
    except MeterErrorReply as exc:
        return CommandOutcome(job.command_id, False, f"meter refused: {exc}", permanent=True)
    except Timeout:
        return common.read_back_outcome(
            job.command_id, lambda: _read_back_matches(link, job, address)
        )
    matches = _read_back_matches(link, job, address)
    if matches is False:
        return CommandOutcome(job.command_id, False, "acknowledged, but read-back differs")
    return CommandOutcome(
        job.command_id,
        True,
        "acknowledged" + ("; read-back confirms" if matches else ""),
    )


def _write_thresholds(link: Link, address: str, job: CommandJob) -> CommandOutcome:
    s = link.settings
    payload = job.payload or {}
    try:
        # alarm 2 first would be refused above alarm 1 on some meters: write alarm 1 first
        for di, key in ((DI_ALARM1, "alarm1"), (DI_ALARM2, "alarm2")):
            value = Decimal(str(payload[key]))
            request = dlt645.write_request(
                address, di, value, s.password, s.operator, preamble=link.wake_up_bytes
            )
            dlt645.check_ack(link.transact(address, request, dlt645.Function.WRITE), 0x14)
    except (KeyError, ArithmeticError) as exc:
        return CommandOutcome(job.command_id, False, f"bad payload: {exc}", permanent=True)
    except MeterErrorReply as exc:
        return CommandOutcome(job.command_id, False, f"meter refused: {exc}", permanent=True)
    except Timeout as exc:
        return CommandOutcome(job.command_id, False, str(exc))
    return CommandOutcome(job.command_id, True, "thresholds written and acknowledged")


class ReadingRefused(DLT645Error, common.DeviceRefused):
    """The meter answered the reading with a slave error (the reason says which item):
    the reading fails, the meter is reachable."""


def read_energy(
    link: Link,
    address: str,
    register: dlt645_data.EnergyRegister,
    mode: str,
    version: int,
    way: str = dlt645_data.AUTO,
) -> tuple[tuple, str]:
    """(total, tariffs 1 to 4 as far as the meter has them) of ``register`` and the way
    that gave them (``BLOCK`` or ``ITEMS``).  With ``way`` ``AUTO`` the way of ``mode``
    is tried first: a meter that refuses blocks is read item by item, one that refuses
    single items by block; a meter model may force one way (``way``).  ReadingRefused,
    with the slave errors, when every way tried is refused."""
    width = 8 if version == 2007 else 4
    ways = dlt645_data.read_order(mode, way)
    refusals = []
    for tried in ways:
        try:
            if tried == BLOCK:
                return tuple(link.read_item(address, register.block, version)), BLOCK
            return _read_single_items(link, address, register, version), ITEMS
        except MeterErrorReply as exc:
            di = register.block if tried == BLOCK else register.items[0]
            refusals.append(f"{di:0{width}X}H: {exc}")
    how = "as a block and as single items" if len(ways) > 1 else _WAY_NAMES[ways[0]]
    raise ReadingRefused(f"refused its energy {how}: " + "; ".join(refusals))


_WAY_NAMES = {
    BLOCK: "as a block (its model reads blocks only)",
    ITEMS: "as single items (its model reads single items only)",
}


def _read_single_items(link: Link, address: str, register, version: int) -> tuple:
    """The total, then the tariffs until the first one the meter has not (a meter without
    time-of-use answers "no data" to them)."""
    values = [link.read_item(address, register.items[0], version)]
    for di in register.items[1:]:
        try:
            values.append(link.read_item(address, di, version))
        except MeterErrorReply:
            break
    return tuple(values)


def read_energy_values(link: Link, job: MeterJob, version: int = 2007) -> dict:
    """The energy of the meter's billing register (``forward_total`` and the tariff
    bands; ``reverse_total`` too for ``forward_reverse``) and ``read_mode``, the way
    that worked (the poll remembers it for the meter)."""
    register = dlt645_data.energy_register(version, job.billing_register)
    energy, way = read_energy(link, job.address, register, job.read_mode, version, job.read_way)
    values = {"forward_total": energy[0], "read_mode": way}
    values.update(zip(TOU_BANDS, energy[1:], strict=False))
    if job.billing_register == "forward_reverse":
        reverse = dlt645_data.REVERSE_TOTAL[version]
        values["reverse_total"] = link.read_item(job.address, reverse, version=version)
    return values


def read_balance(link: Link, address: str) -> Decimal | None:
    """The meter's own balance: its remaining amount (00900200H) or, when nothing
    remains, minus its overdraft (00900201H); None from a meter that keeps none (it
    answers "no data")."""
    try:
        remaining = link.read_item(address, DI_BALANCE)
    except MeterErrorReply:
        return None
    if remaining:
        return remaining
    try:
        return -link.read_item(address, DI_OVERDRAFT)
    except MeterErrorReply:
        return remaining


def read_meter(link: Link, job: MeterJob) -> dict:
    """Energy (``read_energy_values``), power, status word 3 (relay and protect state)
    and, when asked, the meter's own balance (``meter_balance``)."""
    address = job.address
    values = read_energy_values(link, job)
    status_word = link.read_item(address, DI_STATUS3)
    relay, protected = _relay_state(status_word)
    values.update(
        power=link.read_item(address, DI_POWER),
        relay_state=relay,
        protected=protected,
        status_word=status_word,
    )
    if job.read_balance:
        balance = read_balance(link, address)
        if balance is not None:
            values["meter_balance"] = balance
    return values


def read_daily_frozen(link: Link, address: str) -> dict | None:
    """The last daily frozen forward active energy and its freeze time (meter local time),
    or None when the meter has none yet (it answers "no data")."""
    try:
        frozen_at = link.read_item(address, DI_DAILY_FROZEN_TIME)
        block = link.read_item(address, DI_DAILY_FROZEN_FORWARD)
    except MeterErrorReply:
        return None
    return {
        "frozen_at": frozen_at,
        "forward_total": block[0],
        **dict(zip(TOU_BANDS, block[1:], strict=False)),
    }


#: edition -> the data identifiers of the meter's (date YYMMDDWW, time hhmmss)
CLOCK_DIS = {2007: (DI_DATE, DI_TIME), 1997: (0xC010, 0xC011)}


def read_clock(link: Link, address: str, version: int = 2007) -> dict:
    """The meter's clock (date 04000101H, time 04000102H; DL/T645-1997: C010H, C011H: its
    local time, to the second) against the true time: ``drift_seconds`` is positive when
    the meter is ahead; ``checked_at`` is when it was measured (UTC, naive).  A meter that
    does not tell its clock (it answers "no data") or tells no real date or time (a
    clock never set reads 00000000) gives ``meter_at`` and ``drift_seconds`` None:
    checked, not known; its energy reading stays."""
    offset = dt.timedelta(minutes=link.settings.utc_offset_minutes)
    di_date, di_time = CLOCK_DIS[version]
    try:
        date = link.read_item(address, di_date, version=version)
        clock = link.read_item(address, di_time, version=version)
        local_now = link.meter_local_now()
        if clock < dt.time(0, 0, 5):  # the meter's midnight may have passed between the two
            date = link.read_item(address, di_date, version=version)
    except (MeterErrorReply, DataFormatError) as exc:
        _logger.info("meter %s: clock not known: %s", address, exc)
        local_now = link.meter_local_now()
        return {
            "meter_at": None,
            "drift_seconds": None,
            "checked_at": (local_now - offset).replace(microsecond=0),
        }
    meter_at = dt.datetime.combine(date, clock)
    return {
        "meter_at": meter_at,
        "drift_seconds": round((meter_at - local_now).total_seconds()),
        "checked_at": (local_now - offset).replace(microsecond=0),
    }


def _wake_up_bytes_for(link: Link, job: MeterJob) -> None:
    """Frames to the meter of ``job`` open with its model's wake-up bytes (0 to 4 FE)."""
    if job.wake_up_bytes not in dlt645_data.WAKE_UP_BYTES:
        raise dlt645_data.ValueRangeError(
            f"wake-up bytes: {dlt645_data.show(job.wake_up_bytes)} is not 0 to 4"
        )
    link.wake_up_bytes = job.wake_up_bytes


def serve_meter(link: Link, job: MeterJob, meter) -> None:
    """The meter's commands, then its reading (unless ``job.read`` is off) and, when asked,
    its last daily frozen energy (``values["daily_frozen"]``) and its clock
    (``values["clock"]``).  Frames to it open with its model's wake-up bytes."""
    _wake_up_bytes_for(link, job)
    for command in job.commands:
        meter.outcomes.append(
            common.run_command(
                lambda command=command: execute_command(link, job.address, command),
                command.command_id,
                DLT645Error,
            )
        )
    if job.read:
        with _refusal_is_an_answer(job.address):
            meter.values = read_meter(link, job)
            if job.read_daily_frozen:
                meter.values["daily_frozen"] = read_daily_frozen(link, job.address)
            if job.read_clock:
                meter.values["clock"] = read_clock(link, job.address)


@contextlib.contextmanager
def _refusal_is_an_answer(address: str):
    """A slave error reply to a read the reading needs fails the reading as
    ReadingRefused: the meter answered (it is reachable), with that error."""
    try:
        yield
    except ReadingRefused:
        raise
    except MeterErrorReply as exc:
        raise ReadingRefused(f"refused its reading: {exc}") from exc


def poll_bus(settings: LinkSettings, jobs: list[MeterJob]) -> BusResult:
    """Commands then readings for each meter of one bus, in turn.  Never raises for device
    errors: they are reported in the result."""
    return common.poll_bus(Link(settings), jobs, serve_meter, (DLT645Error,))


# === DL/T645-1997 === #
DI_1997_FORWARD_BLOCK = 0x901F  # forward active: total, sharp, peak, flat, valley
DI_1997_POWER = 0xB630


def read_meter_1997(link: Link, job: MeterJob) -> dict:
    """Energy (forward block 901FH or its items 9010H..9014H, reverse 9020H for
    ``forward_reverse``) and power; no balance nor status word in that edition."""
    values = read_energy_values(link, job, version=1997)
    values["power"] = link.read_item(job.address, DI_1997_POWER, version=1997)
    return values


def serve_meter_1997(link: Link, job: MeterJob, meter) -> None:
    """The meter's time sync (its only command), then its reading (unless ``job.read`` is
    off) and, when asked, its clock (``values["clock"]``, as ``serve_meter``)."""
    _wake_up_bytes_for(link, job)
    for command in job.commands:
        if command.kind == "time_sync":
            meter.outcomes.append(
                common.run_command(
                    lambda command=command: execute_command(link, job.address, command),
                    command.command_id,
                    DLT645Error,
                )
            )
        else:
            meter.outcomes.append(
                CommandOutcome(
                    command.command_id,
                    False,
                    f"command {command.kind} is not supported over DL/T645-1997",
                    delivered=False,
                    permanent=True,
                )
            )
    if job.read:
        with _refusal_is_an_answer(job.address):
            meter.values = read_meter_1997(link, job)
            if job.read_clock:
                meter.values["clock"] = read_clock(link, job.address, version=1997)


def poll_bus_1997(settings: LinkSettings, jobs: list[MeterJob]) -> BusResult:
    """``poll_bus`` for a bus of DL/T645-1997 meters."""
    return common.poll_bus(Link(settings), jobs, serve_meter_1997, (DLT645Error,))


def read_bus_address(settings: LinkSettings) -> str:
    """Commissioning: the address of the only meter on a bus (13H)."""
    with Link(settings) as link:
        return link.read_address()
