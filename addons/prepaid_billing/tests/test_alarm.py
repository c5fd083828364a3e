import io
from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

import openpyxl
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged

from .common import MockSmsGatewayMixin, PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestAlarm(MockSmsGatewayMixin, PrepaidBillingCommon):
    def setUp(self):
        super().setUp()
        self.sent = self._mock_sms_gateway()
        self.tenant.phone = "+32 470 12 34 56"
        self.manager = self._user("boss", "prepaid_meter.group_prepaid_manager")
        self.total = 1000
        self.minutes = 0
        self._ingest(self.meter, (0, self.total))

    def _consume(self, kwh):
        """Readings of up to 10 kWh an hour adding up to ``kwh``, then a deduction run."""
        points = []
        while kwh > 0:
            step = min(kwh, 10)
            kwh -= step
            self.total += step
            self.minutes += 60
            points.append((self.minutes, self.total))
        self._ingest(self.meter, *points)
        self._deduct()

    def _notices(self):
        """The notices sent to the tenant (queued ones sent first, as their action does)."""
        self.env["prepaid.account.notice"]._send_queued()  # their scheduled action
        return self.account.message_ids.filtered(lambda m: m.message_type == "comment").mapped(
            "body"
        )

    def test_seed_sequence(self):
        """alarm 1 -> alarm 2 reminder cut -> restore -> zero -> cut -> recharge -> restore."""
        self.account._recharge("25")
        self.assertEqual(self.meter.alarm_level, "normal")
        self.assertEqual(self.meter.status, "normal")

        self._consume(12)  # 25 - 6 = 19 < alarm 1 (20)
        self.assertEqual(self.meter.alarm_level, "alarm1")
        self.assertEqual(self.meter.status, "alarm1")
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.assertEqual(len(self._notices()), 1)
        self.assertIn("Credit is low", self._notices()[0])

        self._consume(30)  # 19 - 15 = 4 < alarm 2 (5): 2-minute reminder cut
        self.assertEqual(self.meter.alarm_level, "alarm2")
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertIn("remind", self.meter.desired_relay_reason)
        self.assertTrue(self.meter.alarm_wake_at)
        self.assertEqual(self.meter.status, "off")
        events = self.meter.event_ids.filtered(lambda e: e.event_type == "desired_off")
        self.assertEqual(len(events), 1, "the desired relay change is logged as an event")

        later = fields.Datetime.now() + timedelta(minutes=3)
        self.meter._evaluate_alarms(now=later)  # end of the reminder
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.assertEqual(self.meter.status, "alarm2")

        self._consume(10)  # 4 - 5 = -1: credit used up, cut until recharged
        self.assertEqual(self.meter.alarm_level, "arrears")
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertEqual(self.meter.status, "arrears")

        self.account._recharge("50")  # 49: restored automatically
        self.assertEqual(self.meter.alarm_level, "normal")
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.assertEqual(self.meter.status, "normal")
        self.assertTrue(any("restored" in body for body in self._notices()))

        # each notice went out once by SMS (only the IAP gateway is mocked) and email
        bodies = [sms["body"] for sms in self.sent]
        self.assertEqual(len(bodies), 4, bodies)
        self.assertTrue(all(sms["number"] for sms in self.sent))
        mails = self.env["mail.mail"].sudo().search([("model", "=", "prepaid.account")])
        self.assertTrue(mails.filtered(lambda m: "Credit is low" in m.body_html))

    def test_protect_mode_never_cuts(self):
        self.meter.with_user(self.manager).action_protect()
        self._consume(10)  # 0 - 5: arrears, but protected
        self.assertEqual(self.meter.alarm_level, "arrears")
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.meter.with_user(self.manager).action_unprotect()
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertEqual(
            self.meter.event_ids.filtered(lambda e: e.event_type.startswith("protect")).mapped(
                "event_type"
            ),
            ["protect_off", "protect_on"],
        )

    def test_manager_forces_supply(self):
        self.account._recharge("100")
        self.meter.with_user(self.manager).action_force_off()
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.meter.with_user(self.manager).action_restore_prepaid()
        self.assertEqual(self.meter.desired_relay_state, "on")
        self._consume(10)
        self.account._refund("95")
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.meter.with_user(self.manager).action_force_on()
        self.assertEqual(self.meter.desired_relay_state, "on")
        operator = self._user("op", "prepaid_meter.group_prepaid_user")
        with self.assertRaises(AccessError):
            self.meter.with_user(operator).action_force_off()

    def test_batch_thresholds_and_tariff(self):
        self.account._recharge("30")
        dear = self._create_tariff("Dear", [{"price_flat": 1}])
        self.env["prepaid.meter.batch"].with_user(self.manager).with_context(
            active_model="prepaid.meter", active_ids=self.meter.ids
        ).create(
            {
                "tariff_id": dear.id,
                "set_thresholds": True,
                "alarm1_threshold": 50.0,
                "alarm2_threshold": 10.0,
            }
        ).action_apply()
        self.assertEqual(self.meter.tariff_id, dear)
        self.assertEqual(self.meter.alarm_level, "alarm1")
        self._consume(10)
        self.assertEqual(self._balance(), Decimal("20.0000"))

    def test_status_selection_has_alarm_levels(self):
        keys = [key for key, _label in self.env["prepaid.meter"]._selection_status()]
        self.assertLess(keys.index("arrears"), keys.index("alarm1"))
        self.assertLess(keys.index("alarm1"), keys.index("normal"))

    # === the alarm level through the ORM, its history === #
    def _level_events(self, meters):
        return self.env["prepaid.meter.event"].search(
            [("meter_id", "in", meters.ids), ("event_type", "=", "alarm_level")], order="id"
        )

    def test_alarm_level_change_is_tracked_in_the_chatter(self):
        """The level is written through the ORM: its ``tracking=True`` logs each change."""
        self.account._recharge("25")
        self._consume(12)  # alarm 1
        self._consume(30)  # alarm 2
        self.env.flush_all()
        self.env.cr.flush()  # tracking messages are written before the commit
        tracked = self.meter.message_ids.tracking_value_ids.filtered(
            lambda value: value.field_id.name == "alarm_level"
        ).sorted("id")
        self.assertEqual(
            [(value.old_value_char, value.new_value_char) for value in tracked],
            [("Normal", "Alarm 1"), ("Alarm 1", "Alarm 2")],
        )

    def test_alarm_level_is_written_through_write_overrides(self):
        """Another add-on's ``write`` of prepaid.meter sees every level change (one write
        per new level, the meters of a run together)."""
        other = self._create_meter("Power T-101 B", "000000000109", self.unit)
        meters = self.meter | other
        self.account._recharge("25")
        model = type(self.env["prepaid.meter"])  # the class every add-on's override is in
        write, seen = model.write, []

        def overriding_write(records, vals):
            if "alarm_level" in vals:
                seen.append((set(records.ids), vals["alarm_level"]))
            return write(records, vals)

        with patch.object(model, "write", overriding_write):
            self._consume(12)  # both meters of the account to alarm 1
            self.account._recharge("50")  # both back to normal
        self.assertEqual(seen, [(set(meters.ids), "alarm1"), (set(meters.ids), "normal")])
        self.assertEqual(set(meters.mapped("alarm_level")), {"normal"})

    def test_alarm_history_records_each_change_once(self):
        """Each level change of each meter is one event, whoever evaluated (a deduction with
        its account's other meters, a recharge, a threshold change, a wake-up)."""
        other = self._create_meter("Power T-101 B", "000000000109", self.unit)
        meters = self.meter | other
        self.account._recharge("25")
        self._consume(12)  # 19: alarm 1 for both (the other one as a sibling)
        self.meter._evaluate_alarms()  # nothing changed: nothing recorded
        meters._evaluate_alarms(now=fields.Datetime.now() + timedelta(minutes=5))
        self.account.alarm1_threshold = 18.0  # both back to normal
        self.account._recharge("1")  # still normal
        events = self._level_events(meters)
        self.assertEqual(
            sorted((event.meter_id.id, event.code) for event in events),
            sorted((meter.id, code) for meter in meters for code in ("alarm1", "normal")),
        )
        self.assertEqual(
            sorted(set(events.mapped("reason"))), ["Alarm 1 (was Normal)", "Normal (was Alarm 1)"]
        )

    # === per-meter thresholds, overload (B8) === #
    def test_meter_thresholds_override_the_account(self):
        other = self._create_meter("Power T-101 B", "000000000109", self.unit)
        self.account._recharge("30")
        self.assertEqual(self.meter.alarm_level, "normal")
        self.meter.write(
            {"alarm_own_thresholds": True, "alarm1_threshold": 50.0, "alarm2_threshold": 10.0}
        )
        self.assertEqual(self.meter.alarm_level, "alarm1", "30 is below the meter's alarm 1")
        self.assertEqual(other.alarm_level, "normal", "and above the account's (20)")
        self.account._refund("22")  # 8: below the meter's alarm 2, above the account's
        self.assertEqual(self.meter.alarm_level, "alarm2")
        self.assertEqual(self.meter.desired_relay_state, "off", "reminder cut")
        self.assertEqual(other.alarm_level, "alarm1")
        self.assertEqual(other.desired_relay_state, "on")
        # each meter told the tenant of its own levels
        self.assertEqual(len(self._notices()), 3, self._notices())
        with self.assertRaises(ValidationError):
            self.meter.alarm2_threshold = 60.0
        self.meter.alarm_own_thresholds = False  # back to the account's thresholds
        self.assertEqual(self.meter.alarm_level, "alarm1")

    def test_account_threshold_change_evaluates_its_meters(self):
        self.account._recharge("30")
        self.assertEqual(self.meter.alarm_level, "normal")
        self.account.alarm1_threshold = 40.0
        self.assertEqual(self.meter.alarm_level, "alarm1")

    def test_overload_from_readings_until_manager_reset(self):
        self.account._recharge("100")
        self.meter.overload_limit = 5.0
        self._ingest(self.meter, (60, 1003), power=4.5)
        self.assertEqual(self.meter.desired_relay_state, "on")
        self._ingest(self.meter, (120, 1009), power=6.2)
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertIn("overload", self.meter.desired_relay_reason)
        self.assertEqual(self.meter.overload_at, self.t0 + timedelta(minutes=120))
        trip = self.meter.event_ids.filtered(lambda e: e.event_type == "overload")
        self.assertEqual(len(trip), 1)
        self.assertIn("6.2", trip.reason)
        self.assertTrue(any("overload" in body for body in self._notices()))
        self._ingest(self.meter, (180, 1012), power=3.0)
        self.assertEqual(self.meter.desired_relay_state, "off", "a manager must reset it")
        operator = self._user("op", "prepaid_meter.group_prepaid_user")
        with self.assertRaises(AccessError):
            self.meter.with_user(operator).action_overload_reset()
        with freeze_time(self.t0 + timedelta(minutes=200)):
            self.meter.with_user(self.manager).action_overload_reset()
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.assertEqual(self.meter.status, "normal")
        # a new reading above the limit trips again, the same one read again does not
        self._ingest(self.meter, (240, 1020), power=7.0)
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertEqual(
            len(self.meter.event_ids.filtered(lambda e: e.event_type == "overload")), 2
        )

    def test_overload_reported_by_the_device_resets_automatically(self):
        self.account._recharge("100")
        self.meter.overload_auto_reset_minutes = 10
        now = fields.Datetime.now()
        self.meter._log_event("overload", event_at=now, source="device")
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertEqual(self.meter.alarm_wake_at, now + timedelta(minutes=10))
        self.meter._evaluate_alarms(now=now + timedelta(minutes=11))
        self.assertEqual(self.meter.desired_relay_state, "on")

    def test_protect_mode_beats_overload(self):
        self.account._recharge("100")
        self.meter.with_user(self.manager).action_protect()
        self.meter._log_event("overload", source="device")
        self.assertEqual(self.meter.desired_relay_state, "on")

    # === B12 export, M4 cancellation === #
    def test_export_states_to_excel(self):
        self.account._recharge("100")
        self.meter.with_user(self.manager).action_force_off()
        operator = self._user("op", "prepaid_meter.group_prepaid_user")
        action = self.meter.with_user(operator).action_export_states()
        attachment = self.env["ir.attachment"].browse(
            int(action["url"].split("/")[3].split("?")[0])
        )
        sheet = openpyxl.load_workbook(io.BytesIO(attachment.raw)).active
        rows = list(sheet.iter_rows(values_only=True))
        self.assertEqual(len(rows), 2)
        state = dict(zip(rows[0], rows[1], strict=True))
        self.assertEqual(state["Name"], "Power T-101")
        self.assertEqual(state["Tenant"], "Tenant One")
        self.assertEqual(state["Desired Relay State"], "Off")
        self.assertEqual(state["Credit"], 100)

    def test_tenancy_closing_settles_the_account(self):
        self.account._recharge("40")
        self._consume(10)  # 5 charged
        self.tenancy.action_close()
        self.assertEqual(self.account.state, "closed")
        self.assertEqual(self._balance(), Decimal("0.0000"))
        refund = self.account.line_ids.filtered(lambda line: line.kind == "refund")
        self.assertEqual(refund.amount, -35.0)

    def test_account_cancellation_ends_the_tenancy(self):
        self.account.action_close()
        self.assertEqual(self.tenancy.state, "closed")
