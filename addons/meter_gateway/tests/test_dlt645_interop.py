"""G2/G8: Odoo's scheduled poll reads DL/T645-2007 meters it was not written with: the
meter side of the PyPI package ``dlt645`` (Apache-2.0), one meter per collector port.
That meter refuses energy blocks ("no data") and keeps no remaining amount."""

import unittest

from odoo.tests import tagged

from .common import MeterGatewayCommon

try:
    import dlt645
except ImportError:  # pragma: no cover - a test dependency (requirements.txt)
    dlt645 = None

#: the meter's registers: combined, forward and reverse active totals, combined tariffs
COMBINED, FORWARD, REVERSE, POWER = 0x00000000, 0x00010000, 0x00020000, 0x02030000
BLOCK_DIS = (0x0000FF00, 0x0001FF00)


@unittest.skipIf(dlt645 is None, "the dlt645 package is not installed")
@tagged("post_install", "-at_install")
class TestDlt645Interop(MeterGatewayCommon):
    def _foreign_meter(self, address, energy, power):
        """A ``dlt645`` package meter on a free port (its log silent), stopped at the end."""
        dlt645.configure_logging(enabled=False)
        meter = dlt645.MeterServerService.new_tcp_server("127.0.0.1", 0, timeout=0.1)
        meter.set_address(bytes.fromhex(address)[::-1])  # the package keeps wire order
        for di, value in energy.items():
            self.assertTrue(meter.set_00(di, value))
        self.assertTrue(meter.set_02(POWER, power))
        meter.enable_message_capture(queue_size=1000)
        self.assertTrue(meter.start())
        self.addCleanup(meter.stop)
        return meter

    def _requests(self, meter):
        return [record.data for record in meter.get_captured_rx_messages()]

    def _collector_of(self, plain, bidirectional):
        """An Odoo collector with a bus per package meter: ``plain`` of the common model
        behind a 50/5 CT, ``bidirectional`` of a model billing forward + reverse, read
        item by item without wake-up bytes."""
        gateway = self.env["prepaid.gateway"].create(
            {
                "name": "dlt645 package collector",
                "gateway_type": "tcp_collector",
                "host": "127.0.0.1",
                "site_id": self.site.id,
                "poll_timeout": 0.5,
                "poll_retries": 0,
            }
        )
        buses = self.env["prepaid.gateway.bus"].create(
            [
                {"gateway_id": gateway.id, "number": n, "port": m.server.port}
                for n, m in enumerate((plain, bidirectional), start=1)
            ]
        )
        self.assertEqual(set(buses.mapped("driver")), {"dlt645_tcp"})
        quirky_model = self.ddsy.copy(
            {
                "code": "DLT645-PKG-BI",
                "bidirectional": True,
                "billing_register": "forward_reverse",
                "dlt645_read_way": "items",
                "dlt645_wake_up_bytes": 0,
            }
        )
        common = {"gateway_id": gateway.id, "state": "in_service"}
        meters = self.env["prepaid.meter"].create(
            [
                {
                    **common,
                    "name": "Package meter behind 50/5 CT",
                    "address": "000000008801",
                    "model_id": self.ddsy.id,
                    "unit_id": self.unit.id,
                    "bus_id": buses[0].id,
                    "ct_ratio": 10,
                },
                {
                    **common,
                    "name": "Package meter, bidirectional",
                    "address": "000000008802",
                    "model_id": quirky_model.id,
                    "unit_id": self.unit2.id,
                    "bus_id": buses[1].id,
                },
            ]
        )
        return gateway, meters

    def test_scheduled_poll_reads_the_dlt645_package_meters(self):
        plain = self._foreign_meter(
            "000000008801", {COMBINED: 1234.56, 0x00000100: 234.56, FORWARD: 1200.0}, 1.2345
        )
        bidirectional = self._foreign_meter(
            "000000008802", {COMBINED: 99.0, FORWARD: 1200.5, REVERSE: 34.06}, 0.5
        )
        gateway, meters = self._collector_of(plain, bidirectional)
        report = gateway._poll()
        self.assertEqual((report["stored"], report["failed"]), (2, []))
        Reading = self.env["prepaid.meter.reading"]
        first = Reading.search([("meter_id", "=", meters[0].id)])
        # meter side: what the meter holds; primary side: x 10 (CT 50/5)
        self.assertAlmostEqual(first.forward_total, 1234.56, places=2)
        self.assertAlmostEqual(first.total, 12345.6, places=2)
        self.assertAlmostEqual(first.power, 12.345, places=3)
        self.assertAlmostEqual(first.tou_sharp, 234.56, places=2)
        self.assertFalse(first.meter_balance)
        self.assertEqual(meters[0].dlt645_read_mode, "items")  # the block was refused
        second = Reading.search([("meter_id", "=", meters[1].id)])
        self.assertAlmostEqual(second.forward_total, 1200.5, places=2)
        self.assertAlmostEqual(second.reverse_total, 34.06, places=2)
        self.assertAlmostEqual(second.total, 1234.56, places=2)  # forward + reverse
        self.assertAlmostEqual(second.power, 0.5, places=4)
        # its model: single items only, frames without wake-up bytes
        requests = self._requests(bidirectional)
        self.assertTrue(requests)
        self.assertTrue(all(r.startswith(b"\x68") for r in requests))
        self.assertFalse([r for r in requests if r[10:14] in _wire_dis(BLOCK_DIS)])
        self.assertTrue(all(r.startswith(b"\xfe" * 4 + b"\x68") for r in self._requests(plain)))
        self.assertEqual(set(meters.mapped("connection_state")), {"online"})


def _wire_dis(dis):
    """Data identifiers as a read request carries them (low byte first, plus 33H)."""
    return {bytes((b + 0x33) & 0xFF for b in di.to_bytes(4, "little")) for di in dis}
