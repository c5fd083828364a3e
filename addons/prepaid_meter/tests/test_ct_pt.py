import importlib.util
import os
from datetime import timedelta

from odoo.exceptions import ValidationError
from odoo.modules.module import get_module_path
from odoo.tests import tagged

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestCtPt(PrepaidMeterCommon):
    """M2/M3/M5: CT and PT entered as nameplate pairs; every reading stored on the primary
    side (power x CT x PT, current x CT, voltage x PT), energy scaled as before."""

    def _ct_meter(self, address="000000000301", **pairs):
        meter = self._create_meter("CT 50/5", address, self.unit2, bus=self.bus2)
        meter.write({"ct_primary": 50, "ct_secondary": 5, **pairs})
        return meter

    # === NAMEPLATE PAIRS === #
    def test_pairs_compute_the_ratios_and_multiplier(self):
        meter = self._ct_meter(pt_primary=10000, pt_secondary=100)
        self.assertEqual((meter.ct_ratio, meter.pt_ratio, meter.multiplier), (10, 100, 1000))
        meter.ct_secondary = 1
        self.assertEqual((meter.ct_ratio, meter.multiplier), (50, 5000))

    def test_bad_pairs_refused_naming_the_field(self):
        meter = self._ct_meter()
        for field, label in (
            ("ct_secondary", "CT Secondary"),
            ("ct_primary", "CT Primary"),
            ("pt_secondary", "PT Secondary"),
        ):
            for bad in (0, -5):
                with self.assertRaisesRegex(ValidationError, label), self.env.cr.savepoint():
                    meter.write({field: bad})
        with self.assertRaisesRegex(ValidationError, "CT Ratio"), self.env.cr.savepoint():
            meter.ct_ratio = 0
        with self.assertRaisesRegex(ValidationError, "PT Secondary"), self.env.cr.savepoint():
            self.ddsy.pt_secondary = 0
        self.assertEqual((meter.ct_primary, meter.ct_secondary, meter.ct_ratio), (50, 5, 10))

    def test_ratio_written_as_such_is_the_pair_ratio_over_one(self):
        """Code and data files that write ``ct_ratio`` keep working."""
        meter = self._ct_meter()
        meter.ct_ratio = 10  # what 50/5 gives: the pair stays
        self.assertEqual((meter.ct_primary, meter.ct_secondary), (50, 5))
        meter.ct_ratio = 40
        self.assertEqual((meter.ct_primary, meter.ct_secondary, meter.multiplier), (40, 1, 40))
        seeded = self._create_meter("Seed", "000000000302", model=self.dtsy_ct, bus=self.bus2)
        self.assertEqual((seeded.ct_primary, seeded.ct_secondary, seeded.ct_ratio), (40, 1, 40))

    def test_new_meter_takes_its_models_pairs(self):
        model = self.ddsy.copy({"code": "DDSY CT", "ct_primary": 200, "ct_secondary": 5})
        self.assertEqual(model.ct_ratio, 40)
        meter = self._create_meter("From model", "000000000303", model=model, bus=self.bus2)
        self.assertEqual((meter.ct_primary, meter.ct_secondary, meter.ct_ratio), (200, 5, 40))
        given = self.env["prepaid.meter"].create(
            {"name": "Given", "model_id": model.id, "ct_primary": 75, "ct_secondary": 5}
        )
        self.assertEqual(given.ct_ratio, 15)

    # === PRIMARY SIDE === #
    def test_ct_50_5_meter_reporting_1_kw_shows_10_kw(self):
        meter = self._ct_meter()
        self._ingest(
            meter,
            (0, 100.0),
            (30, 100.5),
            power=1.0,
            current=4.35,
            voltage=230.1,
            power_factor=0.98,
            meter_balance=12.5,
        )
        first, second = self._readings(meter)
        self.assertEqual(
            (second.power, second.current, second.voltage, second.power_factor),
            (10, 43.5, 230.1, 0.98),
        )
        self.assertEqual(second.meter_balance, 12.5)
        self.assertEqual((first.forward_total, first.total), (100, 1000))
        self.assertEqual((second.consumption, second.total), (5, 1005))
        self.assertEqual((meter.last_power, meter.last_total), (10, 1005))
        self.assertEqual(meter.last_forward_total, 100.5)

    def test_pt_scales_voltage_and_power(self):
        meter = self._ct_meter(pt_primary=10000, pt_secondary=100)
        self._ingest(meter, (0, 10.0), power=0.0345, current=0.5, voltage=99.8)
        [reading] = self._readings(meter)
        self.assertEqual((reading.power, reading.current, reading.voltage), (34.5, 5.0, 9980.0))
        self.assertEqual(reading.total, 10000)

    def test_reading_entered_by_hand_is_scaled_alike(self):
        meter = self._ct_meter()
        reading = self.env["prepaid.meter.reading"].create(
            {"meter_id": meter.id, "read_at": self.t0, "forward_total": 7.0, "power": 0.8}
        )
        self.assertEqual((reading.power, reading.total, meter.last_power), (8, 70, 8))

    def test_meter_without_transformer_unchanged(self):
        self._ingest(self.meter, (0, 100.0), (30, 100.5), power=1.25, current=5.5, voltage=221.5)
        reading = self._readings(self.meter)[1]
        self.assertEqual((reading.power, reading.current, reading.voltage), (1.25, 5.5, 221.5))
        self.assertEqual((reading.total, reading.consumption), (100.5, 0.5))

    def test_energy_of_a_ct_ratio_meter_scaled_as_before(self):
        """A meter whose CT was written as a ratio (existing data): energy x 40 as before."""
        meter = self._create_meter("CT 40", "000000000304", self.unit2, model=self.dtsy_ct)
        self._ingest(meter, (0, 10.0), (30, 10.05))
        reading = self._readings(meter)[1]
        self.assertAlmostEqual(reading.total, 402.0)
        self.assertAlmostEqual(reading.consumption, 2.0)

    # === EXISTING READINGS === #
    def test_migration_scales_stored_measures_once(self):
        """Readings stored before held meter-side power, current and voltage: the migration
        scales them by the meter's ratios, and gives meters the pair ratio/1."""
        meter = self._ct_meter()
        plain = self.meter
        self._ingest(meter, (0, 100.0), power=1.0, current=4.0)
        self._ingest(plain, (0, 100.0), power=1.0, current=4.0)
        # as the store held them before: meter side
        self.env.cr.execute(
            "UPDATE prepaid_meter_reading_store SET power = 1.0, current = 4.0 WHERE meter_id = %s",
            [meter.id],
        )
        self.env.cr.execute(
            "UPDATE prepaid_meter_latest SET last_power = 1.0 WHERE id = %s", [meter.latest_id.id]
        )
        self.env.cr.execute(
            "UPDATE prepaid_meter SET ct_primary = 1, ct_secondary = 1 WHERE id = %s", [meter.id]
        )
        self._migration().migrate(self.env.cr, "19.0.1.1.0")
        self.env.invalidate_all()
        self.assertEqual((meter.ct_primary, meter.ct_secondary, meter.ct_ratio), (10, 1, 10))
        self.assertEqual(self._readings(meter).mapped("power"), [10])
        self.assertEqual(self._readings(meter).mapped("current"), [40])
        self.assertEqual(meter.last_power, 10)
        self.assertEqual(self._readings(plain).mapped("power"), [1])

    def _migration(self):
        path = os.path.join(
            get_module_path("prepaid_meter"), "migrations", "19.0.1.2.0", "post-migrate.py"
        )
        spec = importlib.util.spec_from_file_location("prepaid_meter_ct_pt_migration", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def test_readings_keep_the_ratio_of_their_time(self):
        """A CT replaced later does not rewrite what was measured behind the old one."""
        meter = self._ct_meter()
        self._ingest(meter, (0, 100.0), power=1.0)
        meter.write({"ct_primary": 100, "ct_secondary": 5})
        self._ingest(meter, (30, 100.01), power=1.0)
        self.assertEqual(self._readings(meter).mapped("power"), [10, 20])
        self.assertEqual(meter.last_reading_at, self.t0 + timedelta(minutes=30))
