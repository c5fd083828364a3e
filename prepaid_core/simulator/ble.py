"""Bluetooth prepaid meters behind a fake bleak backend (feature G7, G2 BLE GATT).

No Bluetooth hardware is needed: ``FakeBleakBackend`` is a bleak backend
(``BleakClient(address, backend=FakeBleakBackend, network=...)``) that talks to
``BlePeripheral`` objects registered in a ``FakeBleNetwork``. The client code is the real
``bleak.BleakClient``, so what works against the fake works against a meter.

The GATT profile (UUIDs, formats, decoding and the client exchanges ``read_meter`` and
``send_token``) is ``prepaid_core.protocols.ble``; this module is the meter side that packs
with it, and re-exports the profile's names.  The fake negotiates an ATT MTU of 247.

Range: ``FakeBleNetwork.move_away(mac)`` takes a meter out of range (10 m in the seed
documents); connecting then fails and a connected client is told through bleak's
``disconnected_callback``.  ``BlePeripheral.fail_token_writes = n``: the next ``n`` token
writes fail at the ATT level ("unlikely error"), the tokens not applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError

from prepaid_core import sts
from prepaid_core.protocols.ble import (
    INFO_FORMAT,
    INFO_UUID,
    PROFILE_VERSION,
    READING_FORMAT,
    READING_UUID,
    RESULT_FORMAT,
    SERVICE_UUID,
    TOKEN_RESULT_UUID,
    TOKEN_UUID,
    BleReading,
    TokenResult,
    TokenStatus,
    decode_reading,
    decode_token_result,
    read_meter,
    send_token,
)
from prepaid_core.simulator.meter import TOKEN_ERRORS, VirtualMeter
from prepaid_core.tokens import (
    BINARY_TOKEN_LENGTH,
    KEYPAD_DIGITS,
    Token,
    TokenAmountError,
    TokenAuthError,
    TokenReplayError,
    WrongMeterError,
)

__all__ = [
    "INFO_UUID",
    "READING_UUID",
    "SERVICE_UUID",
    "TOKEN_RESULT_UUID",
    "TOKEN_UUID",
    "BlePeripheral",
    "BleReading",
    "FakeBleNetwork",
    "FakeBleakBackend",
    "TokenResult",
    "TokenStatus",
    "decode_reading",
    "decode_token_result",
    "encode_reading",
    "read_meter",
    "send_token",
]

MTU = 247
_ATT_INVALID_LENGTH = 0x0D
_ATT_READ_NOT_PERMITTED = 0x02
_ATT_WRITE_NOT_PERMITTED = 0x03
_ATT_UNLIKELY_ERROR = 0x0E


def _cents(value: Decimal, scale: int = 100) -> int:
    return int((value * scale).to_integral_value())


def encode_reading(meter: VirtualMeter) -> bytes:
    snap = meter.snapshot()
    return READING_FORMAT.pack(
        PROFILE_VERSION,
        _cents(snap.forward_kwh),
        _cents(snap.reverse_kwh),
        max(min(_cents(snap.balance), 2**31 - 1), -(2**31)),
        _cents(snap.voltage_v, 10),
        _cents(snap.current_a, 1000),
        _cents(snap.power_kw, 1000),
        _cents(snap.pf, 1000),
        1 if snap.relay == "on" else 0,
        snap.status_word,
        snap.last_token_sequence,
        int(snap.ts.timestamp()),
    )


_REFUSALS = (
    (WrongMeterError, TokenStatus.WRONG_METER),
    ((TokenAuthError, sts.StsCrcError), TokenStatus.NOT_AUTHENTIC),
    ((TokenReplayError, sts.StsReplayError), TokenStatus.REPLAYED),
    ((TokenAmountError, sts.StsAmountError), TokenStatus.BAD_AMOUNT),
)


def _token_status(error: Exception) -> TokenStatus:
    """The GATT result of a refused token (own format or STS)."""
    for errors, status in _REFUSALS:
        if isinstance(error, errors):
            return status
    return TokenStatus.MALFORMED


def _token_number(accepted) -> int:
    """What the result reports of an accepted token: its sequence number (own format),
    its token identifier (STS), 0 for a key change token."""
    if isinstance(accepted, Token):
        return accepted.sequence
    return accepted.tid if isinstance(accepted, sts.StsToken) else 0


# === PERIPHERAL (the meter side) === #


class BlePeripheral:
    """The GATT server of one Bluetooth meter."""

    def __init__(self, meter: VirtualMeter, mac: str, name: str | None = None):
        self.meter = meter
        self.mac = mac.upper()
        self.name = name or f"PREPAID-{meter.address[-6:]}"
        self.in_range = True
        self.last_result = RESULT_FORMAT.pack(0, 0, 0)
        self._subscribers: dict[str, list[Callable[[bytearray], None]]] = {}
        self.connections: list[FakeBleakBackend] = []
        #: fault injection: the next N token writes fail at the ATT level (the link drops
        #: during the write): the token is not applied
        self.fail_token_writes = 0

    def read(self, uuid: str) -> bytes:
        if uuid == INFO_UUID:
            return INFO_FORMAT.pack(PROFILE_VERSION, bytes.fromhex(self.meter.address))
        if uuid == READING_UUID:
            return encode_reading(self.meter)
        if uuid == TOKEN_RESULT_UUID:
            return self.last_result
        raise BleakGATTProtocolError(_ATT_READ_NOT_PERMITTED)

    def write(self, uuid: str, data: bytes) -> None:
        if uuid != TOKEN_UUID:
            raise BleakGATTProtocolError(_ATT_WRITE_NOT_PERMITTED)
        if self.fail_token_writes > 0:
            self.fail_token_writes -= 1
            raise BleakGATTProtocolError(_ATT_UNLIKELY_ERROR)
        if len(data) == BINARY_TOKEN_LENGTH:
            token: bytes | str = bytes(data)
        elif len(data) == KEYPAD_DIGITS:
            try:
                token = bytes(data).decode("ascii")
            except UnicodeDecodeError:
                token = "?" * KEYPAD_DIGITS  # rejected as malformed below
        else:
            raise BleakGATTProtocolError(_ATT_INVALID_LENGTH)
        try:
            accepted = self.meter.apply_token(token)
        except TOKEN_ERRORS as error:
            status, sequence = _token_status(error), 0
        else:
            status, sequence = TokenStatus.ACCEPTED, _token_number(accepted)
        balance = max(min(_cents(self.meter.balance), 2**31 - 1), -(2**31))
        self.last_result = RESULT_FORMAT.pack(status, sequence, balance)
        self.notify(TOKEN_RESULT_UUID, self.last_result)
        self.notify(READING_UUID, encode_reading(self.meter))

    def subscribe(self, uuid: str, callback: Callable[[bytearray], None]) -> None:
        if uuid not in (READING_UUID, TOKEN_RESULT_UUID):
            raise BleakGATTProtocolError(_ATT_READ_NOT_PERMITTED)
        self._subscribers.setdefault(uuid, []).append(callback)

    def unsubscribe(self, uuid: str, callback=None) -> None:
        if callback is None:
            self._subscribers.pop(uuid, None)
        else:
            self._subscribers.get(uuid, []).remove(callback)

    def notify(self, uuid: str, value: bytes) -> None:
        """Send a notification (delivered on the event loop, as a radio would)."""
        loop = asyncio.get_running_loop()
        for callback in list(self._subscribers.get(uuid, [])):
            loop.call_soon(callback, bytearray(value))

    def notify_reading(self) -> None:
        self.notify(READING_UUID, encode_reading(self.meter))


class FakeBleNetwork:
    """The radio neighbourhood: which peripherals can be reached by MAC address."""

    def __init__(self) -> None:
        self.peripherals: dict[str, BlePeripheral] = {}

    def add(self, peripheral: BlePeripheral) -> BlePeripheral:
        self.peripherals[peripheral.mac] = peripheral
        return peripheral

    def find(self, mac: str) -> BlePeripheral | None:
        peripheral = self.peripherals.get(mac.upper())
        return peripheral if peripheral is not None and peripheral.in_range else None

    def move_away(self, mac: str) -> None:
        peripheral = self.peripherals[mac.upper()]
        peripheral.in_range = False
        for backend in list(peripheral.connections):
            backend._lost()

    def come_back(self, mac: str) -> None:
        self.peripherals[mac.upper()].in_range = True


DEFAULT_NETWORK = FakeBleNetwork()


# === BACKEND (the bleak side) === #


def _build_services(peripheral: BlePeripheral) -> BleakGATTServiceCollection:
    services = BleakGATTServiceCollection()
    service = BleakGATTService(peripheral, 1, SERVICE_UUID)
    services.add_service(service)
    layout = (
        (INFO_UUID, ["read"]),
        (READING_UUID, ["read", "notify"]),
        (TOKEN_UUID, ["write"]),
        (TOKEN_RESULT_UUID, ["read", "notify"]),
    )
    for index, (uuid, properties) in enumerate(layout):
        characteristic = BleakGATTCharacteristic(
            peripheral, 2 + 3 * index, uuid, properties, lambda: MTU - 3, service
        )
        services.add_characteristic(characteristic)  # also adds it to its service
    return services


class FakeBleakBackend(BaseBleakClient):
    """A bleak backend over a ``FakeBleNetwork`` (keyword ``network``, default shared)."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        network: FakeBleNetwork | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.network = network or DEFAULT_NETWORK
        self.peripheral: BlePeripheral | None = None

    @property
    def name(self) -> str:
        return self.peripheral.name if self.peripheral else self.address

    @property
    def mtu_size(self) -> int:
        return MTU

    @property
    def is_connected(self) -> bool:
        return self.peripheral is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        peripheral = self.network.find(self.address)
        if peripheral is None:
            raise BleakDeviceNotFoundError(self.address, f"Device {self.address} not found")
        self.peripheral = peripheral
        peripheral.connections.append(self)
        self.services = _build_services(peripheral)

    async def disconnect(self) -> None:
        if self.peripheral is not None:
            self._drop()

    def _drop(self) -> None:
        peripheral, self.peripheral = self.peripheral, None
        if peripheral is not None:
            if self in peripheral.connections:
                peripheral.connections.remove(self)
            for uuid in (READING_UUID, TOKEN_RESULT_UUID):
                for callback in list(peripheral._subscribers.get(uuid, [])):
                    if getattr(callback, "backend", None) is self:
                        peripheral.unsubscribe(uuid, callback)
        self.services = None

    def _lost(self) -> None:
        """The peripheral went out of range: unsolicited disconnection."""
        self._drop()
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def unpair(self) -> None:
        return None

    def _connected(self) -> BlePeripheral:
        if self.peripheral is None:
            raise BleakError("Not connected")
        return self.peripheral

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs
    ) -> bytearray:
        await asyncio.sleep(0)
        return bytearray(self._connected().read(characteristic.uuid))

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, **kwargs) -> bytearray:
        raise BleakGATTProtocolError(_ATT_READ_NOT_PERMITTED)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data, response: bool
    ) -> None:
        await asyncio.sleep(0)
        self._connected().write(characteristic.uuid, bytes(data))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        raise BleakGATTProtocolError(_ATT_WRITE_NOT_PERMITTED)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: Callable, **kwargs
    ) -> None:
        def deliver(data: bytearray) -> None:
            callback(data)

        deliver.backend = self  # type: ignore[attr-defined]
        deliver.uuid = characteristic.uuid  # type: ignore[attr-defined]
        self._connected().subscribe(characteristic.uuid, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peripheral = self._connected()
        for callback in list(peripheral._subscribers.get(characteristic.uuid, [])):
            if getattr(callback, "backend", None) is self:
                peripheral.unsubscribe(characteristic.uuid, callback)
