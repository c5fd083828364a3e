"""M-balance: a batch of readings of one meter keeps the newest balance the meter
reported, even when the batch's newest reading carries none (a reading between two
balance reads, a driver that reads the balance every other poll)."""

from datetime import timedelta

from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestMeterBalanceBatch(MeterGatewayCommon):
    def _row(self, meter, minutes, total, balance=None):
        row = {
            "meter_id": meter.id,
            "read_at": self.t0 + timedelta(minutes=minutes),
            "forward_total": total,
        }
        if balance is not None:
            row["meter_balance"] = balance
        return row

    def test_batch_whose_newest_reading_has_no_balance_keeps_the_earlier_one(self):
        Reading = self.env["prepaid.meter.reading"]
        report = Reading._ingest(
            [
                self._row(self.meter, 0, 100.0, balance=80.0),
                self._row(self.meter2, 0, 200.0),
            ]
        )
        self.assertEqual(report["stored"], 2)
        self.assertEqual(self.meter.last_meter_balance, 80.0)
        report = Reading._ingest(
            [
                self._row(self.meter, 15, 101.0, balance=0.0),  # a reported 0 counts
                self._row(self.meter, 30, 102.0),
                self._row(self.meter2, 15, 201.0, balance=55.5),
                self._row(self.meter2, 30, 202.0, balance=54.25),
                self._row(self.meter2, 45, 203.0),
            ]
        )
        self.assertEqual(report["stored"], 5)
        self.assertEqual(self.meter.last_reading_at, self.t0 + timedelta(minutes=30))
        self.assertEqual(self.meter.last_meter_balance, 0.0)
        self.assertEqual(self.meter2.last_meter_balance, 54.25)
        self.assertEqual(self.meter2.last_total, 203.0)
        reported = (self.meter | self.meter2)._last_reported_meter_balance()
        self.assertEqual(reported[self.meter.id]["read_at"], self.t0 + timedelta(minutes=15))
        self.assertEqual(reported[self.meter2.id]["read_at"], self.t0 + timedelta(minutes=30))
        # a later batch without any balance keeps the one known
        Reading._ingest([self._row(self.meter2, 60, 204.0), self._row(self.meter2, 75, 205.0)])
        self.assertEqual(self.meter2.last_meter_balance, 54.25)

    def test_late_reading_with_a_balance_does_not_replace_a_newer_one(self):
        Reading = self.env["prepaid.meter.reading"]
        Reading._ingest([self._row(self.meter, 60, 100.0, balance=30.0)])
        Reading._ingest(
            [
                self._row(self.meter, 30, 99.0, balance=35.0),  # older than what is known
                self._row(self.meter, 90, 101.0),
                self._row(self.meter, 95, 101.5),
            ]
        )
        self.assertEqual(self.meter.last_reading_at, self.t0 + timedelta(minutes=95))
        self.assertEqual(self.meter.last_meter_balance, 30.0)
