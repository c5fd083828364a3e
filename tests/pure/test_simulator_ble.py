"""G7/G2: Bluetooth meters through bleak's real BleakClient with the fake backend; the GATT
profile codec of prepaid_core.protocols.ble against it."""

import asyncio
from decimal import Decimal

import pytest
from bleak import BleakClient
from bleak.exc import BleakDeviceNotFoundError, BleakGATTProtocolError

from prepaid_core.protocols import ble as gatt
from prepaid_core.simulator import ble
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.tokens import TokenKind, issue_keypad_token, issue_token

KEY = b"test vending key 0123456789abcdef"
ADDR = "000000004242"
MAC = "C0:FF:EE:00:42:42"
FLAT = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=0)


@pytest.fixture
def setup():
    clock = ManualClock(utc(2025, 3, 1))
    meter = VirtualMeter(
        MeterConfig(ADDR, vending_key=KEY, profile=FLAT, balance=Decimal(10), price=Decimal(1)),
        clock,
    )
    network = ble.FakeBleNetwork()
    peripheral = network.add(ble.BlePeripheral(meter, MAC))
    return clock, meter, network, peripheral


def client(network, **kwargs):
    return BleakClient(MAC, backend=ble.FakeBleakBackend, network=network, **kwargs)


def test_profile_and_reading(setup):
    clock, _meter, network, _ = setup

    async def main():
        clock.advance(hours=2)
        async with client(network) as c:
            service = c.services.get_service(gatt.SERVICE_UUID)
            assert {ch.uuid for ch in service.characteristics} == {
                gatt.INFO_UUID,
                gatt.READING_UUID,
                gatt.TOKEN_UUID,
                gatt.TOKEN_RESULT_UUID,
            }
            assert "notify" in c.services.get_characteristic(gatt.READING_UUID).properties
            reading = await gatt.read_meter(c)
        assert reading.address == ADDR
        assert reading.forward_kwh == Decimal(2)
        assert reading.balance == Decimal(8)
        assert reading.relay == "on"
        assert reading.power_kw == Decimal(1)
        assert reading.meter_time == int(utc(2025, 3, 1, 2).timestamp())

    asyncio.run(main())


def test_tokens_over_ble_binary_and_keypad_once(setup):
    _clock, meter, network, _ = setup

    async def main():
        async with client(network) as c:
            binary = issue_token(KEY, ADDR, TokenKind.CREDIT, Decimal(20), 1)
            result = await gatt.send_token(c, binary)
            assert result == gatt.TokenResult(gatt.TokenStatus.ACCEPTED, 1, Decimal(30))
            replay = await gatt.send_token(c, binary)
            assert replay.status == gatt.TokenStatus.REPLAYED and replay.balance == 30
            keypad = issue_keypad_token(KEY, ADDR, TokenKind.CREDIT, Decimal("5.5"), 2)
            result = await gatt.send_token(c, keypad)
            assert result.status == gatt.TokenStatus.ACCEPTED
            assert result.balance == Decimal("35.5")
            other = issue_token(KEY, "000000004243", TokenKind.CREDIT, Decimal(20), 3)
            assert (await gatt.send_token(c, other)).status == gatt.TokenStatus.WRONG_METER
            tampered = bytearray(issue_token(KEY, ADDR, TokenKind.CREDIT, Decimal(20), 4))
            tampered[15] ^= 0x80
            result = await gatt.send_token(c, bytes(tampered))
            assert result.status == gatt.TokenStatus.NOT_AUTHENTIC
            assert (await gatt.send_token(c, "x" * 20)).status == gatt.TokenStatus.MALFORMED
            with pytest.raises(BleakGATTProtocolError):
                await c.write_gatt_char(gatt.TOKEN_UUID, b"short", response=True)
            with pytest.raises(BleakGATTProtocolError):
                await c.write_gatt_char(gatt.READING_UUID, b"x" * 40, response=True)
        assert meter.credited_total == Decimal("25.5")

    asyncio.run(main())


def test_reading_notifications(setup):
    clock, _meter, network, peripheral = setup

    async def main():
        received = []
        async with client(network) as c:
            await c.start_notify(gatt.READING_UUID, lambda ch, data: received.append(data))
            clock.advance(hours=1)
            peripheral.notify_reading()
            await asyncio.sleep(0.01)
            await c.stop_notify(gatt.READING_UUID)
            peripheral.notify_reading()
            await asyncio.sleep(0.01)
        assert len(received) == 1
        assert gatt.decode_reading(ADDR, received[0]).forward_kwh == Decimal(1)

    asyncio.run(main())


def test_out_of_range(setup):
    _clock, _meter, network, _ = setup

    async def main():
        lost = asyncio.Event()
        c = client(network, disconnected_callback=lambda _client: lost.set())
        await c.connect()
        network.move_away(MAC)
        await asyncio.wait_for(lost.wait(), 1)
        assert not c.is_connected
        with pytest.raises(BleakDeviceNotFoundError):
            await client(network).connect()
        network.come_back(MAC)
        async with client(network) as again:
            assert (await gatt.read_meter(again)).address == ADDR

    asyncio.run(main())


def test_decoders_reject_bad_lengths():
    with pytest.raises(ValueError):
        gatt.decode_reading(ADDR, b"\x01" * 10)
    with pytest.raises(ValueError):
        gatt.decode_token_result(b"\x00")
