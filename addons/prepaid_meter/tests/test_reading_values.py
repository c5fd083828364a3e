"""X1: every value of a reading is checked before it reaches the store -- finite, within its
column's range, with no more decimals than kept, times within the calendar kept -- so that
a value PostgreSQL cannot store refuses its reading alone, never the batch."""

from datetime import datetime, timedelta

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from prepaid_core import readings as validation

from ..models.prepaid_meter_reading import MEASURE_LIMITS
from .common import PrepaidMeterCommon

#: (key, value, what the reason says)
HOSTILE = [
    ("forward_total", "1e-20000", "more than 20 decimals"),
    ("forward_total", "1E+20000", "out of range"),
    ("forward_total", 1e13, "out of range"),
    ("forward_total", 1e-300, "more than 20 decimals"),
    ("forward_total", float("nan"), "not a finite number"),
    ("forward_total", 10**40, "out of range"),
    ("reverse_total", "1e-20000", "more than 20 decimals"),
    ("voltage", 1e9, "out of range"),
    ("voltage", "1E-20000", "too small to store"),
    ("voltage", 1e-300, "more than 20 decimals"),
    ("power", float("inf"), "not a finite number"),
    ("power_factor", 1000.0, "out of range"),
    ("current", True, "not a number"),
    ("status_word", 2**32, "out of range"),
    ("status_word", float("inf"), "not an integer"),
    ("status_word", True, "not an integer"),
    ("read_at", datetime(1, 1, 1), "not between 2000 and 2100"),
    ("read_at", datetime(9999, 12, 31, 23, 59, 59), "not between 2000 and 2100"),
    ("read_at", "0001-01-01T00:00:00+01:00", "out of range"),
    ("read_at", "9999-12-31T23:59:59-01:00", "out of range"),
    ("read_at", "2" * 10000, "not a date and time"),
    ("relay_state", "\x00", "not on or off"),
]


@tagged("post_install", "-at_install")
class TestReadingValues(PrepaidMeterCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.meter2 = cls._create_meter("Power T-102", "000000000102", cls.unit2)

    def test_limits_are_the_fields_digits(self):
        """The range a value must lie in is its field's: ``digits=(p, s)`` keeps
        p - s digits before the point."""
        fields_ = self.env["prepaid.meter.reading"]._fields
        for name, limit in MEASURE_LIMITS.items():
            precision, scale = fields_[name].get_digits(self.env)
            self.assertEqual(limit, 10 ** (precision - scale), name)
        for name in ("forward_total", "reverse_total"):
            precision, scale = fields_[name].get_digits(self.env)
            self.assertEqual(validation.REGISTER_LIMIT, 10 ** (precision - scale), name)

    def _ingest(self, rows):
        with mute_logger("odoo.addons.prepaid_meter.models.prepaid_meter_reading"):
            return self.env["prepaid.meter.reading"]._ingest(rows)

    def test_each_hostile_value_refused_alone(self):
        """Beside well-formed rows: the batch of floats a poll sends (the column by column
        parse) and the one of texts a runner sends (row by row), each with one value the
        store cannot keep: the others are stored, the one is refused and kept."""
        Rejection = self.env["prepaid.meter.reading.rejection"]
        for number, (key, value, reason) in enumerate(HOSTILE):
            for texts in (False, True):
                at = self.t0 + timedelta(days=number, hours=2 * texts)
                rows = [
                    {
                        "meter_id": self.meter.id,
                        "read_at": at + timedelta(minutes=minutes),
                        "forward_total": f"{10 + minutes}.5" if texts else 10.5 + minutes,
                        "voltage": "221.5" if texts else 221.5,
                    }
                    for minutes in (0, 30)
                ]
                hostile = {"meter_id": self.meter2.id, "read_at": at, "forward_total": 1.5}
                rows.append({**hostile, key: value})
                before = Rejection.search_count([])
                report = self._ingest(rows)
                label = f"{key}={value!r:.40}"
                self.assertEqual(report["stored"], 2, label)
                (rejected,) = report["rejected"]
                self.assertIn(reason, rejected["reason"], label)
                self.assertEqual(Rejection.search_count([]), before + 1, label)
                kept = Rejection.search([], limit=1)
                self.assertEqual((kept.kind, kept.meter_id), ("reading", self.meter2), label)
                self.assertEqual(kept.reason, rejected["reason"], label)
        self.assertEqual(len(self._readings(self.meter)), 4 * len(HOSTILE))
        self.assertFalse(self._readings(self.meter2))

    def test_values_at_the_edges_of_the_store_are_stored(self):
        rows = [
            {
                "meter_id": self.meter.id,
                "read_at": datetime(2000, 1, 1),
                "forward_total": "999999999999.99999999999999999999",
                "voltage": 99999999.99,
                "power_factor": -999.999,
                "meter_balance": -999999999999.0,
                "status_word": 2**32 - 1,  # 32 bits: the int4 -1
            },
            {
                "meter_id": self.meter2.id,
                "read_at": "2099-12-31T23:59:59Z",
                "forward_total": "0.00000000000000000001",
                "reverse_total": "1.000000000000000000000000000000",
                "voltage": "1E-20",
                "status_word": -(2**31),
            },
        ]
        report = self._ingest(rows)
        self.assertEqual((report["stored"], report["rejected"]), (2, []))
        self.env.cr.execute(
            "SELECT forward_total::text, reverse_total::text, status_word "
            "FROM prepaid_meter_reading_store WHERE meter_id = %s",
            [self.meter2.id],
        )
        self.assertEqual(self.env.cr.fetchone(), ("0.00000000000000000001", "1", -(2**31)))
        self.assertEqual(self._readings(self.meter).status_word, -1)

    def test_manual_entry_refuses_what_the_store_cannot_keep(self):
        for vals in (
            {"forward_total": 1e13},
            {"forward_total": 1.0, "voltage": 1e9},
            {"forward_total": 1.0, "status_word": 2**32},
            {"forward_total": 1.0, "read_at": datetime(1, 1, 1)},
        ):
            with self.assertRaises(UserError), mute_logger("odoo.addons.prepaid_meter"):
                self.env["prepaid.meter.reading"].create(
                    {"meter_id": self.meter.id, "read_at": self.t0, **vals}
                )
        self.assertFalse(self._readings(self.meter))
