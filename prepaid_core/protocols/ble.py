"""Bluetooth GATT profile of the prepaid meter, version 1 (G2 BLE GATT, G3 bridge).

What a bridge needs to talk to a meter: the UUIDs, the packed formats, the decoded values
and the two client exchanges (``read_meter``, ``send_token``) over any connected
``bleak.BleakClient``. The meter side (``prepaid_core.simulator.ble``) packs with the same
formats.

See docs/protocols.md (service, characteristics, formats).
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bleak import BleakClient

__all__ = [
    "INFO_FORMAT",
    "INFO_UUID",
    "PROFILE_VERSION",
    "READING_FORMAT",
    "READING_UUID",
    "RESULT_FORMAT",
    "SERVICE_UUID",
    "TOKEN_RESULT_UUID",
    "TOKEN_UUID",
    "BleReading",
    "TokenResult",
    "TokenStatus",
    "decode_reading",
    "decode_token_result",
    "read_meter",
    "send_token",
]

_BASE = "-7d2c-4f0a-9c3e-5a8b9d0e1f20"
SERVICE_UUID = "6b1e0001" + _BASE
INFO_UUID = "6b1e0002" + _BASE
READING_UUID = "6b1e0003" + _BASE
TOKEN_UUID = "6b1e0004" + _BASE
TOKEN_RESULT_UUID = "6b1e0005" + _BASE

PROFILE_VERSION = 1
INFO_FORMAT = struct.Struct("<B6s")
READING_FORMAT = struct.Struct("<BIIiHIihBIII")
RESULT_FORMAT = struct.Struct("<BIi")


class TokenStatus(IntEnum):
    """The meter's answer to a token write."""

    ACCEPTED = 0
    MALFORMED = 1
    NOT_AUTHENTIC = 2
    WRONG_METER = 3
    REPLAYED = 4
    BAD_AMOUNT = 5


@dataclass(frozen=True)
class BleReading:
    address: str
    forward_kwh: Decimal
    reverse_kwh: Decimal
    balance: Decimal
    voltage_v: Decimal
    current_a: Decimal
    power_kw: Decimal
    pf: Decimal
    relay: str
    status_word: int
    last_token_sequence: int
    meter_time: int


@dataclass(frozen=True)
class TokenResult:
    status: TokenStatus
    sequence: int
    balance: Decimal


def decode_reading(address: str, data: bytes) -> BleReading:
    """The reading characteristic's value of the meter at ``address``."""
    if len(data) != READING_FORMAT.size:
        raise ValueError(f"a reading is {READING_FORMAT.size} bytes, got {len(data)}")
    (version, fwd, rev, bal, volt, cur, power, pf, relay, word, seq, when) = READING_FORMAT.unpack(
        bytes(data)
    )
    if version != PROFILE_VERSION:
        raise ValueError(f"unsupported profile version {version}")
    return BleReading(
        address=address,
        forward_kwh=Decimal(fwd) / 100,
        reverse_kwh=Decimal(rev) / 100,
        balance=Decimal(bal) / 100,
        voltage_v=Decimal(volt) / 10,
        current_a=Decimal(cur) / 1000,
        power_kw=Decimal(power) / 1000,
        pf=Decimal(pf) / 1000,
        relay="on" if relay else "off",
        status_word=word,
        last_token_sequence=seq,
        meter_time=when,
    )


def decode_token_result(data: bytes) -> TokenResult:
    """The token result characteristic's value."""
    if len(data) != RESULT_FORMAT.size:
        raise ValueError(f"a token result is {RESULT_FORMAT.size} bytes, got {len(data)}")
    status, sequence, balance = RESULT_FORMAT.unpack(bytes(data))
    return TokenResult(TokenStatus(status), sequence, Decimal(balance) / 100)


async def read_meter(client: BleakClient) -> BleReading:
    """Read the meter info and reading characteristics of a connected client."""
    info = await client.read_gatt_char(INFO_UUID)
    version, raw_address = INFO_FORMAT.unpack(bytes(info))
    if version != PROFILE_VERSION:
        raise ValueError(f"unsupported profile version {version}")
    return decode_reading(raw_address.hex(), await client.read_gatt_char(READING_UUID))


async def send_token(client: BleakClient, token: bytes | str, timeout: float = 5.0) -> TokenResult:
    """Write a token and wait for its result notification."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[bytearray] = loop.create_future()

    def on_result(_characteristic, data: bytearray) -> None:
        if not result.done():
            result.set_result(data)

    await client.start_notify(TOKEN_RESULT_UUID, on_result)
    try:
        payload = token.encode("ascii") if isinstance(token, str) else bytes(token)
        await client.write_gatt_char(TOKEN_UUID, payload, response=True)
        return decode_token_result(await asyncio.wait_for(result, timeout))
    finally:
        if client.is_connected:
            await client.stop_notify(TOKEN_RESULT_UUID)
