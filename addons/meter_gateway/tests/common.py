import asyncio
import threading
import time

from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon

from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter

UJ_PER_KWH = 3_600_000_000_000  # the simulated meters count energy in microjoules


class SimulatorThread:
    """Real simulated collectors on free loopback ports, served by an asyncio loop in a
    thread of their own (the gateway talks to them over real TCP)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.clock = AcceleratedClock()
        self.collectors = []

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def collector(self, addresses_by_bus, baud=9600, protocol="dlt645"):
        """Start a collector with one bus per list of addresses; returns it."""
        buses = [
            Bus.of_meters(
                [VirtualMeter(MeterConfig(address), self.clock) for address in addresses],
                protocol,
                baud=baud,
            )
            for addresses in addresses_by_bus
        ]
        collector = Collector(buses, name=f"sim{len(self.collectors) + 1}")
        self.run(collector.start())
        self.collectors.append(collector)
        return collector

    def meter(self, address):
        for collector in self.collectors:
            for bus in collector.buses:
                for meter in bus.meters:
                    if meter.address == address:
                        return meter
        raise KeyError(address)

    def stop(self):
        for collector in self.collectors:
            self.run(collector.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class MeterGatewayCommon(PrepaidMeterCommon):
    """prepaid_meter's small site plus helpers for commands and simulated collectors."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Command = cls.env["meter.gateway.command"]
        cls.meter2 = cls._create_meter("Power T-102", "000000000102", cls.unit2)

    def _active(self, meter, purpose="relay"):
        return self.Command.search(
            [
                ("meter_id", "=", meter.id),
                ("purpose", "=", purpose),
                ("state", "in", ("queued", "sent")),
            ]
        )

    def _start_simulator(self):
        simulator = SimulatorThread()
        self.addCleanup(simulator.stop)
        return simulator

    @staticmethod
    def _sim_collectors_of_32(sim, numbers):
        """A simulated collector per number in ``numbers``: four buses of eight meters,
        each meter's energy set to what its reading must say; returns the collectors and
        ``{address: expected kWh}``."""
        collectors = [
            sim.collector([[f"00{c}00{b}0000{m:02d}" for m in range(1, 9)] for b in range(1, 5)])
            for c in numbers
        ]
        expected = {}
        for collector in collectors:
            for bus in collector.buses:
                for n, meter in enumerate(bus.meters, start=1):
                    meter.import_uj = (100 * n + bus.port % 50) * UJ_PER_KWH
                    expected[meter.address] = 100 * n + bus.port % 50
        return collectors, expected

    def _tcp_collector(self, name, port, protocol, number=1):
        """A collector on this machine with one bus, number ``number``, at ``port`` speaking
        ``protocol`` (a server of the test behind it); returns the gateway and the bus."""
        gateway = self.env["prepaid.gateway"].create(
            {
                "name": name,
                "gateway_type": "tcp_collector",
                "host": "127.0.0.1",
                "site_id": self.site.id,
                "poll_timeout": 1.0,
                "poll_retries": 1,
            }
        )
        bus = self.env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": number, "port": port, "protocol": protocol}
        )
        return gateway, bus

    def _gateway_for(self, collector, name, unit, protocol="dlt645_2007"):
        """An Odoo collector matching a simulated one: same buses, ports and meters."""
        gateway = self.env["prepaid.gateway"].create(
            {
                "name": name,
                "gateway_type": "tcp_collector",
                "host": "127.0.0.1",
                "site_id": self.site.id,
                "poll_timeout": 0.5,
                "poll_retries": 1,
            }
        )
        meters = self.env["prepaid.meter"]
        for number, sim_bus in enumerate(collector.buses, start=1):
            bus = self.env["prepaid.gateway.bus"].create(
                {
                    "gateway_id": gateway.id,
                    "number": number,
                    "port": sim_bus.port,
                    "baud_rate": "9600",
                    "protocol": protocol,
                }
            )
            meters |= self.env["prepaid.meter"].create(
                [
                    {
                        "name": f"Sim {m.address}",
                        "address": m.address,
                        "model_id": self.ddsy.id,
                        "unit_id": unit.id,
                        "gateway_id": gateway.id,
                        "bus_id": bus.id,
                        "state": "in_service",
                        "modbus_unit_id": position,
                    }
                    for position, m in enumerate(sim_bus.meters, start=1)
                ]
            )
        return gateway, meters


def until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
