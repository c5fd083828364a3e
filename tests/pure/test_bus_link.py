"""G1/G3: the link to one bus is a pyserial URL: a collector's TCP port (``socket://``),
a local serial device (here a pseudo-terminal) or ``loop://``; the drivers run the same
over each, with the same answer timeout and the same lost-connection handling."""

import asyncio
import socket
import threading
import time
from decimal import Decimal

import pytest

from prepaid_core import buses
from prepaid_core.buses import dlt645_tcp, modbus_tcp
from prepaid_core.buses.common import LinkSettings, MeterJob, Timeout
from prepaid_core.gateway_runner import collector as runner_collector
from prepaid_core.protocols import dlt645
from prepaid_core.simulator.clock import ManualClock, utc
from prepaid_core.simulator.collector import Bus, Collector, Dlt645Responder, ModbusResponder
from prepaid_core.simulator.meter import LoadProfile, MeterConfig, VirtualMeter
from prepaid_core.simulator.serial_bus import SerialBus

FLAT = LoadProfile(base_w=1000, peak_w=1000, noise=0, shape=(1.0,) * 24, utc_offset_minutes=480)


def virtual_meters(clock, count):
    return [
        VirtualMeter(MeterConfig(f"{n:012d}", profile=FLAT, balance=Decimal(100)), clock)
        for n in range(1, count + 1)
    ]


def test_link_settings_url_from_host_and_port_or_given():
    tcp = LinkSettings("10.1.2.3", 4001)
    assert tcp.url == "socket://10.1.2.3:4001"
    assert tcp.where == "10.1.2.3:4001"
    serial_bus = LinkSettings(url="/dev/ttyUSB0", baudrate=2400, parity="E")
    assert serial_bus.url == "/dev/ttyUSB0" and serial_bus.where == "/dev/ttyUSB0"
    assert (serial_bus.baudrate, serial_bus.bytesize, serial_bus.parity) == (2400, 8, "E")
    assert serial_bus.stopbits == 1
    # the same settings compare equal (the runner reopens a bus only when they change)
    assert LinkSettings("10.1.2.3", 4001) == tcp != LinkSettings("10.1.2.3", 4002)
    with pytest.raises(ValueError):
        LinkSettings()


def test_socket_url_polls_the_simulated_collector():
    """A bus given by its URL is served as one given by host and port."""
    clock = ManualClock(utc(2025, 3, 1))
    bus_meters = virtual_meters(clock, 2)

    async def main():
        async with Collector([Bus.of_meters(bus_meters, baud=115200)]) as collector:
            url = f"socket://127.0.0.1:{collector.buses[0].port}"
            settings = LinkSettings(url=url, timeout=1.0, retries=0)
            jobs = [MeterJob(n, f"{n:012d}") for n in (1, 2)]
            clock.advance(hours=3)
            return await asyncio.to_thread(buses.poll_bus, "dlt645_2007", settings, jobs)

    result = asyncio.run(main())
    assert result.connected and not result.error
    assert [m.values["forward_total"] for m in result.meters] == [Decimal("3.00")] * 2


def test_loop_url_echo_is_not_an_answer_timeout_then_next_meter():
    """On ``loop://`` every request comes back as it was sent: DL/T645 takes no request
    for a reply, so each meter times out after the answer timeout (retries included),
    fails alone, and the bus stays connected."""
    settings = LinkSettings(url="loop://", timeout=0.2, retries=1)
    started = time.monotonic()
    result = buses.poll_bus(
        "dlt645_2007", settings, [MeterJob(1, "000000000001"), MeterJob(2, "000000000002")]
    )
    elapsed = time.monotonic() - started
    assert result.connected and not result.error
    assert [m.ok for m in result.meters] == [False, False]
    assert all("no answer from" in m.error and "within 0.2s" in m.error for m in result.meters)
    assert 0.8 <= elapsed < 3  # two meters x (one try + one retry) x 0.2 s


def test_loop_url_modbus_echo_is_a_bad_answer_of_that_meter():
    """Modbus takes the echoed request as the answer: a device error of that meter only."""
    settings = LinkSettings(url="loop://", timeout=0.2, retries=0)
    jobs = [MeterJob(1, "000000000001", unit_id=1, register_map="acrel_prepaid_1p")]
    result = buses.poll_bus("modbus_rtu", settings, jobs)
    assert result.connected and not result.error
    assert not result.meters[0].ok and result.meters[0].error


def test_link_receive_timeout_and_connection_closed():
    """``Timeout`` when nothing came before the deadline, ``ConnectionError`` when the
    collector closed its end; an idle link tells it is no longer alive."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    with server, dlt645_tcp.Link(LinkSettings("127.0.0.1", port, timeout=0.1)) as link:
        peer, _ = server.accept()
        with pytest.raises(Timeout):
            link._receive(link._deadline(), " from 000000000001")
        assert link.alive()
        peer.sendall(b"late")
        assert link.alive()  # late bytes are dropped, the link still open
        peer.close()
        time.sleep(0.05)
        assert not link.alive()
        with pytest.raises(ConnectionError):
            link._receive(link._deadline())


def test_connection_lost_mid_bus_ends_the_bus():
    """A collector that closes the connection after the first answer: the bus ends with
    the reason, the rest of its meters are left for the next poll."""
    clock = ManualClock(utc(2025, 3, 1))
    meter = virtual_meters(clock, 1)[0]
    responder = Dlt645Responder(meter)
    server = socket.create_server(("127.0.0.1", 0))

    def serve_one_answer():
        peer, _ = server.accept()
        framer = dlt645.Framer()
        while True:
            frames = framer.feed(peer.recv(4096))
            if frames:
                peer.sendall(responder.answer(frames[0]))
                break
        peer.close()

    thread = threading.Thread(target=serve_one_answer, daemon=True)
    thread.start()
    settings = LinkSettings("127.0.0.1", server.getsockname()[1], timeout=1.0, retries=0)
    jobs = [MeterJob(1, meter.address), MeterJob(2, "000000000002")]
    with server:
        result = dlt645_tcp.poll_bus(settings, jobs)
    thread.join(5)
    assert result.connected
    assert "connection lost" in result.error
    assert [m.ok for m in result.meters] == [False]  # the first meter's second read failed


@pytest.fixture
def pty_modbus_meter():
    """A Modbus meter (unit 1) behind a pseudo-terminal: the device path of a local
    serial port, answered by the simulator's Modbus responder."""
    clock = ManualClock(utc(2025, 3, 1))
    meter = virtual_meters(clock, 1)[0]
    with SerialBus([ModbusResponder(meter, 1)]) as bus:
        yield clock, meter, bus.device


def test_device_path_modbus_meter_read_and_relay(pty_modbus_meter):
    """A local serial device at Modbus's 9600 8N1: a reading and a relay command read back
    (R8), by the same driver as over a collector's TCP port."""
    clock, meter, device = pty_modbus_meter
    clock.advance(hours=2)
    settings = LinkSettings(url=device, baudrate=9600, parity="N", timeout=1.0, retries=0)
    job = MeterJob(
        1,
        meter.address,
        [buses.CommandJob(7, "relay_off")],
        unit_id=1,
        register_map="acrel_prepaid_1p",
    )
    result = modbus_tcp.poll_bus(settings, [job])
    assert result.connected, result.error
    reading = result.meters[0]
    assert reading.ok, reading.error
    assert reading.values["forward_total"] == Decimal("2.00")
    assert reading.values["relay_state"] == "off"
    assert reading.outcomes[0].success and "read-back confirms" in reading.outcomes[0].reason
    assert meter.relay == "off"


def test_device_refusing_the_line_settings_is_not_connected(pty_modbus_meter):
    """A device that refuses the bus's line settings (a pseudo-terminal takes no parity):
    the bus is reported not connected, with the device and the reason."""
    _clock, meter, device = pty_modbus_meter
    settings = LinkSettings(url=device, baudrate=2400, parity="E", timeout=0.5)
    result = buses.poll_bus("dlt645_2007", settings, [MeterJob(1, meter.address)])
    assert not result.connected
    assert result.error.startswith(f"cannot connect to {device}: ")
    assert result.meters == []


def test_runner_link_settings_from_the_collector_config():
    """The gateway runner holds a collector's TCP port, or a serial device of its own
    machine when the device API's bus names one."""
    collector = {
        "host": "10.0.0.7",
        "timeout": 0.5,
        "retries": 1,
        "password": "02000000",
        "operator": "00000000",
        "utc_offset_minutes": 480,
    }
    tcp = runner_collector._link_settings(collector, {"port": 4001})
    assert (tcp.url, tcp.timeout, tcp.retries) == ("socket://10.0.0.7:4001", 0.5, 1)
    local = runner_collector._link_settings(
        collector, {"port": 0, "url": "/dev/ttyUSB0", "baudrate": 2400, "parity": "E"}
    )
    assert (local.url, local.baudrate, local.parity, local.stopbits) == (
        "/dev/ttyUSB0",
        2400,
        "E",
        1,
    )
