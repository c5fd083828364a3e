"""DLMS/COSEM (IEC 62056) meters: HDLC on an RS-485 bus (a collector's transparent TCP
port or a local serial adapter; each meter by its physical address) and the TCP wrapper
(IEC 62056-47: a meter or a DLMS gateway at host:port; meters by logical device), with
no Odoo import.

Per meter, one association: HDLC SNRM/UA, then AARQ/AARE and, for HLS-GMAC, the second
pass (reply_to_HLS_authentication).  A ciphered association first reads the meter's
frame counter as the public client and starts above it.  Then the commands (relay off /
on: Disconnect control methods 1 / 2, confirmed by reading output_state back; a lost
answer is read back, never sent twice blindly: R8), then the reading (one get-with-list
when the meter offers it, else one GET per attribute), then release (and HDLC
disconnect), after a failure too while the meter still answers.  gurux-dlms builds and
parses every frame and APDU; this module moves bytes and keeps the rules."""

from __future__ import annotations

import contextlib
import logging

from gurux_dlms import GXByteBuffer, GXDLMSException, GXReplyData
from gurux_dlms.enums import Conformance, DataType, ErrorCode, InterfaceType, SourceDiagnostic
from gurux_dlms.internal._GXCommon import _GXCommon

from prepaid_core.protocols import dlms as cosem
from prepaid_core.protocols.dlms import DlmsValueError

from . import common
from .common import CommandJob, CommandOutcome, DeviceRefused, MeterJob, Timeout

__all__ = [
    "AssociationRefused",
    "DlmsError",
    "Link",
    "ReadingRefused",
    "serve_meter",
    "serve_meter_hdlc",
    "serve_meter_wrapper",
]

_logger = logging.getLogger(__name__)

RELAY_METHODS = {"relay_off": 1, "relay_on": 2}  # remote_disconnect, remote_reconnect
MAX_LIST = 10  # attributes per get-with-list request (gurux's own limit)
#: reply bytes of a get-with-list besides its items (LLC, response header, count,
#: ciphering header and tag) and of one item at most (result, 64-bit value)
LIST_OVERHEAD = 30
LIST_ITEM_BYTES = 10


class DlmsError(Exception):
    """A reply the driver cannot use (garbled frame, unexpected APDU): fails one meter."""


class AssociationRefused(DlmsError, DeviceRefused):
    """The meter answered the association with a refusal (AARE rejected, HLS failed)."""


class ReadingRefused(DlmsError, DeviceRefused):
    """The meter answered, without the register that bills (forward active energy)."""


class Link(common.BusLink):
    """One DLMS bus or gateway connection; one request at a time.  gurux's client says
    when a reply is complete (HDLC frames, wrapper header and length)."""

    def transact(self, client, request, who: str = "") -> GXReplyData:
        """Send ``request`` (bytes of gurux's client) and collect the whole reply, asking
        for the next HDLC segment or data block while the meter has more."""
        reply = GXReplyData()
        data = request
        while True:
            self._exchange(client, data, reply, who)
            if not reply.isMoreData():
                return reply
            data = client.receiverReady(reply)

    def _exchange(self, client, data, reply: GXReplyData, who: str) -> None:
        """One request frame out, its reply frame(s) in.  Frames from another meter
        (HDLC source address, wrapper source wPort: a late answer on the bus) are
        discarded and the wait goes on; the timeout then names them."""
        self.drain()
        self.send(bytes(data))
        deadline = self._deadline()
        received, discarded = bytearray(), ""
        while True:
            try:
                received += self._receive(deadline, who)
            except Timeout as exc:
                raise Timeout(f"{exc}; {discarded}" if discarded else str(exc)) from None
            received, foreign = frames_from(received, client)
            if foreign:
                discarded = foreign
                _logger.info("reply discarded%s: %s", who, foreign)
            try:
                complete = client.getData(received, reply)
            except Exception as exc:
                raise DlmsError(f"garbled reply{who}: {exc}") from None
            if complete and reply.isComplete():
                return


def frames_from(received: bytearray, client) -> tuple[bytearray, str]:
    """``received`` without the complete frames another meter sent (gurux's client
    reads any server address of an HDLC frame as its meter's), and what was dropped."""
    wrapper = client.interfaceType == InterfaceType.WRAPPER
    kept, dropped, pos = bytearray(), "", 0
    while (frame := _next_frame(received, pos, wrapper)) is not None:
        start, end, source = frame
        if source is not None and source != client.serverAddress:
            dropped = f"a frame from address {source}, not {client.serverAddress}"
            kept += received[pos:start]
        else:
            kept += received[pos:end]
        pos = end
    return kept + received[pos:], dropped


def _next_frame(received: bytearray, pos: int, wrapper: bool):
    """(start, end, source address) of the next complete frame from ``pos``; None
    when no complete frame follows.  The source is None when unreadable (gurux then
    judges the frame)."""
    if wrapper:
        if len(received) - pos < 8:
            return None
        end = pos + 8 + int.from_bytes(received[pos + 6 : pos + 8], "big")
        source = int.from_bytes(received[pos + 2 : pos + 4], "big")
        return (pos, end, source) if end <= len(received) else None
    start = received.find(0x7E, pos)
    if start < 0 or len(received) - start < 3:
        return None
    end = start + 2 + (((received[start + 1] & 0x07) << 8) | received[start + 2])
    if end > len(received):
        return None
    header = GXByteBuffer(bytearray(received[start + 3 : end]))
    try:
        _GXCommon.getHDLCAddress(header)  # the client's
        source = _GXCommon.getHDLCAddress(header)
    except (ValueError, IndexError):
        source = None
    return start, end, source


# === ASSOCIATION === #
class Association:
    """One association of one client with one meter over ``link``."""

    def __init__(self, link: Link, client, interface: str, who: str):
        self.link, self.client, self.interface, self.who = link, client, interface, who
        self.hdlc_connected = False
        self.associated = False

    def ask(self, request) -> GXReplyData:
        return self.link.transact(self.client, request, self.who)

    def open(self) -> None:
        client = self.client
        if self.interface == "hdlc":
            reply = self.ask(client.snrmRequest())
            self.hdlc_connected = True
            _parse(client.parseUAResponse, reply.data, "UA")
        reply = None
        for request in client.aarqRequest():
            reply = self.ask(request)
        try:
            client.parseAareResponse(reply.data)
        except GXDLMSException as exc:
            raise AssociationRefused(_refusal(exc, client)) from None
        except Exception as exc:
            raise DlmsError(f"unreadable AARE{self.who}: {exc}") from None
        self.associated = True  # released at the end, a failed HLS pass too
        if client.isAuthenticationRequired:
            self._authenticate()

    def _authenticate(self) -> None:
        """HLS second pass: the client's f(StoC), the meter's f(CtoS) checked."""
        client = self.client
        reply = None
        for request in client.getApplicationAssociationRequest():
            reply = self.ask(request)
        if reply.error:
            raise AssociationRefused(
                f"association refused: HLS authentication failure ({_error(reply.error)})"
            )
        try:
            client.parseApplicationAssociationResponse(reply.data)
        except Exception:
            raise AssociationRefused(
                "association refused: the meter's HLS reply does not match the keys"
            ) from None

    def reopen(self) -> None:
        """Associate again after a lost or garbled answer: on HDLC the meter counted a
        frame the client never took, so the link's sequence numbers are out of step."""
        if self.interface != "hdlc":
            return
        with contextlib.suppress(Timeout, DlmsError):
            self.ask(self.client.disconnectRequest())
        self.abandon()
        self.open()

    def abandon(self) -> None:
        """Forget the association without a word: a silent meter answers no release."""
        self.associated = self.hdlc_connected = False

    def close(self) -> None:
        """Release, then HDLC disconnect; best effort (the meter may not answer)."""
        with contextlib.suppress(Timeout, DlmsError):
            if self.associated:
                self.associated = False
                for request in self.client.releaseRequest() or ():  # None: nothing to release
                    self.ask(request)
        with contextlib.suppress(Timeout, DlmsError):
            if self.hdlc_connected:
                self.hdlc_connected = False
                self.ask(self.client.disconnectRequest())

    # === REQUESTS === #
    def get(self, obis: str, class_id: int, attribute: int):
        """One attribute's decoded value; None when the meter refuses or lacks it."""
        target = cosem.cosem_object(class_id, obis)
        reply = None
        for request in self.client.read(target, attribute):
            reply = self.ask(request)
        return None if reply.error else reply.value

    def get_many(self, reads) -> dict:
        """(obis, attribute) -> decoded value of ``reads`` (obis, class, attribute), in
        get-with-list requests when the meter offers them; refused ones left out."""
        size = self.list_size()
        if size < 2:
            return {(obis, attr): self.get(obis, cls, attr) for obis, cls, attr in reads}
        values = {}
        for start in range(0, len(reads), size):
            values.update(self._get_list(reads[start : start + size]))
        return values

    def list_size(self) -> int:
        """Attributes per get-with-list: none when the meter does not offer it; on HDLC
        as many as one reply frame carries (gurux's client cannot read a list reply
        that comes in segments): ``LIST_ITEM_BYTES`` each after ``LIST_OVERHEAD``."""
        if not self.client.negotiatedConformance & Conformance.MULTIPLE_REFERENCES:
            return 0
        if self.interface != "hdlc":
            return MAX_LIST
        room = self.client.hdlcSettings.maxInfoRX - LIST_OVERHEAD
        return min(MAX_LIST, room // LIST_ITEM_BYTES)

    def _get_list(self, reads) -> dict:
        targets = [(cosem.cosem_object(cls, obis), attr) for obis, cls, attr in reads]
        values = []
        for message in self.client.readList(targets):
            reply = None
            for request in message:
                reply = self.ask(request)
            if not isinstance(reply.value, list):
                raise DlmsError(f"get-with-list answered with {reply.value!r}{self.who}")
            values.extend(reply.value)
        if len(values) != len(reads):
            raise DlmsError(f"get-with-list: {len(values)} values for {len(reads)} attributes")
        return {
            (obis, attr): value for (obis, _cls, attr), value in zip(reads, values, strict=True)
        }

    def action(self, obis: str, class_id: int, method: int) -> int:
        """Invoke ``method`` of the object (integer 0 parameter); the action-result."""
        target = cosem.cosem_object(class_id, obis)
        reply = None
        for request in self.client.method(target, method, 0, DataType.INT8):
            reply = self.ask(request)
        return reply.error


def _parse(parse, data, what: str) -> None:
    try:
        parse(data)
    except Exception as exc:
        raise DlmsError(f"unreadable {what}: {exc}") from None


#: AARE diagnostics in words (the others by their name)
REFUSALS = {
    SourceDiagnostic.NOT_SUPPORTED: "application context not supported",
    SourceDiagnostic.NOT_RECOGNISED: "authentication mechanism not recognised",
    SourceDiagnostic.MECHANISM_NAME_REGUIRED: "authentication mechanism required",
}


def _refusal(exc: GXDLMSException, client) -> str:
    """Why an AARE refused the association, in words."""
    diagnostic = getattr(exc, "diagnostic", None)
    try:
        reason = REFUSALS.get(diagnostic) or SourceDiagnostic(diagnostic).name.lower()
    except ValueError:
        reason = f"diagnostic {diagnostic}"
    cipher = getattr(client, "ciphering", None)
    if diagnostic == SourceDiagnostic.NO_REASON_GIVEN and cipher and cipher.security:
        reason += " (a ciphered request the meter could not read: check keys and system title)"
    return f"association refused: {reason.replace('_', ' ')}"


def _error(code: int) -> str:
    try:
        return ErrorCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"error {code}"


# === THE METER === #
def _who(job: MeterJob) -> str:
    return f" from meter {job.address}"


def _settings(job: MeterJob):
    if job.dlms is None:
        raise DlmsError(f"meter {job.address} has no DLMS settings")
    return job.dlms


def _invocation_counter(link: Link, job: MeterJob, interface: str) -> int:
    """The meter's frame counter, read as the public client (no security)."""
    settings = _settings(job)
    association = Association(link, cosem.public_client(settings, interface), interface, _who(job))
    try:
        association.open()
        value = association.get(settings.invocation_counter_obis, 1, 2)
    except Timeout:
        association.abandon()
        raise
    finally:
        association.close()
    if not isinstance(value, int) or isinstance(value, bool):
        raise AssociationRefused(
            f"frame counter {settings.invocation_counter_obis} unreadable: {value!r}"
        )
    return value


def open_association(link: Link, job: MeterJob, interface: str) -> Association:
    settings = _settings(job)
    try:
        client = cosem.management_client(settings, interface)
    except DlmsValueError as exc:
        raise DlmsError(str(exc)) from None
    if cosem.ciphered(settings):
        client.ciphering.invocationCounter = _invocation_counter(link, job, interface) + 1
    association = Association(link, client, interface, _who(job))
    try:
        association.open()
    except DlmsError:
        association.close()
        raise
    return association


def read_meter(association: Association, job: MeterJob) -> dict:
    """The reading values (``READING_OBJECTS``, ``BALANCE_OBJECTS`` when asked)."""
    items = cosem.READING_OBJECTS + (cosem.BALANCE_OBJECTS if job.read_balance else ())
    raw = association.get_many(cosem.attributes_to_read(items))
    try:
        values = cosem.reading_values(items, raw)
    except DlmsValueError as exc:
        raise ReadingRefused(f"meter {job.address}: {exc}") from None
    missing = [i.obis for i in items if i.required and i.name not in values]
    if missing:
        raise ReadingRefused(f"meter {job.address} has no billing register {', '.join(missing)}")
    return values


def _relay_state(association: Association) -> str | None:
    state = association.get(cosem.DISCONNECT_CONTROL, 70, 2)
    return None if state is None else ("on" if state else "off")


def _relay_after_lost_answer(association: Association) -> str | None:
    """The relay state after an answer lost or garbled, over a new HDLC association."""
    try:
        association.reopen()
    except DlmsError:
        raise Timeout("no association after the lost answer") from None
    return _relay_state(association)


def execute_command(association: Association, command: CommandJob) -> CommandOutcome:
    """One relay command, sent once; any other kind is not supported over DLMS."""
    if command.kind not in RELAY_METHODS:
        return CommandOutcome(
            command.command_id,
            False,
            f"command {command.kind} is not supported over DLMS",
            delivered=False,
            permanent=True,
        )
    wanted = command.kind.removeprefix("relay_")
    try:
        result = association.action(cosem.DISCONNECT_CONTROL, 70, RELAY_METHODS[command.kind])
    except (Timeout, DlmsError):  # lost or garbled: the meter may have switched
        return common.read_back_outcome(
            command.command_id, lambda: _relay_after_lost_answer(association) == wanted
        )
    if result:
        return CommandOutcome(
            command.command_id, False, f"meter refused: {_error(result)}", permanent=True
        )
    if _relay_state(association) != wanted:
        return CommandOutcome(command.command_id, False, "acknowledged, but read-back differs")
    return CommandOutcome(command.command_id, True, "acknowledged; read-back confirms")


def serve_meter(link: Link, job: MeterJob, meter, interface: str | None = None) -> None:
    """The meter's commands, then its reading (unless ``job.read`` is off), in one
    association released at the end (``interface``: the bus's, else the meter's)."""
    interface = interface or _settings(job).interface
    association = open_association(link, job, interface)
    try:
        for command in job.commands:
            meter.outcomes.append(
                common.run_command(
                    lambda command=command: execute_command(association, command),
                    command.command_id,
                    (DlmsError,),
                )
            )
        if job.read:
            meter.values = read_meter(association, job)
    except Timeout:
        association.abandon()
        raise
    finally:
        association.close()


def serve_meter_hdlc(link: Link, job: MeterJob, meter) -> None:
    """``serve_meter`` on an HDLC bus."""
    serve_meter(link, job, meter, "hdlc")


def serve_meter_wrapper(link: Link, job: MeterJob, meter) -> None:
    """``serve_meter`` through a TCP wrapper port."""
    serve_meter(link, job, meter, "wrapper")
