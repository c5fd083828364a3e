import asyncio
import threading
import time

from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon

from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import Bus, Collector
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter
from prepaid_core.simulator.mqtt_meter import MqttFleet


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


class MqttFleetThread:
    """Simulated 4G meters (``MqttFleet``, one MQTT client each) on a real Mosquitto,
    served by an asyncio loop in a thread; readings only when asked (``publish_reading``)."""

    def __init__(self, broker, addresses, vending_key=None):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        clock = AcceleratedClock()
        extra = {"vending_key": vending_key} if vending_key else {}
        meters = [VirtualMeter(MeterConfig(a, **extra), clock) for a in addresses]

        async def start():
            fleet = MqttFleet(meters, broker.host, broker.port, clock, reading_interval=10**6)
            await fleet.start(timeout=20)
            await fleet.wait_connected(timeout=10)
            return fleet

        self.fleet = self.call(start())

    def call(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def publish_reading(self, address):
        async def publish():
            self.fleet[address].publish_reading()

        self.call(publish())

    def meter(self, address):
        return self.fleet[address].meter

    def stop(self):
        self.call(self.fleet.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
