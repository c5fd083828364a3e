from odoo.exceptions import ValidationError
from odoo.tests import tagged

from prepaid_core.gateway_runner import collector as runner_collector
from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import ModbusResponder
from prepaid_core.simulator.meter import MeterConfig, VirtualMeter
from prepaid_core.simulator.serial_bus import SerialBus

from .common import UJ_PER_KWH, MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestBusLink(MeterGatewayCommon):
    """G1: a bus is reached through its collector's TCP port or a local serial device,
    at its protocol's usual line unless set otherwise."""

    def _gateway(self):
        return self.env["prepaid.gateway"].create(
            {
                "name": "Line Collector",
                "gateway_type": "tcp_collector",
                "host": "10.0.0.7",
                "site_id": self.site.id,
                "poll_timeout": 0.5,
                "poll_retries": 0,
            }
        )

    def _bus(self, gateway, **values):
        return self.env["prepaid.gateway.bus"].create({"gateway_id": gateway.id, **values})

    def test_line_defaults_follow_the_protocol(self):
        gateway = self._gateway()
        dlt645 = self._bus(gateway, number=1, port=4001)
        self.assertEqual((dlt645.baud_rate, dlt645.parity, dlt645.stop_bits), ("2400", "E", "1"))
        modbus_bus = self._bus(gateway, number=2, port=4002, protocol="modbus_rtu")
        self.assertEqual(
            (modbus_bus.baud_rate, modbus_bus.parity, modbus_bus.stop_bits), ("9600", "N", "1")
        )
        chosen = self._bus(gateway, number=3, port=4003, baud_rate="9600", parity="O")
        self.assertEqual((chosen.baud_rate, chosen.parity), ("9600", "O"))

    def test_link_settings_of_a_tcp_port_and_of_a_serial_device(self):
        gateway = self._gateway()
        tcp = self._bus(gateway, number=1, port=4001)
        settings = tcp._link_settings()
        self.assertEqual(settings.url, "socket://10.0.0.7:4001")
        self.assertEqual((settings.timeout, settings.retries), (0.5, 0))
        local = self._bus(gateway, number=2, connection="serial", device=" /dev/ttyUSB0 ")
        settings = local._link_settings(password="02123456")
        self.assertEqual(settings.url, "/dev/ttyUSB0")
        self.assertEqual(
            (settings.baudrate, settings.bytesize, settings.parity, settings.stopbits),
            (2400, 8, "E", 1),
        )
        self.assertEqual(settings.password, "02123456")
        with self.assertRaises(ValidationError):
            self._bus(gateway, number=3, connection="serial")

    def test_poll_a_modbus_bus_on_a_local_serial_device(self):
        """A Modbus-RTU meter behind a pseudo-terminal (a serial device at 9600 8N1,
        answered by the simulator's Modbus responder) is polled by the same driver and
        its reading stored."""
        meter = VirtualMeter(MeterConfig("007000000001"), AcceleratedClock())
        meter.import_uj = 17 * UJ_PER_KWH
        bus_device = SerialBus([ModbusResponder(meter, 1)])
        device = bus_device.__enter__().device
        self.addCleanup(bus_device.__exit__)
        gateway = self._gateway()
        bus = self._bus(
            gateway, number=1, connection="serial", device=device, protocol="modbus_rtu"
        )
        self.assertEqual(bus.driver, "modbus_tcp")
        ours = self.env["prepaid.meter"].create(
            {
                "name": "Serial Modbus",
                "address": meter.address,
                "model_id": self.ddsy.id,
                "unit_id": self.unit.id,
                "gateway_id": gateway.id,
                "bus_id": bus.id,
                "state": "in_service",
                "modbus_unit_id": 1,
            }
        )
        gateway._poll()
        reading = self.env["prepaid.meter.reading"].search([("meter_id", "=", ours.id)])
        self.assertEqual(len(reading), 1)
        self.assertAlmostEqual(reading.forward_total, 17, delta=0.05)

    def test_runner_config_carries_serial_buses_with_their_line(self):
        """A collector served by a gateway runner: the device API's config lists its
        serial buses too (a device of the runner's machine, at the bus's line), and the
        runner holds each bus by its number, so two serial buses never share a link."""
        gateway = self._gateway()
        self._bus(gateway, number=1, port=4001)
        self._bus(gateway, number=2, connection="serial", device="/dev/ttyUSB0")
        self._bus(gateway, number=3, connection="serial", device="/dev/ttyUSB1", parity="N")
        for number in (1, 2, 3):
            self.env["prepaid.meter"].create(
                {
                    "name": f"Runner bus {number}",
                    "address": f"00800000000{number}",
                    "model_id": self.ddsy.id,
                    "unit_id": self.unit.id,
                    "gateway_id": gateway.id,
                    "bus_id": gateway.bus_ids.filtered(lambda b, n=number: b.number == n).id,
                    "state": "in_service",
                }
            )
        config = gateway._api_collector_config()
        lines = {
            bus["number"]: (bus["url"], bus["baudrate"], bus["parity"], bus["stopbits"])
            for bus in config["buses"]
        }
        self.assertEqual(
            lines,
            {
                1: ("", 2400, "E", 1),
                2: ("/dev/ttyUSB0", 2400, "E", 1),
                3: ("/dev/ttyUSB1", 2400, "N", 1),
            },
        )
        self.assertEqual([len(bus["meters"]) for bus in config["buses"]], [1, 1, 1])
        links = [runner_collector._link_settings(config, bus) for bus in config["buses"]]
        self.assertEqual(
            [link.url for link in links],
            ["socket://10.0.0.7:4001", "/dev/ttyUSB0", "/dev/ttyUSB1"],
        )
        self.assertEqual([link.parity for link in links], ["E", "E", "N"])
