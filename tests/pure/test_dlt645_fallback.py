"""G2/X1: DL/T645 as real meters speak it: energy read by block or by single items, the
billing register of the meter model (M2), the meter's own balance, replies that answer
another request refused, read address (13H).  Real TCP against the simulated collector."""

import asyncio
from decimal import Decimal

import pytest

from prepaid_core.buses import dlt645_tcp
from prepaid_core.buses.common import LinkSettings, MeterJob
from prepaid_core.protocols import dlt645, dlt645_data
from prepaid_core.protocols.dlt645_data import (
    BLOCK,
    ITEMS,
    MeterErrorReply,
    ReplyMismatchError,
    ValueRangeError,
)
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter

FLAT = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=480)
KWH = 3_600_000_000_000  # micro-joules


def meters(clock, count):
    return [
        VirtualMeter(
            MeterConfig(f"{n:012d}", profile=FLAT, balance=Decimal(100), price=Decimal(1)),
            clock,
        )
        for n in range(1, count + 1)
    ]


def poll(bus, version, jobs):
    """One poll of ``bus`` by the driver of ``version`` (in a thread: the simulator runs
    on this loop)."""
    settings = LinkSettings("127.0.0.1", bus.port, timeout=0.5, retries=0)
    driver = dlt645_tcp.poll_bus if version == 2007 else dlt645_tcp.poll_bus_1997
    return asyncio.to_thread(driver, settings, jobs)


def on_bus(bus_meters, coroutine):
    async def main():
        bus = Bus.of_meters(bus_meters, baud=115200)
        async with Collector([bus]):
            await coroutine(bus)

    asyncio.run(main())


# === DECISIONS (pure) === #


def test_read_order_tries_the_way_that_worked_last_first():
    assert dlt645_data.read_order("") == (BLOCK, ITEMS)
    assert dlt645_data.read_order(BLOCK) == (BLOCK, ITEMS)
    assert dlt645_data.read_order(ITEMS) == (ITEMS, BLOCK)
    with pytest.raises(ValueRangeError, match="read mode"):
        dlt645_data.read_order("sometimes")


FORWARD_2007 = (0x00010000, 0x00010100, 0x00010200, 0x00010300, 0x00010400)
FORWARD_1997 = (0x9010, 0x9011, 0x9012, 0x9013, 0x9014)


@pytest.mark.parametrize(
    "version, billing, block, items",
    [
        (2007, "combined", 0x0000FF00, (0x00000000, 0x100, 0x200, 0x300, 0x400)),
        (2007, "forward", 0x0001FF00, FORWARD_2007),
        (2007, "forward_reverse", 0x0001FF00, FORWARD_2007),
        (1997, "combined", 0x901F, FORWARD_1997),
        (1997, "forward_reverse", 0x901F, FORWARD_1997),
    ],
)
def test_energy_register_of_each_billing_register(version, billing, block, items):
    register = dlt645_data.energy_register(version, billing)
    assert register == dlt645_data.EnergyRegister(block, items)
    assert dlt645_data.is_block(register.block, version)
    assert not any(dlt645_data.is_block(di, version) for di in register.items)
    item = dlt645_data.data_item(register.items[0], version=version)
    assert item is not None and item.unit == "kWh"


def test_energy_register_refuses_what_it_does_not_know():
    with pytest.raises(ValueRangeError, match="billing register"):
        dlt645_data.energy_register(2007, "reactive")
    with pytest.raises(ValueRangeError, match="version"):
        dlt645_data.energy_register(2013, "forward")


def test_reply_for_another_item_or_meter_is_refused_naming_the_field():
    """X1: a reply that answers another request yields nothing: the error names the
    field that differs (address, data identifier, function, control)."""
    reply = dlt645.parse_frame(dlt645.build_read_reply("000000000001", 0x00900200, Decimal(5)))
    assert dlt645.parse_read_reply(reply, address="000000000001", di=0x00900200).value == 5
    with pytest.raises(ReplyMismatchError, match="data identifier: reply for 00900200H") as exc:
        dlt645.parse_read_reply(reply, address="000000000001", di=0x0000FF00)
    assert exc.value.field == "data identifier"
    with pytest.raises(ReplyMismatchError, match="address: reply from meter 000000000001") as exc:
        dlt645.parse_read_reply(reply, address="000000000002", di=0x00900200)
    assert exc.value.field == "address"
    with pytest.raises(ReplyMismatchError) as exc:
        dlt645.check_reply_to(reply, function=dlt645.Function.WRITE)
    assert exc.value.field == "function"
    request = dlt645.parse_frame(dlt645.read_request("000000000001", 0x00900200))
    with pytest.raises(ReplyMismatchError) as exc:
        dlt645.parse_read_reply(request, di=0x00900200)
    assert exc.value.field == "control"
    old = dlt645.parse_frame(dlt645.build_read_reply("000000000001", 0x9010, 5, version=1997))
    with pytest.raises(ReplyMismatchError, match="reply for 9010H, B630H asked"):
        dlt645.parse_read_reply(old, di=0xB630)
    # an error reply carries no identifier: it is the meter's answer to the read asked
    error = dlt645.parse_frame(dlt645.build_error_reply("000000000001", 0x11, 2))
    with pytest.raises(MeterErrorReply):
        dlt645.parse_read_reply(error, address="000000000001", di=0x0000FF00)


# === OVER THE WIRE === #


@pytest.mark.parametrize("version", [2007, 1997])
def test_meter_refusing_blocks_is_read_item_by_item_and_the_way_is_kept(version):
    """G2: a meter answering "no data" to the energy block is read item by item (total
    and the four tariffs), with the same values as a meter answering blocks; given the
    way back (``read_mode``), the next poll asks no block at all."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 2)
    block = 0x0000FF00 if version == 2007 else 0x901F

    async def main(bus):
        quirky = bus.responders[1]
        quirky.refuses_blocks = True
        clock.advance(hours=3)
        jobs = [MeterJob(n, f"{n:012d}") for n in (1, 2)]
        result = await poll(bus, version, jobs)
        assert [m.ok for m in result.meters] == [True, True], result
        plain, single = (m.values for m in result.meters)
        assert (plain["read_mode"], single["read_mode"]) == (BLOCK, ITEMS)
        for key in ("forward_total", "tou_sharp", "tou_peak", "tou_flat", "tou_valley"):
            assert plain[key] == single[key], key
        assert single["forward_total"] == Decimal("3.00")
        assert list(quirky.reads).count(block) == 1
        quirky.reads.clear()
        jobs[1].read_mode = ITEMS
        result = await poll(bus, version, jobs)
        assert result.meters[1].ok and result.meters[1].values["read_mode"] == ITEMS
        assert not any(dlt645_data.is_block(di, version) for di in quirky.reads)
        # a meter remembered as single-items-only that answers blocks again is read so
        quirky.refuses_blocks = False
        jobs[0].read_mode = ITEMS
        bus.responders[0].refuses_blocks = False
        result = await poll(bus, version, jobs)
        assert result.meters[0].values["read_mode"] == ITEMS

    on_bus(bus_meters, main)


def test_meter_refusing_block_and_items_fails_with_its_error_as_an_answer():
    """A meter refusing its energy both ways fails that reading with the slave's error,
    marked as answered (reachable: not a meter to count towards lost); the others are
    read."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 3)

    async def main(bus):
        refusing = bus.responders[1]
        refusing.refuses_blocks = True
        refusing.missing = {0x00000000 + (n << 8) for n in range(5)}  # no combined energy
        clock.advance(hours=1)
        result = await poll(bus, 2007, [MeterJob(n, f"{n:012d}") for n in (1, 2, 3)])
        assert [m.ok for m in result.meters] == [True, False, True]
        failed = result.meters[1]
        assert failed.answered and failed.values == {}
        assert "refused its energy as a block and as single items" in failed.error
        assert "0000FF00H" in failed.error and "00000000H" in failed.error
        assert "NO_DATA" in failed.error
        # its forward register it has: a model billing forward energy reads it
        job = MeterJob(2, "000000000002", billing_register="forward")
        result = await poll(bus, 2007, [job])
        assert result.meters[0].ok and result.meters[0].values["forward_total"] == 1

    on_bus(bus_meters, main)


@pytest.mark.parametrize("version", [2007, 1997])
def test_billing_register_forward_reverse_and_combined(version):
    """M2: the model says which register bills: combined active (the default), forward
    active, or forward and reverse (for bidirectional meters)."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 1)
    meter = bus_meters[0]

    async def main(bus):
        meter.import_uj, meter.export_uj = 7 * KWH, 2 * KWH
        jobs = [
            MeterJob(1, "000000000001", billing_register=register)
            for register in ("combined", "forward", "forward_reverse")
        ]
        result = await poll(bus, version, jobs)
        combined, forward, both = (m.values for m in result.meters)
        snap = meter.snapshot()
        assert "reverse_total" not in combined and "reverse_total" not in forward
        assert both["reverse_total"] == snap.reverse_kwh == 2
        if version == 2007:
            assert combined["forward_total"] == snap.forward_kwh == 9  # 7 + 2 combined
            assert forward["forward_total"] == both["forward_total"] == snap.import_kwh == 7
        else:  # DL/T645-1997 has no combined energy: the forward register (9010H) bills
            assert combined["forward_total"] == forward["forward_total"] == snap.forward_kwh

    on_bus(bus_meters, main)


def test_remaining_amount_read_when_asked_overdraft_negative():
    """The meter's own balance: remaining amount 00900200H, or minus the overdraft
    00900201H when nothing remains; read only for jobs that ask."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 2)

    async def main(bus):
        clock.advance(hours=3)  # 3 kWh at 1 per kWh
        bus_meters[1].inject_balance_tamper(Decimal(-110))
        jobs = [MeterJob(n, f"{n:012d}", read_balance=True) for n in (1, 2)]
        result = await poll(bus, 2007, jobs)
        assert result.meters[0].values["meter_balance"] == Decimal("97.00")
        assert result.meters[1].values["meter_balance"] == Decimal("-13.00")
        bus.responders[0].reads.clear()
        result = await poll(bus, 2007, [MeterJob(1, "000000000001")])
        assert "meter_balance" not in result.meters[0].values
        assert 0x00900200 not in bus.responders[0].reads

    on_bus(bus_meters, main)


def test_late_reply_for_another_item_is_named_when_nothing_else_comes():
    """X1: a meter answering a read with another item's reply (and nothing else) gives
    nothing for that item; the failure names the field that did not match."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 1)

    async def main(bus):
        bus.responders[0].wrong_item_replies = 1
        result = await poll(bus, 2007, [MeterJob(1, "000000000001")])
        (failed,) = result.meters
        assert not failed.ok and not failed.answered and failed.values == {}
        assert "data identifier: reply for 00900200H, 0000FF00H asked" in failed.error

    on_bus(bus_meters, main)


def test_read_address_of_the_only_meter_on_the_bus():
    """13H to AAAAAAAAAAAA: the only meter of the bus answers with its address; on a bus
    of several meters nobody answers (a real bus would garble their replies)."""
    clock = ManualClock(utc(2025, 3, 1))

    async def one(bus):
        settings = LinkSettings("127.0.0.1", bus.port, timeout=0.5, retries=0)
        assert await asyncio.to_thread(dlt645_tcp.read_bus_address, settings) == "000000000001"

    async def several(bus):
        settings = LinkSettings("127.0.0.1", bus.port, timeout=0.2, retries=0)
        with pytest.raises(dlt645_tcp.Timeout):
            await asyncio.to_thread(dlt645_tcp.read_bus_address, settings)

    on_bus(meters(clock, 1), one)
    on_bus(meters(clock, 2), several)
