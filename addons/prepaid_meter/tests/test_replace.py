from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import PrepaidMeterCommon


@tagged("post_install", "-at_install")
class TestReplace(PrepaidMeterCommon):
    def _wizard(self, new, final, initial=0.0):
        return (
            self.env["prepaid.meter.replace"]
            .with_context(active_model="prepaid.meter", active_id=self.meter.id)
            .create({"new_meter_id": new.id, "final_reading": final, "initial_reading": initial})
        )

    def test_replacement_keeps_history(self):
        self._ingest(self.meter, (0, 100), (30, 101.5))
        new = self._create_meter("Power T-101 (new)", "000000000111", state="draft")
        wizard = self._wizard(new, 102.25, 3.5)
        self.assertEqual(wizard.old_meter_id, self.meter)
        action = wizard.action_replace()
        self.assertEqual(action["res_id"], new.id)
        # old meter: final reading charged, then removed, history kept
        old_readings = self._readings(self.meter)
        self.assertEqual(old_readings.mapped("forward_total"), [100, 101.5, 102.25])
        self.assertAlmostEqual(old_readings[-1].consumption, 0.75)
        self.assertEqual(self.meter.state, "removed")
        self.assertEqual(self.meter.replaced_by_id, new)
        # new meter: in the unit, in service, its initial reading is its baseline
        self.assertEqual(new.unit_id, self.unit)
        self.assertEqual(new.state, "in_service")
        self.assertEqual(new.replaces_id, self.meter)
        first = self._readings(new)
        self.assertEqual(first.flags, "baseline")
        self.assertAlmostEqual(new.baseline_total, 3.5)
        self.assertEqual(self.unit.meter_ids.filtered(lambda m: m.state != "removed"), new)
        self.assertEqual(set((self.meter | new).event_ids.mapped("event_type")), {"replaced"})

    def test_final_reading_below_last_refused(self):
        self._ingest(self.meter, (0, 100), (30, 101.5))
        new = self._create_meter("New", "000000000112", state="draft")
        with self.assertRaisesRegex(UserError, "below"):
            self._wizard(new, 99).action_replace()
        self.assertEqual(self.meter.state, "in_service")

    def test_new_meter_must_be_draft_and_same_utility(self):
        water = self._create_meter("Water", "000000000113", model=self.water, state="draft")
        with self.assertRaisesRegex(UserError, "same utility"):
            self._wizard(water, 0).action_replace()
        installed = self._create_meter("Busy", "000000000114", self.unit2)
        with self.assertRaisesRegex(UserError, "not yet installed"):
            self._wizard(installed, 0).action_replace()
