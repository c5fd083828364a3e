from psycopg2 import IntegrityError

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import PrepaidMeterCommon, render_pdf


@tagged("post_install", "-at_install")
class TestMeter(PrepaidMeterCommon):
    def test_address_must_be_12_digits(self):
        for bad in ("12345", "00000000010A", "0000000001011"):
            with self.assertRaises(ValidationError, msg=bad):
                self._create_meter("Bad", bad, self.unit2)

    @mute_logger("odoo.sql_db")
    def test_address_unique_per_bus(self):
        with self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self._create_meter("Twin", self.meter.address, self.unit2)

    def test_same_address_allowed_on_another_bus_and_after_removal(self):
        other = self._create_meter("Other bus", self.meter.address, self.unit2, bus=self.bus2)
        self.assertEqual(other.address, self.meter.address)
        other.action_remove()
        again = self._create_meter("Same bus again", other.address, self.unit2, bus=self.bus2)
        self.assertEqual(again.state, "in_service")

    def test_bus_carries_at_most_32_meters(self):
        for i in range(31):
            self._create_meter(f"M{i}", f"{900000000000 + i}", bus=self.bus1, state="draft")
        self.assertEqual(self.bus1.meter_count, 32)
        with self.assertRaisesRegex(ValidationError, "at most 32"):
            self._create_meter("33rd", "999999999999", bus=self.bus1, state="draft")

    def test_bus_of_another_gateway_refused(self):
        gateway2 = self.env["prepaid.gateway"].create({"name": "G2"})
        with self.assertRaisesRegex(ValidationError, "does not belong"):
            self.meter.gateway_id = gateway2

    def test_multiplier_from_model_ratios(self):
        meter = self._create_meter("CT meter", "000000000201", self.unit2, model=self.dtsy_ct)
        self.assertEqual(meter.ct_ratio, 40)
        self.assertEqual(meter.multiplier, 40)
        meter.pt_ratio = 2
        self.assertEqual(meter.multiplier, 80)
        with self.assertRaises(ValidationError):
            meter.ct_ratio = 0

    def test_max_rate_of_seed_models(self):
        # DDSY 220 V x 60 A single phase = 13.2 kW; DTSY 3 x 220 V x 100 A = 66 kW
        self.assertAlmostEqual(self.ddsy.max_rate, 13.2)
        self.assertAlmostEqual(self.env.ref("prepaid_meter.meter_model_dtsy_10_100").max_rate, 66.0)
        self.assertAlmostEqual(self.water.max_rate, 5.0)

    def test_status_follows_state_connection_relay_protect(self):
        meter = self.meter
        self.assertEqual(meter.status, "normal")
        meter.protect_mode = True
        self.assertEqual(meter.status, "protected")
        meter._set_desired_relay("off", "Test cut")
        self.assertEqual(meter.status, "off")
        meter.connection_state = "lost"
        self.assertEqual(meter.status, "lost")
        meter.action_remove()
        self.assertEqual(meter.status, "removed")

    def test_desired_relay_is_logged_once(self):
        self.meter._set_desired_relay("off", "Credit exhausted")
        self.meter._set_desired_relay("off", "Credit exhausted")
        events = self.meter.event_ids.filtered(lambda e: e.event_type == "desired_off")
        self.assertEqual(len(events), 1)
        self.assertEqual(events.reason, "Credit exhausted")
        self.assertTrue(self.meter.relay_mismatch)
        self.meter._record_actual_relay("off")
        self.assertFalse(self.meter.relay_mismatch)
        self.assertIn("relay_off", self.meter.event_ids.mapped("event_type"))

    def test_qr_token_unique_and_unguessable(self):
        meters = self.env["prepaid.meter"].create(
            [
                {"name": f"QR{i}", "model_id": self.ddsy.id, "address": f"{700000000000 + i}"}
                for i in range(20)
            ]
        )
        tokens = meters.mapped("access_token")
        self.assertEqual(len(set(tokens)), 20)
        self.assertTrue(all(len(token) >= 32 for token in tokens))
        meter = meters[0]
        # the QR code opens a page of this site proven by the meter's token (the portal
        # add-on may route it through its own landing page)
        self.assertTrue(meter.qr_url.startswith(meter.get_base_url() + "/my/meter"))
        self.assertIn(meter.access_token, meter.qr_url)
        self.assertTrue(meter.qr_image)

    def test_label_report_renders_qr(self):
        report = self.env.ref("prepaid_meter.action_report_prepaid_meter_label")
        html, _ = report._render_qweb_html(report.report_name, self.meter.ids)
        html = html.decode()
        self.assertIn("Power T-101", html)
        self.assertRegex(
            html, r'<img class="prepaid_meter_qr"[^>]* src="data:image/png;base64,iVBOR'
        )
        self.assertIn(self.meter.address, html)

    def test_label_report_pdf(self):
        report = self.env.ref("prepaid_meter.action_report_prepaid_meter_label")
        pdf, kind = render_pdf(self.env, report.report_name, self.meter.ids)
        self.assertEqual(kind, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))

    def test_meter_with_readings_cannot_be_deleted(self):
        self._ingest(self.meter, (0, 10))
        with self.assertRaises(UserError):
            self.meter.unlink()

    def test_latest_state_is_the_meters_own(self):
        """Each meter delegates its latest state to a record of its own: readings move it,
        a copy starts from nothing, deleting the meter deletes it."""
        self._ingest(self.meter, (0, 10), (30, 10.5))
        latest = self.meter.latest_id
        self.assertEqual(latest.meter_ids, self.meter)
        self.assertEqual((latest.last_total, latest.baseline_total), (10.5, 10.5))
        self.assertEqual(self.meter.connection_state, "online")
        other = self._create_meter("Spare", "000000000302", state="draft")
        self.assertNotEqual(other.latest_id, latest)
        self.assertEqual((other.last_total, other.connection_state), (0.0, "never"))
        copy = other.copy({"address": "000000000303"})
        self.assertNotIn(copy.latest_id, other.latest_id | latest)
        state = copy.latest_id
        copy.unlink()
        self.assertFalse(state.exists())
        # the meters' list can sort and group by the delegated fields
        meters = self.env["prepaid.meter"]
        self.assertTrue(meters.search([("last_total", ">", 10)], order="last_total desc"))
        groups = meters._read_group([], ["connection_state"], ["__count"])
        self.assertIn("online", [state for state, _count in groups])

    def test_put_in_service_needs_unit(self):
        meter = self._create_meter("Stock", "000000000301", state="draft")
        with self.assertRaisesRegex(UserError, "unit"):
            meter.action_put_in_service()
        meter.unit_id = self.unit2
        meter.action_put_in_service()
        self.assertEqual(meter.state, "in_service")
