"""G7: TCP collectors with RS-485 buses of virtual meters (real TCP on 127.0.0.1)."""

import asyncio
import contextlib
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core.buses import dlt645_tcp
from prepaid_core.buses.common import CommandJob, LinkSettings, MeterJob
from prepaid_core.protocols import dlt645, modbus
from prepaid_core.protocols.dlt645_data import MeterErrorReply, MeterStatus3
from prepaid_core.simulator.clock import AcceleratedClock, ManualClock, utc
from prepaid_core.simulator.collector import (
    MAX_METERS_PER_BUS,
    Bus,
    Collector,
    Dlt645Responder,
    wire_time,
)
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter

FLAT = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=480)
PASSWORD = "02000000"
OPERATOR = "00000001"


def meters(clock, count, first=1):
    return [
        VirtualMeter(
            MeterConfig(f"{n:012d}", profile=FLAT, balance=Decimal(100), price=Decimal(1)),
            clock,
        )
        for n in range(first, first + count)
    ]


class Master:
    """A minimal polling master over one TCP connection (what the gateway does)."""

    def __init__(self, reader, writer, protocol="dlt645"):
        self.reader, self.writer = reader, writer
        self.framer = dlt645.Framer()
        self.buffer = b""
        self.protocol = protocol

    @classmethod
    async def connect(cls, port, protocol="dlt645"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, protocol)

    async def ask(self, request: bytes, timeout=1.0):
        self.writer.write(request)
        await self.writer.drain()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(4096), remaining)
            except asyncio.TimeoutError:
                return None
            if self.protocol == "dlt645":
                frames = self.framer.feed(data)
                if frames:
                    return frames[0]
            else:
                self.buffer += data
                used, frame = modbus.decode_frame(self.buffer, server=False)
                self.buffer = self.buffer[used:]
                if frame is not None:
                    return frame

    async def read(self, address, di):
        reply = await self.ask(dlt645.read_request(address, di, preamble=4))
        return dlt645.parse_read_reply(reply).value

    def close(self):
        self.writer.close()


def run(coro):
    return asyncio.run(coro)


def test_dlt645_reads_over_tcp():
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 3)

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            clock.advance(hours=2)
            master = await Master.connect(collector.buses[0].port)
            address = "000000000002"
            assert await master.read(address, 0x00000000) == Decimal("2.00")
            assert await master.read(address, 0x00010000) == Decimal("2.00")
            block = await master.read(address, 0x0000FF00)
            assert block[0] == Decimal("2.00") and sum(block[1:]) == Decimal("2.00")
            assert await master.read(address, 0x00900200) == Decimal("98.00")
            assert Decimal(200) < await master.read(address, 0x02010100) < Decimal(240)
            assert await master.read(address, 0x02030000) == Decimal(1)
            assert await master.read(address, 0x04050101) == Decimal(1)
            assert await master.read(address, 0x04000401) == address
            assert await master.read(address, 0x04000102) == utc(2025, 3, 1, 10).time()
            word = MeterStatus3.from_word(await master.read(address, 0x04000503))
            assert not word.relay_off and word.prepaid_type == 2
            reply = await master.ask(dlt645.read_request(address, 0x9010, version=1997))
            assert dlt645.parse_read_reply(reply).value == Decimal("2.00")
            with pytest.raises(MeterErrorReply) as info:
                await master.read(address, 0x12345678)
            assert info.value.error & dlt645.ErrorBits.NO_DATA
            assert await master.ask(dlt645.read_request("000000000099", 0), 0.2) is None
            master.close()

    run(main())


def test_dlt645_relay_write_and_broadcast_time():
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 2)
    meter = bus_meters[0]

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            master = await Master.connect(collector.buses[0].port)
            address = meter.address
            later = dt_local(clock, hours=1)
            trip = dlt645.relay_request(
                address, dlt645.RelayCommand.TRIP, PASSWORD, OPERATOR, later
            )
            dlt645.check_ack(await master.ask(trip), dlt645.Function.RELAY)
            assert meter.relay == "off"
            word = MeterStatus3.from_word(await master.read(address, 0x04000503))
            assert word.relay_off and word.relay_command_off
            stale = dlt645.relay_request(
                address, dlt645.RelayCommand.DIRECT_CLOSE, PASSWORD, OPERATOR,
                dt_local(clock, hours=-1),
            )  # fmt: skip
            with pytest.raises(MeterErrorReply):
                dlt645.check_ack(await master.ask(stale), dlt645.Function.RELAY)
            assert meter.relay == "off"  # a stale command never runs
            wrong = dlt645.relay_request(
                address, dlt645.RelayCommand.DIRECT_CLOSE, "02999999", OPERATOR, later
            )
            with pytest.raises(MeterErrorReply) as info:
                dlt645.check_ack(await master.ask(wrong), dlt645.Function.RELAY)
            assert info.value.error & dlt645.ErrorBits.UNAUTHORIZED
            close = dlt645.relay_request(
                address, dlt645.RelayCommand.DIRECT_CLOSE, PASSWORD, OPERATOR, later
            )
            dlt645.check_ack(await master.ask(close), dlt645.Function.RELAY)
            assert meter.relay == "on"
            write = dlt645.write_request(address, 0x04001001, Decimal(30), PASSWORD, OPERATOR)
            dlt645.check_ack(await master.ask(write), dlt645.Function.WRITE)
            assert meter.alarm1 == 30
            price = dlt645.write_request(address, 0x04050101, Decimal("0.75"), PASSWORD, OPERATOR)
            dlt645.check_ack(await master.ask(price), dlt645.Function.WRITE)
            assert meter.price == Decimal("0.75")
            when = dt_local(clock, minutes=10).replace(microsecond=0)
            assert await master.ask(dlt645.broadcast_time(when), 0.2) is None
            for m in bus_meters:
                assert m.snapshot().ts == utc(2025, 3, 1, 0, 10)
            master.close()

    run(main())


def dt_local(clock, **delta):
    """The meters' local time (UTC+8 here) as DL/T645 carries it, plus ``delta``."""
    return (clock.now() + dt.timedelta(hours=8) + dt.timedelta(**delta)).replace(tzinfo=None)


def test_read_address_alone_and_collision():
    clock = ManualClock(utc(2025, 3, 1))

    async def main():
        buses = [
            Bus.of_meters(meters(clock, 1, first=7), baud=115200),
            Bus.of_meters(meters(clock, 2, first=8), baud=115200),
        ]
        async with Collector(buses) as collector:
            alone = await Master.connect(collector.buses[0].port)
            reply = await alone.ask(dlt645.read_address_request())
            assert dlt645.parse_address_reply(reply) == "000000000007"
            crowded = await Master.connect(collector.buses[1].port)
            assert await crowded.ask(dlt645.read_address_request(), 0.2) is None
            alone.close()
            crowded.close()

    run(main())


def test_power_failed_meter_is_silent_and_garbage_is_ignored():
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 2)

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            master = await Master.connect(collector.buses[0].port)
            bus_meters[0].power_fail()
            assert await master.ask(dlt645.read_request(bus_meters[0].address, 0), 0.2) is None
            bad = bytearray(dlt645.read_request(bus_meters[1].address, 0))
            bad[-2] ^= 0xFF  # checksum
            assert await master.ask(bytes(b"\x00\x11garbage" + bad), 0.2) is None
            assert await master.read(bus_meters[1].address, 0) == Decimal(0)
            master.close()

    run(main())


def test_wire_time_is_emulated_and_buses_run_concurrently():
    clock = ManualClock(utc(2025, 3, 1))
    a, b = meters(clock, 1, first=1), meters(clock, 1, first=2)

    async def main():
        buses = [
            Bus.of_meters(a, baud=2400, turnaround=0),
            Bus.of_meters(b, baud=2400, turnaround=0),
        ]
        async with Collector(buses) as collector:
            m1 = await Master.connect(collector.buses[0].port)
            m2 = await Master.connect(collector.buses[1].port)
            request = dlt645.read_request(a[0].address, 0, preamble=4)
            started = time.monotonic()
            reply = await m1.ask(request)
            single = time.monotonic() - started
            assert (len(request), len(reply.encode(preamble=4))) == (20, 24)
            expected = wire_time(20 + 24, 2400)
            assert expected == pytest.approx(44 * 11 / 2400)  # 8E1: 11 bits a byte
            assert expected * 0.95 <= single < expected + 0.3
            started = time.monotonic()
            await asyncio.gather(
                m1.read(a[0].address, 0),
                m2.read(b[0].address, 0),
            )
            both = time.monotonic() - started
            assert both < 1.8 * expected  # two buses in parallel (in turn: >= 2x)
            started = time.monotonic()
            m3 = await Master.connect(collector.buses[0].port)
            await asyncio.gather(m1.read(a[0].address, 0), m3.read(a[0].address, 0))
            assert time.monotonic() - started >= 1.9 * expected  # one bus: in turn
            assert collector.buses[0].transactions == 4
            for m in (m1, m2, m3):
                m.close()

    run(main())


def test_modbus_bus():
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 3)
    regmap = modbus.register_map("acrel_prepaid_1p")

    async def main():
        bus = Bus.of_meters(bus_meters, "modbus", baud=115200)
        async with Collector([bus]) as collector:
            clock.advance(hours=3)
            master = await Master.connect(collector.buses[0].port, "modbus")
            values = {}
            for request in modbus.build_read_requests(2, regmap):
                reply = await master.ask(bytes(request))
                values.update(modbus.decode_read_response(reply, request))
            assert values["total_energy"] == Decimal(3)
            assert values["remaining_balance"] == Decimal(97)
            assert values["relay_state"] == 0
            assert values["price"] == Decimal(1)
            trip = modbus.build_relay_write(2, regmap, close=False)
            modbus.check_write_response(await master.ask(bytes(trip)), trip)
            assert bus_meters[1].relay == "off" and bus_meters[0].relay == "on"
            alarm = modbus.build_write(2, regmap, "alarm_amount_1", Decimal(40))
            modbus.check_write_response(await master.ask(bytes(alarm)), alarm)
            assert bus_meters[1].alarm1 == 40
            close = modbus.build_relay_write(2, regmap, close=True)
            modbus.check_write_response(await master.ask(bytes(close)), close)
            assert bus_meters[1].relay == "on"
            nobody = modbus.build_read_requests(9, regmap, ["total_energy"])[0]
            assert await master.ask(bytes(nobody), 0.2) is None
            master.close()

    run(main())


def test_bus_limits():
    clock = ManualClock(utc(2025, 3, 1))
    with pytest.raises(ValueError):
        Bus.of_meters(meters(clock, MAX_METERS_PER_BUS + 1))
    with pytest.raises(ValueError):
        Bus.of_meters(meters(clock, 1), baud=1234)
    responder = Dlt645Responder(meters(clock, 1)[0])
    assert responder.matches("AAAAAAAAAAAA") and responder.matches("0000000000AA")
    assert not responder.matches("000000000002")


@contextlib.contextmanager
def simulator_cli(*args):
    """The simulator's command line in a process of its own (``args`` and ``--json``):
    yields the fleet it prints, then stops it with Ctrl-C, which it must survive cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "prepaid_core.simulator", *args, "--json"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_cli_starts_a_fleet_and_prints_it():
    with simulator_cli(
        *("--collectors", "1", "--buses", "2", "--meters", "3", "--protocol", "mixed"),
        *("--base-port", "0", "--baud", "115200", "--speed", "3600", "--duration", "20"),
    ) as fleet:
        dlt_bus, modbus_bus = fleet["collectors"][0]["buses"]
        assert dlt_bus["protocol"] == "dlt645" and modbus_bus["protocol"] == "modbus"
        assert [m["address"] for m in dlt_bus["meters"]] == [
            "000010010001",
            "000010010002",
            "000010010003",
        ]
        assert [m["unit_id"] for m in modbus_bus["meters"]] == [1, 2, 3]

        async def main():
            master = await Master.connect(dlt_bus["port"])
            # speed 3600: a simulated hour per second, the meter has consumed something
            await asyncio.sleep(0.5)
            assert await master.read("000010010002", 0x00000000) > 0
            master.close()

        run(main())


def test_cli_steady_load_and_initial_registers(tmp_path):
    """X3: ``--registers`` starts meters at the totals a platform last read (a restarted
    demo goes on counting); ``--load`` gives one meter a steady load whatever the hour."""
    registers = tmp_path / "registers.json"
    registers.write_text(json.dumps({"000010010001": 1234.5}))
    with simulator_cli(
        *("--collectors", "1", "--buses", "1", "--meters", "2", "--base-port", "0"),
        *("--baud", "115200", "--duration", "20"),
        *("--registers", str(registers), "--load", "000010010002=36000"),
    ) as fleet:
        port = fleet["collectors"][0]["buses"][0]["port"]

        async def main():
            master = await Master.connect(port)
            first = await master.read("000010010001", 0x00000000)
            assert Decimal("1234.5") <= first < Decimal("1234.6")
            # 36 kW steady (noise 2 %): 0.01 kWh a second, about
            power = await master.read("000010010002", 0x02030000)
            assert Decimal("35") <= power <= Decimal("37")
            master.close()

        run(main())


def test_cli_initial_balances(tmp_path):
    """B13: ``--balances`` starts meters that keep their own balance with what the platform
    counts for them; the others start with ``--balance``."""
    balances = tmp_path / "balances.json"
    balances.write_text(json.dumps({"000010010001": "12.34"}))
    with simulator_cli(
        *("--collectors", "1", "--buses", "1", "--meters", "2", "--base-port", "0"),
        *("--baud", "115200", "--duration", "20", "--balance", "500"),
        *("--balances", str(balances), "--load", "000010010001=0"),
    ) as fleet:
        port = fleet["collectors"][0]["buses"][0]["port"]

        async def main():
            master = await Master.connect(port)
            assert await master.read("000010010001", 0x00900200) == Decimal("12.34")
            assert await master.read("000010010002", 0x00900200) > Decimal("499")
            master.close()

        run(main())


def assert_cli_refuses(*args):
    """The simulator's command line exits with an error naming the option ``args[0]``."""
    result = subprocess.run(
        [sys.executable, "-m", "prepaid_core.simulator", "--base-port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert args[0] in result.stderr


def test_cli_refuses_bad_loads_and_registers(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"000010010001": -1}')
    for extra in (
        ("--load", "000010010001"),
        ("--registers", str(bad)),
        ("--balances", str(tmp_path / "missing.json")),
        ("--vending-key-file", str(tmp_path / "missing.key")),
    ):
        assert_cli_refuses(*extra)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=80)
    | st.builds(
        lambda control, data: dlt645.encode_frame("000000000001", control, data),
        st.integers(0, 0x7F),
        st.binary(max_size=40),
    )
)
def test_fuzz_dlt645_meter_answers_anything_without_crashing(payload):
    clock = ManualClock(utc(2025, 3, 1))
    bus = Bus.of_meters(meters(clock, 2), baud=115200)
    for frame in dlt645.Framer().feed(payload):
        reply = bus._answer_dlt645(frame)
        assert isinstance(reply, bytes)
        if reply:
            assert dlt645.parse_frame(reply.lstrip(b"\xfe")).is_reply


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 10))
def test_fuzz_modbus_meter_answers_anything_without_crashing(payload, unit):
    clock = ManualClock(utc(2025, 3, 1))
    bus = Bus.of_meters(meters(clock, 2), "modbus", baud=115200)
    frame = bytes([unit]) + payload
    frame += modbus_crc(frame)
    assert isinstance(bus._answer_modbus(frame), bytes)
    assert isinstance(bus._answer_modbus(payload), bytes)


def modbus_crc(data: bytes) -> bytes:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def test_zeroing_and_lost_replies():
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 1)
    meter = bus_meters[0]

    async def main():
        bus = Bus.of_meters(bus_meters, baud=115200)
        async with Collector([bus]) as collector:
            clock.advance(hours=1)
            master = await Master.connect(collector.buses[0].port)
            clear = dlt645.encode_frame(
                meter.address, dlt645.Function.CLEAR_METER, bytes.fromhex("0200000001000000")
            )
            dlt645.check_ack(await master.ask(clear), dlt645.Function.CLEAR_METER)
            assert meter.snapshot().forward_kwh == 0 and meter.balance == 0
            wrong = dlt645.encode_frame(
                meter.address, dlt645.Function.CLEAR_METER, bytes.fromhex("0299999901000000")
            )
            with pytest.raises(MeterErrorReply):
                dlt645.check_ack(await master.ask(wrong), dlt645.Function.CLEAR_METER)
            # R8: the meter executes the trip, the reply is lost; a read-back shows it
            bus.drop_replies = 1
            later = dt_local(clock, hours=1)
            trip = dlt645.relay_request(
                meter.address, dlt645.RelayCommand.TRIP, PASSWORD, OPERATOR, later
            )
            assert await master.ask(trip, 0.3) is None
            word = MeterStatus3.from_word(await master.read(meter.address, 0x04000503))
            assert word.relay_off
            toggles = meter.relay_toggles
            master.close()
            # an outage of the whole collector, back on the same port
            port = collector.buses[0].port
            await collector.close()
            with pytest.raises(OSError):
                await Master.connect(port)
            await collector.start()
            assert collector.buses[0].port == port
            master = await Master.connect(port)
            assert await master.read(meter.address, 0x00000000) == 0
            assert meter.relay_toggles == toggles
            master.close()

    run(main())


def test_dlt645_daily_frozen_energy_read_by_the_bus_driver():
    """G3: the meter freezes its forward energy at its local midnight; the DL/T645 driver
    reads the last freeze (and nothing, without failing the meter, before the first)."""

    clock = ManualClock(utc(2025, 3, 1))  # 08:00 local (UTC+8)
    bus_meters = meters(clock, 2)

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            port = collector.buses[0].port
            settings = LinkSettings("127.0.0.1", port, timeout=1.0, retries=0)
            jobs = [MeterJob(n, f"{n:012d}", read_daily_frozen=True) for n in (1, 2)]
            clock.advance(hours=2)
            result = await asyncio.to_thread(dlt645_tcp.poll_bus, settings, jobs)
            assert [m.ok for m in result.meters] == [True, True]
            assert result.meters[0].values["daily_frozen"] is None
            assert result.meters[0].values["forward_total"] == Decimal("2.00")
            # local midnight is 16:00 UTC: 16 kWh at 1 kW; then 4 more hours
            clock.advance(hours=18)
            result = await asyncio.to_thread(dlt645_tcp.poll_bus, settings, jobs)
            for meter_result in result.meters:
                frozen = meter_result.values["daily_frozen"]
                assert frozen["frozen_at"] == dt.datetime(2025, 3, 2, 0, 0)
                assert frozen["forward_total"] == Decimal("16.00")
                bands = ("tou_sharp", "tou_peak", "tou_flat", "tou_valley")
                assert sum(frozen[band] for band in bands) == Decimal("16.00")
                assert meter_result.values["forward_total"] == Decimal("20.00")
            # read only when asked
            jobs = [MeterJob(1, "000000000001")]
            result = await asyncio.to_thread(dlt645_tcp.poll_bus, settings, jobs)
            assert "daily_frozen" not in result.meters[0].values

    run(main())


@pytest.mark.parametrize(
    "poll, drifting, offset",
    [(dlt645_tcp.poll_bus, 0, 125), (dlt645_tcp.poll_bus_1997, 1, -300)],
    ids=["2007", "1997"],
)
def test_dlt645_clock_drift_read_by_the_bus_driver(poll, drifting, offset):
    """G3: the driver of each edition reads the meter's date and time (04000101H and
    04000102H; DL/T645-1997: C010H and C011H) when asked, in the same shape, and tells how
    far its clock is from the true time (here ``offset`` seconds, + ahead); a time sync
    (a broadcast, before the read) brings it back."""
    clock = AcceleratedClock()  # the true time: the driver compares with the host's clock
    bus_meters = meters(clock, 2)
    bus_meters[drifting].time_offset = dt.timedelta(seconds=offset)

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            port = collector.buses[0].port
            settings = LinkSettings("127.0.0.1", port, timeout=1.0, retries=0)
            jobs = [MeterJob(n, f"{n:012d}", read_clock=True) for n in (1, 2)]
            result = await asyncio.to_thread(poll, settings, jobs)
            assert [m.ok for m in result.meters] == [True, True]
            clocks = [m.values["clock"] for m in result.meters]
            drifted, right = clocks[drifting], clocks[1 - drifting]
            assert set(right) == {"meter_at", "drift_seconds", "checked_at"}
            assert abs(right["drift_seconds"]) <= 2
            assert offset - 2 <= drifted["drift_seconds"] <= offset + 2
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            assert abs(drifted["checked_at"] - now) < dt.timedelta(seconds=5)
            assert drifted["checked_at"].microsecond == 0
            shift = (drifted["meter_at"] - right["meter_at"]).total_seconds()
            assert abs(shift - offset) <= 5
            assert result.meters[0].values["forward_total"] >= 0  # the reading is still there
            # a time sync (a broadcast, commands first), then the clock read again
            n = drifting + 1
            jobs = [MeterJob(n, f"{n:012d}", [CommandJob(9, "time_sync")], read_clock=True)]
            result = await asyncio.to_thread(poll, settings, jobs)
            assert result.meters[0].outcomes[0].success
            assert abs(result.meters[0].values["clock"]["drift_seconds"]) <= 2
            # read only when asked
            result = await asyncio.to_thread(poll, settings, [MeterJob(2, "000000000002")])
            assert result.meters[0].ok and "clock" not in result.meters[0].values

    run(main())


def test_dlt645_1997_meter_answers_its_date_and_time_with_its_drift():
    """G7: a DL/T645-1997 meter answers date C010H (YYMMDDWW, WW 0 = Sunday) and time C011H
    (hhmmss) from its own clock, drift included, and a broadcast time (08H) sets it."""
    clock = ManualClock(utc(2025, 3, 1, 15, 30))  # Saturday 23:30 local (UTC+8)
    meter = meters(clock, 1)[0]
    meter.time_offset = dt.timedelta(minutes=45)  # ahead: already Sunday at the meter

    async def main():
        async with Collector([Bus.of_meters([meter], baud=115200)]) as collector:
            master = await Master.connect(collector.buses[0].port)
            address = meter.address
            date = await master.ask(dlt645.read_request(address, 0xC010, version=1997))
            assert date.control == 0x81
            assert dlt645.parse_read_reply(date).value == dt.date(2025, 3, 2)
            assert date.data[2:] == bytes.fromhex("00 02 03 25")  # WW DD MM YY: a Sunday
            time_ = await master.ask(dlt645.read_request(address, 0xC011, version=1997))
            assert dlt645.parse_read_reply(time_).value == dt.time(0, 15)
            await master.ask(dlt645.broadcast_time(dt_local(clock)), 0.2)
            time_ = await master.ask(dlt645.read_request(address, 0xC011, version=1997))
            assert dlt645.parse_read_reply(time_).value == dt.time(23, 30)
            master.close()

    run(main())


@pytest.mark.parametrize(
    "poll, reads_before_clock",
    [(dlt645_tcp.poll_bus, 3), (dlt645_tcp.poll_bus_1997, 2)],
    ids=["dlt645_2007", "dlt645_1997"],
)
def test_dlt645_clock_read_across_the_meters_midnight(poll, reads_before_clock):
    """G3: the meter's midnight passes between the date read and the time read: the date
    is read again, so the clock is not taken a day behind.  Each transaction on this bus
    takes one second of the meters' time (the clock is advanced after each answer)."""
    # the date is read at 23:59:59 local (UTC+8), the time at 00:00:00 the next day
    clock = ManualClock(utc(2025, 3, 1, 15, 59, 59 - reads_before_clock))
    bus = Bus.of_meters(meters(clock, 1), baud=115200)
    transact = bus.transact

    async def one_second_each(frame, length):
        reply = await transact(frame, length)
        clock.advance(1)
        return reply

    bus.transact = one_second_each

    async def main():
        async with Collector([bus]) as collector:
            settings = LinkSettings("127.0.0.1", collector.buses[0].port, timeout=1.0, retries=0)
            job = MeterJob(1, "000000000001", read_clock=True)
            result = await asyncio.to_thread(poll, settings, [job])
            assert result.meters[0].ok, result.meters[0].error
            assert result.meters[0].values["clock"]["meter_at"] == dt.datetime(2025, 3, 2)

    run(main())


def read_items(settings, version):
    """(power, balance, energy) of meter 1, read one item at a time."""
    with dlt645_tcp.Link(settings) as link:
        if version == 2007:
            power = link.read_item("000000000001", dlt645_tcp.DI_POWER)
            balance = link.read_item("000000000001", dlt645_tcp.DI_BALANCE)
            energy = link.read_item("000000000001", 0x00000000)
        else:
            power = link.read_item("000000000001", 0xB630, version=1997)
            energy = link.read_item("000000000001", 0x9010, version=1997)
            balance = Decimal("97.00")  # not in DL/T645-1997
    return power, balance, energy


@pytest.mark.parametrize("version", [2007, 1997])
def test_dlt645_late_reply_for_another_item_is_never_read_as_the_item_asked(version):
    """X1: each read reply is preceded by the same meter's late reply to a read of
    another item (energy before power, balance before energy...) and by another meter's
    reply to the same read: the driver discards them (not the identifier, not the
    address asked) and reads the right value; with every reply preceded so the poll is
    as exact as a clean one."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 3)
    bus_meters[2].import_uj += 5 * 3_600_000_000_000  # 5 kWh more than the others
    poll = dlt645_tcp.poll_bus if version == 2007 else dlt645_tcp.poll_bus_1997

    async def main():
        bus = Bus.of_meters(bus_meters, baud=115200)
        async with Collector([bus]):
            clock.advance(hours=3)  # 3 kWh at 1 kW; balance 97 at 1 per kWh
            settings = LinkSettings("127.0.0.1", bus.port, timeout=1.0, retries=0)
            jobs = [MeterJob(n, f"{n:012d}", read_clock=True) for n in (1, 2)]
            clean = await asyncio.to_thread(poll, settings, jobs)
            bus.stale_replies = bus.foreign_replies = 1000
            stale = await asyncio.to_thread(poll, settings, jobs)
            assert bus.foreign_replies < 1000 - 2 * 3
            assert bus.stale_replies < 1000 - 2 * 3  # energy, power, clock at least
            for result in (clean, stale):
                assert [m.ok for m in result.meters] == [True, True], result
                for meter_result in result.meters:
                    values = meter_result.values
                    assert values["forward_total"] == Decimal("3.00")
                    assert values["power"] == Decimal("1.0000")
            for before, after in zip(clean.meters, stale.meters, strict=True):
                drifts = (
                    before.values["clock"]["drift_seconds"],
                    after.values["clock"]["drift_seconds"],
                )
                assert abs(drifts[0] - drifts[1]) <= 2
            # one item at a time: a late balance before the power, a late power before...
            bus.stale_replies = 2
            items = await asyncio.to_thread(read_items, settings, version)
            assert items == (Decimal("1.0000"), Decimal("97.00"), Decimal("3.00"))
            assert bus.stale_replies == 0

    run(main())


@pytest.mark.parametrize("corruption", ["non_bcd", "no_value"])
def test_one_garbled_meter_never_stops_the_poll_of_its_bus(corruption, caplog):
    """X1: a meter whose replies are garbled (digits that are not BCD, a value
    missing) fails alone, with its address and the reason in the result and the log; a
    command whose payload the driver cannot use fails alone for good; every other meter
    of the bus is read, before and after them."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = meters(clock, 4)

    async def main():
        bus = Bus.of_meters(bus_meters, baud=115200)
        garbled = bus.responders[1]
        garbled.corruption, garbled.corrupt_reads = corruption, 10_000
        async with Collector([bus]) as collector:
            clock.advance(hours=2)
            settings = LinkSettings("127.0.0.1", collector.buses[0].port, timeout=0.5, retries=0)
            jobs = [MeterJob(n, f"{n:012d}") for n in (1, 2, 3, 4)]
            # a thresholds command whose payload is no mapping: the driver cannot use it
            jobs[2].commands.append(CommandJob(77, "thresholds", ["alarm1", 5]))
            with caplog.at_level("WARNING"):
                result = await asyncio.to_thread(dlt645_tcp.poll_bus, settings, jobs)
            assert result.connected and not result.error
            assert [m.ok for m in result.meters] == [True, False, True, True]
            assert "000000000002" in caplog.text and result.meters[1].error in caplog.text
            assert result.meters[1].values == {}
            if corruption == "non_bcd":
                assert "not BCD" in result.meters[1].error
            for meter_result in (result.meters[0], *result.meters[2:]):
                assert meter_result.values["forward_total"] == Decimal("2.00")
            (outcome,) = result.meters[2].outcomes
            assert (outcome.command_id, outcome.success, outcome.permanent) == (77, False, True)
            assert "TypeError" in outcome.reason

    run(main())
