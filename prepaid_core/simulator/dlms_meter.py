"""DLMS/COSEM meters served by gurux-dlms's own server (``GXDLMSSecureServer``), for the
DLMS driver's tests and benchmark: the meter side comes from the same maintained library
the driver uses, not from this project.

``DlmsMeter`` holds one meter's COSEM objects (energy and power registers, a Credit, a
Disconnect control, the frame counter) and its two associations: the public client (16,
no security, read only) and the management client (1, LLS password or HLS-GMAC with
suite 0 ciphering).  ``DlmsSimulator`` serves meters on one TCP listener of 127.0.0.1:
in WRAPPER mode each meter is a logical device (wPort), in HDLC mode the meters share
one "bus" and a frame is answered only by the meter whose physical address it names,
the others stay silent as on RS-485.  Each connection gets its own gurux server per
meter (association state), over the meter's shared objects (values and relay).

Knobs for tests: ``drop_next_action_answer`` (the action runs, its answer is lost),
``refuse_actions`` (action-result "read-write denied"), ``get_with_list`` (off: the
meter does not offer multiple references), ``garble_next_reply`` and
``garble_next_action_answer``, ``stray_frame_first``
(the last frame of another meter goes out before the reply, as a late answer on the
bus).  Where gurux-dlms's server is broken (it lacks accessors its own handlers call,
miscodes the AARE of a ciphered association, decrypts glo requests with misplaced
parameters, checks the HLS reply with ``int(bytes)``), the simulator mends it at the
server's own hooks and says so where it does.  Alone: ``python -m
prepaid_core.simulator.dlms_meter --interface hdlc --meters 3``.  No Odoo import."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import socketserver
import threading
from decimal import Decimal

from gurux_dlms import GXByteBuffer, GXServerReply, ValueEventArgs
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    Conformance,
    DataType,
    ErrorCode,
    InterfaceType,
    MethodAccessMode,
    ObjectType,
    Security,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import (
    GXDLMSAccount,
    GXDLMSAssociationLogicalName,
    GXDLMSCredit,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums import AssociationStatus, ControlState
from gurux_dlms.secure import GXDLMSSecureServer

from prepaid_core.protocols import dlms as cosem

__all__ = ["MANAGEMENT_CLIENT", "PUBLIC_CLIENT", "DlmsMeter", "DlmsSimulator"]

PUBLIC_CLIENT = 16
MANAGEMENT_CLIENT = 1
CURRENT_ASSOCIATION = "0.0.40.0.0.255"
FRAME_COUNTER = "0.0.43.1.0.255"
CREDIT = cosem.BALANCE_OBJECTS[0].obis
#: OBIS -> unit of the registers a simulated meter has (those the driver reads)
REGISTERS = {item.obis: item.unit for item in cosem.READING_OBJECTS if item.rule == "register"}
_CONFORMANCE = (
    Conformance.GET
    | Conformance.SET
    | Conformance.ACTION
    | Conformance.SELECTIVE_ACCESS
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
)


class _Register(GXDLMSRegister):
    """gurux's register with its scaler kept as the decimal exponent: gurux encodes
    ``floor(log(scaler, 10))``, 2 for a scaler of 1000."""

    exponent = 0

    def getValue(self, settings, e):
        if e.index != 3:
            return super().getValue(settings, e)
        data = GXByteBuffer()
        data.setUInt8(DataType.STRUCTURE)
        data.setUInt8(2)
        _GXCommon.setData(settings, data, DataType.INT8, self.exponent)
        _GXCommon.setData(settings, data, DataType.ENUM, int(self.unit))
        return data.array()


class DlmsMeter:
    """One simulated meter: its addresses, the management client's security and its
    COSEM objects.  Values are set with ``set_register`` (raw integer and decimal
    exponent, as a meter stores them) and ``credit``; ``relay_on`` tells the output
    state of its Disconnect control."""

    def __init__(
        self,
        *,
        logical_address: int = 1,
        physical_address: int = 17,
        authentication: str = "low",
        security: str = "none",
        password: bytes = b"12345678",
        system_title: bytes = b"SIMDLMS1",
        block_cipher_key: bytes = bytes(range(16)),
        authentication_key: bytes = bytes(range(0xD0, 0xE0)),
        credit_scale: int = -2,
        hdlc_max_info: int = 128,
    ):
        self.logical_address = logical_address
        self.physical_address = physical_address
        self.authentication = cosem.AUTHENTICATIONS[authentication]
        self.security = cosem.SECURITIES[security]
        self.password = password
        self.system_title = system_title
        self.block_cipher_key = block_cipher_key
        self.authentication_key = authentication_key
        self.hdlc_max_info = hdlc_max_info  # longest information field it transmits
        self.lock = threading.RLock()
        self.get_with_list = True
        self.refuse_actions = False
        self.drop_next_action_answer = False
        self.garble_next_action_answer = False  # the action runs, its answer is garbled
        self.garble_next_reply = False
        self.stray_frame_first = False  # the last frame of another meter, then the reply
        self.actions = 0  # actions executed (the tests count them: R8, never twice)
        self.objects = self._create_objects(credit_scale)

    def _create_objects(self, credit_scale: int) -> dict:
        objects = {}
        for obis, unit in REGISTERS.items():
            register = _Register(obis)
            register.unit, register.value = unit, 0
            objects[obis] = register
        relay = GXDLMSDisconnectControl(cosem.DISCONNECT_CONTROL)
        relay.outputState, relay.controlState = True, ControlState.CONNECTED
        credit = GXDLMSCredit(CREDIT)
        account = GXDLMSAccount(cosem.ACCOUNT)
        account.currency.name, account.currency.scale = "EUR", credit_scale
        counter = GXDLMSData(FRAME_COUNTER)
        counter.value = 0
        objects.update(
            {
                cosem.DISCONNECT_CONTROL: relay,
                CREDIT: credit,
                cosem.ACCOUNT: account,
                FRAME_COUNTER: counter,
            }
        )
        return objects

    # === VALUES === #
    def set_register(self, obis: str, value: int, scaler: int | None = None, unit=None):
        """Register ``obis`` holds ``value`` (raw integer) x 10^``scaler`` in ``unit``."""
        with self.lock:
            register = self.objects[obis]
            register.value = value
            if scaler is not None:
                register.exponent = scaler
            if unit is not None:
                register.unit = unit

    def set_energy_kwh(self, obis: str, kwh, scaler: int = 0) -> None:
        """An energy register set from kWh, stored in Wh x 10^``scaler``."""
        raw = Decimal(str(kwh)) * 1000 / Decimal(10) ** scaler
        self.set_register(obis, int(raw), scaler, Unit.ACTIVE_ENERGY)

    def remove(self, obis: str) -> None:
        """The meter does not have this object (reads of it: object undefined)."""
        with self.lock:
            self.objects.pop(obis)

    @property
    def credit(self) -> int:
        return self.objects[CREDIT].currentCreditAmount

    @credit.setter
    def credit(self, amount: int) -> None:
        """Current credit amount, in currency units x 10^``credit_scale``."""
        self.objects[CREDIT].currentCreditAmount = amount

    @property
    def relay_on(self) -> bool:
        return bool(self.objects[cosem.DISCONNECT_CONTROL].outputState)

    @relay_on.setter
    def relay_on(self, on: bool) -> None:
        relay = self.objects[cosem.DISCONNECT_CONTROL]
        relay.outputState = on
        relay.controlState = ControlState.CONNECTED if on else ControlState.DISCONNECTED

    @property
    def invocation_counter(self) -> int:
        """The last invocation counter taken from the management client (HLS-GMAC):
        the frame counter object's value."""
        return self.objects[FRAME_COUNTER].value

    @invocation_counter.setter
    def invocation_counter(self, value: int) -> None:
        self.objects[FRAME_COUNTER].value = value

    def take_invocation_counter(self, counter: int) -> bool:
        """Whether ``counter`` is above the last one taken (then it is the last)."""
        with self.lock:
            if counter <= self.invocation_counter:
                return False
            self.invocation_counter = counter
            return True

    # === ACTIONS === #
    def run_action(self, obj, index: int) -> int:
        """Execute method ``index`` of ``obj`` (Disconnect control 1: remote disconnect,
        2: remote reconnect); the error code of its action-result."""
        if not isinstance(obj, GXDLMSDisconnectControl) or index not in (1, 2):
            return ErrorCode.READ_WRITE_DENIED
        if self.refuse_actions:
            return ErrorCode.READ_WRITE_DENIED
        with self.lock:
            self.relay_on = index == 2
            self.actions += 1
        return ErrorCode.OK


def _aes_gcm_parameter(*args):
    """gurux's server decrypts glo-ciphered requests with ``AesGcmParameter(title,
    key, authentication key)``, the tag left out (every other call passes it first):
    those three-argument calls get tag 0, as their siblings."""
    if len(args) == 3:
        return AesGcmParameter(0, *args)
    return AesGcmParameter(*args)


_gurux_pdu = importlib.import_module("gurux_dlms.GXDLMS")  # the module, not its class
if _gurux_pdu.AesGcmParameter is AesGcmParameter:
    _gurux_pdu.AesGcmParameter = _aes_gcm_parameter

if not hasattr(ValueEventArgs, "__iter__"):
    # gurux-dlms's server hands one action's event to ``onPreAction(list(e))`` (its C#
    # original passes a one-element array): the event iterates as that one element
    ValueEventArgs.__iter__ = lambda self: iter((self,))


class _Request(GXServerReply):
    """gurux's request holder with the accessors its server calls."""

    def setReply(self, reply):
        self.reply = reply

    def getConnectionInfo(self):
        return self.connectionInfo

    def getCount(self):
        return self.count

    def setCount(self, count):
        self.count = count


class _Association(GXDLMSAssociationLogicalName):
    """An association whose HLS-GMAC second pass works: gurux's own ``invoke`` reads
    the client's f(StoC) with ``int(bytes)``.  The same check with gurux's GMAC
    (``GXSecure.secure``): the client's reply against the meter's challenge, then the
    meter's f(CtoS).  The reply's invocation counter must be above the last one the
    meter took (a replayed or restarted client is refused); it becomes the meter's
    frame counter, what the public client reads."""

    meter: DlmsMeter | None = None

    def getAssociationStatus(self):  # called by gurux's method handler, missing
        return self.associationStatus

    def invoke(self, settings, e):
        if e.index != 1 or settings.authentication != Authentication.HIGH_GMAC:
            return super().invoke(settings, e)
        reply = bytes(e.parameters or b"")
        counter = int.from_bytes(reply[1:5], "big")
        expected = GXSecure.secure(
            settings, settings.cipher, counter, settings.stoCChallenge, settings.sourceSystemTitle
        )
        if bytes(expected) != reply or not self.meter.take_invocation_counter(counter):
            self.associationStatus = AssociationStatus.NON_ASSOCIATED
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        self.associationStatus = AssociationStatus.ASSOCIATED
        cipher = settings.cipher
        return bytes(
            GXSecure.secure(
                settings,
                cipher,
                cipher.invocationCounter,
                settings.ctoSChallenge,
                cipher.systemTitle,
            )
        )


class _ReplyBuffer(GXByteBuffer):
    """gurux's reply buffer, mending its AARE encoder: the responding AP title of a
    ciphered or HLS-GMAC association is written as ``A4 <n> 04`` then ``setUInt8()``
    without its length; the outer length becomes n + 2 and the inner one n."""

    def setUInt8(self, item=None, index=None):
        if item is None:
            title_length = self.getUInt8(self.size - 2)
            super().setUInt8(title_length + 2, self.size - 2)
            item = title_length
        super().setUInt8(item, index)


class _HdlcLimits:
    """The meter's HDLC limits as gurux's server reads them in its SNRM handling (its
    setup object's names and its settings' names, which it pairs crosswise): frames of
    at most ``transmit`` bytes of information from the meter (longer replies come in
    segments), ``receive`` to it; no inactivity timeout."""

    inactivityTimeout = 0

    def __init__(self, transmit: int = 128, receive: int = 256, window: int = 1):
        self.maxInfoTX, self.maxInfoRX = transmit, receive
        self.maximumInfoLengthReceive, self.maximumInfoLengthTransmit = transmit, receive
        self.windowSizeTX = self.windowSizeRX = window
        self.windowSizeTransmit = self.windowSizeReceive = window


class _MeterServer(GXDLMSSecureServer):
    """gurux's server for one meter on one connection: the meter's objects, the public
    and the management association, access rights and the action knobs."""

    def __init__(self, meter: DlmsMeter, interface: int):
        super().__init__(True, interface)
        # gurux's secure server keeps its ciphering as ``settings.ciphering``; the code
        # that ciphers reads ``settings.cipher``
        self.settings.cipher = self.settings.ciphering
        self.replyData = _ReplyBuffer()
        # gurux's method handler marks an HLS association with ``settings.setConnected``
        self.settings.setConnected = lambda state: setattr(self.settings, "connected", state)
        self.meter = meter
        self.drop_reply = False
        self.assigned = None
        for obj in meter.objects.values():
            self.items.append(obj)
        self.associations = {
            PUBLIC_CLIENT: self._association("0.0.40.0.1.255", PUBLIC_CLIENT, Authentication.NONE),
            MANAGEMENT_CLIENT: self._association(
                "0.0.40.0.2.255", MANAGEMENT_CLIENT, meter.authentication
            ),
        }
        for association in self.associations.values():
            association.objectList.extend(self.items)
        if interface == InterfaceType.HDLC:
            self.hdlc = _HdlcLimits(transmit=meter.hdlc_max_info)
            # gurux's SNRM handling starts from ``settings.hdlc.update(limits)``, which its
            # HDLC settings class lacks: the meter's limits, copied
            self.settings.hdlc.update = self._reset_hdlc_limits
        self.conformance = _CONFORMANCE | (
            Conformance.MULTIPLE_REFERENCES if meter.get_with_list else 0
        )
        self.initialize()

    def _association(self, obis: str, client: int, authentication) -> GXDLMSAssociationLogicalName:
        association = _Association(obis)
        association.meter = self.meter
        association.clientSAP = client
        association.serverSAP = self.meter.logical_address
        association.authenticationMechanismName.mechanismId = authentication
        association.secret = self.meter.password
        self.items.append(association)
        return association

    def _reset_hdlc_limits(self, _settings) -> None:
        hdlc = self.settings.hdlc
        hdlc.maxInfoTX, hdlc.maxInfoRX = self.hdlc.maxInfoTX, self.hdlc.maxInfoRX
        hdlc.windowSizeTX, hdlc.windowSizeRX = self.hdlc.windowSizeTX, self.hdlc.windowSizeRX

    # === ASSOCIATION === #
    def isTarget(self, serverAddress, clientAddress):
        self.assigned = self.associations.get(clientAddress)
        if self.assigned is None:
            return False
        cipher, meter = self.getCiphering(), self.meter
        cipher.systemTitle = meter.system_title
        cipher.blockCipherKey = meter.block_cipher_key
        cipher.authenticationKey = meter.authentication_key
        self.settings.clientAddress, self.settings.serverAddress = clientAddress, serverAddress
        return True

    def onValidateAuthentication(self, authentication, password):
        association = self.assigned
        if association is None:
            return SourceDiagnostic.NO_REASON_GIVEN
        if authentication != association.authenticationMechanismName.mechanismId:
            return SourceDiagnostic.NOT_RECOGNISED
        if authentication == Authentication.LOW and password != association.secret:
            return SourceDiagnostic.AUTHENTICATION_FAILURE
        if association.clientSAP == MANAGEMENT_CLIENT and self.meter.security != Security.NONE:
            if self.getCiphering().security != self.meter.security:
                return SourceDiagnostic.AUTHENTICATION_FAILURE
        return SourceDiagnostic.NONE

    def onFindObject(self, objectType, sn, ln):
        if objectType == ObjectType.ASSOCIATION_LOGICAL_NAME and ln == CURRENT_ASSOCIATION:
            return self.assigned
        return None

    # gurux's command handlers call these; its server class lacks them
    def notifyConnected(self, connectionInfo):
        self.onConnected(connectionInfo)

    def notifyRead(self):
        pass

    def getTransaction(self):
        return self.transaction

    def setTransaction(self, transaction):
        self.transaction = transaction

    # === ACCESS === #
    def onGetAttributeAccess(self, arg):
        if self.assigned is None:
            return AccessMode.NO_ACCESS
        if self.assigned.clientSAP == PUBLIC_CLIENT:
            return AccessMode.READ
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg):
        if arg.target is self.assigned and arg.index == 1:
            return MethodAccessMode.ACCESS
        if self.assigned is None or self.assigned.clientSAP == PUBLIC_CLIENT:
            return MethodAccessMode.NO_ACCESS
        return MethodAccessMode.ACCESS

    def onPreAction(self, args):
        for e in args:
            if e.target is self.assigned:
                continue  # HLS reply_to_HLS_authentication: gurux's own
            e.error = self.meter.run_action(e.target, e.index)
            e.handled, e.value = True, 0
            if self.meter.drop_next_action_answer:
                self.meter.drop_next_action_answer = False
                self.drop_reply = True
            if self.meter.garble_next_action_answer:
                self.meter.garble_next_action_answer = False
                self.meter.garble_next_reply = True

    def onPreRead(self, args):
        """Get-with-list: an item gurux cannot read (undefined object, no access) is
        answered as its data-access-result (choice 1, then the error), which gurux's list
        encoder does not write itself."""
        if len(args) < 2:
            return
        for e in args:
            if e.target is None or e.error:
                error = e.error or ErrorCode.UNDEFINED_OBJECT
                e.error, e.handled, e.byteArray, e.value = 1, True, True, bytes([error])

    def onPreGet(self, args):
        pass

    def onPostGet(self, args):
        pass

    def onPostRead(self, args=None):
        pass

    def onPreWrite(self, args):
        pass

    def onPostWrite(self, args):
        pass

    def onPostAction(self, args):
        pass

    def onConnected(self, connectionInfo):
        pass

    def onInvalidConnection(self, connectionInfo):
        pass

    def onDisconnected(self, connectionInfo):
        pass

    # === REQUESTS === #
    def answer(self, frame: bytes) -> bytes:
        """gurux's reply to one complete request frame (b"": none, or dropped)."""
        with self.meter.lock:
            request = _Request(bytearray(frame))
            self.handleRequest(request)
            reply = bytes(request.reply or b"")
        if self.drop_reply:
            self.drop_reply = False
            return b""
        if reply and self.meter.garble_next_reply:
            self.meter.garble_next_reply = False
            reply = _garbled(reply, self.getInterfaceType())
        return reply


def _garbled(reply: bytes, interface: int) -> bytes:
    """``reply`` damaged as a line damages it: an HDLC frame with one byte of its
    information changed (its check sequence fails), a wrapper header of another
    version."""
    damaged = bytearray(reply)
    damaged[1 if interface == InterfaceType.WRAPPER else len(reply) // 2] ^= 0x5A
    return bytes(damaged)


# === FRAMING (routing only: gurux parses the frames) === #
def _split_wrapper(buffer: bytearray) -> tuple[bytes, int] | None:
    """(one wrapper frame, its destination wPort) from the front of ``buffer``."""
    if len(buffer) < 8:
        return None
    length = int.from_bytes(buffer[6:8], "big")
    if len(buffer) < 8 + length:
        return None
    frame = bytes(buffer[: 8 + length])
    del buffer[: 8 + length]
    return frame, int.from_bytes(frame[4:6], "big")


def _split_hdlc(buffer: bytearray) -> tuple[bytes, int] | None:
    """(one HDLC frame, the physical address it is sent to) from the front of
    ``buffer``; bytes before a frame start are dropped (-1: not a frame, ignored)."""
    start = buffer.find(0x7E)
    if start < 0:
        buffer.clear()
        return None
    del buffer[:start]
    if len(buffer) < 3:
        return None
    length = ((buffer[1] & 0x07) << 8) | buffer[2]
    if len(buffer) < length + 2:
        return None
    frame = bytes(buffer[: length + 2])
    del buffer[: length + 2]
    if frame[-1] != 0x7E or length < 5:
        return frame, -1
    try:
        target = _GXCommon.getHDLCAddress(GXByteBuffer(bytearray(frame[3:])))
    except Exception:
        return frame, -1
    return frame, target & 0x3FFF if target > 0x3FFF else target & 0x7F


class _Handler(socketserver.BaseRequestHandler):
    """One client connection: frames routed to their meter's gurux server (one per
    meter on this connection), replies sent back; frames for no meter: silence."""

    def handle(self):
        simulator: DlmsSimulator = self.server.simulator
        self.servers, self.last_reply = {}, (None, b"")
        buffer = bytearray()
        self.request.settimeout(0.05)
        while not simulator.stopping.is_set():
            try:
                data = self.request.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while (split := simulator.split(buffer)) is not None:
                frame, address = split
                meter = simulator.meter_at(address)
                if meter is not None:
                    self._answer(meter, frame)

    def _answer(self, meter: DlmsMeter, frame: bytes) -> None:
        if meter not in self.servers:
            self.servers[meter] = _MeterServer(meter, self.server.simulator.interface)
        reply = self.servers[meter].answer(frame)
        if not reply:
            return
        other, stray = self.last_reply
        if meter.stray_frame_first and other not in (None, meter):
            meter.stray_frame_first = False
            reply = stray + reply
        self.last_reply = (meter, reply)
        with contextlib.suppress(OSError):
            self.request.sendall(reply)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class DlmsSimulator:
    """``meters`` served on one TCP port of 127.0.0.1 (``port``, ephemeral), in
    ``interface`` "wrapper" (meters by logical address) or "hdlc" (one bus, meters by
    physical address).  A context manager: started on entry, stopped on exit."""

    def __init__(self, meters: list[DlmsMeter], interface: str = "wrapper"):
        if interface not in ("wrapper", "hdlc"):
            raise ValueError(f"unknown DLMS interface {interface!r}")
        self.meters = list(meters)
        self.interface = InterfaceType.WRAPPER if interface == "wrapper" else InterfaceType.HDLC
        self.split = _split_wrapper if interface == "wrapper" else _split_hdlc
        self.stopping = threading.Event()
        self._server = _TcpServer(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        self._server.simulator = self
        self.host, self.port = self._server.server_address
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def meter_at(self, address: int) -> DlmsMeter | None:
        """The meter a frame is sent to: by logical (wrapper) or physical (HDLC) address."""
        for meter in self.meters:
            wanted = (
                meter.logical_address
                if self.interface == InterfaceType.WRAPPER
                else meter.physical_address
            )
            if wanted == address:
                return meter
        return None

    def start(self) -> DlmsSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> DlmsSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> int:
    """``python -m prepaid_core.simulator.dlms_meter``: serve meters until interrupted."""
    parser = argparse.ArgumentParser(description="DLMS meters served by gurux-dlms's server")
    parser.add_argument("--interface", choices=("wrapper", "hdlc"), default="wrapper")
    parser.add_argument("--meters", type=int, default=1)
    parser.add_argument("--authentication", choices=tuple(cosem.AUTHENTICATIONS), default="low")
    parser.add_argument("--security", choices=tuple(cosem.SECURITIES), default="none")
    args = parser.parse_args(argv)
    meters = [
        DlmsMeter(
            logical_address=n,
            physical_address=16 + n,
            authentication=args.authentication,
            security=args.security,
        )
        for n in range(1, args.meters + 1)
    ]
    with DlmsSimulator(meters, args.interface) as simulator:
        print(f"{args.interface} on {simulator.host}:{simulator.port}", flush=True)
        for meter in meters:
            print(f"  logical {meter.logical_address}, physical {meter.physical_address}")
        with contextlib.suppress(KeyboardInterrupt):
            simulator.stopping.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
