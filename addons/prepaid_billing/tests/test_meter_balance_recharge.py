"""B13: every recharge of a meter that keeps its own balance vends exactly one meter credit,
in the transaction of its ledger lines (R1, R5, R10); the server never cuts or restores such
a meter for credit (the meter does), but the notices still go out (B8)."""

from datetime import timedelta
from decimal import Decimal

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.concurrency import (
    ConcurrencyCase,
    forget,
    purge,
    purge_meters,
)

from .common import MockSmsGatewayMixin, PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestMeterBalanceRecharge(MockSmsGatewayMixin, PrepaidBillingCommon):
    def setUp(self):
        super().setUp()
        self.sent = self._mock_sms_gateway()
        self.tenant.phone = "+32 470 12 34 56"
        self.meter.billing_mode = "meter"
        self.manager = self._user("mb_boss", "prepaid_meter.group_prepaid_manager")

    def _credits(self, meter=None):
        return self.env["prepaid.meter.credit"].search(
            [("meter_id", "=", (meter or self.meter).id)]
        )

    def _amount(self, record):
        return Decimal(f"{record.amount:.4f}")

    def _consume(self, *points):
        self._ingest(self.meter, *points)
        self._deduct()

    def _notices(self):
        """The notices sent to the tenant (queued ones sent first, as their action does)."""
        self.env["prepaid.account.notice"]._send_queued()  # their scheduled action
        return self.account.message_ids.filtered(lambda m: m.message_type == "comment").mapped(
            "body"
        )

    # === RECHARGES === #
    def test_desk_recharge_vends_one_credit(self):
        operator = self._user("mb_desk", "prepaid_meter.group_prepaid_user")
        wizard = (
            self.env["prepaid.account.recharge"]
            .with_user(operator)
            .create({"account_id": self.account.id, "amount": 40.0})
        )
        self.assertEqual(wizard.meter_id, self.meter, "the only meter-balance meter by default")
        self.assertFalse(wizard.meter_required)
        self.assertEqual(wizard.meter_billing_mode, "meter")
        wizard.action_confirm()
        credit = self._credits()
        self.assertEqual(len(credit), 1)
        self.assertEqual(self._amount(credit), Decimal("40.0000"))
        line = self.account.line_ids
        self.assertEqual(credit.origin, f"prepaid.account.line,{line.id}")
        self.assertEqual(line.meter_id, self.meter)
        self.assertEqual(line.meter_credit_id, credit)
        self.assertEqual(self._balance(), Decimal("40.0000"), "the server mirrors the meter")
        bodies = self.account.message_ids.mapped("body")
        self.assertTrue(any(credit.name in body for body in bodies))
        token = credit.sudo().token
        self.assertFalse(token and any(token in body for body in bodies), "no token in chatter")

    def test_preset_credit_is_not_vended_again(self):
        """B7: a preset credit of 30 is already on board: a recharge of 10 vends nothing, the
        next one of 50 vends what is left after recovering the last 20."""
        self.account.preset_credit = 30.0
        lines = self.account._recharge("10")
        self.assertEqual(lines.mapped("kind"), ["preset_credit"])
        self.assertEqual(lines.meter_id, self.meter)
        self.assertFalse(lines.meter_credit_id)
        self.assertFalse(self._credits())
        lines = self.account._recharge("50")
        credit = self._credits()
        self.assertEqual(len(credit), 1)
        self.assertEqual(self._amount(credit), Decimal("30.0000"))
        self.assertEqual(lines.meter_credit_id, credit, "every line of the recharge names it")

    def test_overdraft_repaid_is_vended(self):
        """B6: the meter's overdraft is repaid from the token: a balance of -20 and a recharge
        of 50 vend 50 (the meter goes from -20 to 30, as the server)."""
        self.account.overdraft_limit = 30.0
        self._consume((0, 1000), (60, 1010), (120, 1020), (180, 1030), (240, 1040))  # 40 kWh
        self.assertEqual(self._balance(), Decimal("-20.0000"))
        self.account._recharge("50")
        self.assertEqual(self._amount(self._credits()), Decimal("50.0000"))
        self.assertEqual(self._balance(), Decimal("30.0000"))

    def test_same_reference_vends_once(self):
        """R1/R10: the same payment credited twice: one set of lines, one credit."""
        first = self.account._recharge("25", payment_method="online", reference="MB-TX-1")
        again = self.account._recharge("25", payment_method="online", reference="MB-TX-1")
        self.assertEqual(first, again)
        self.assertEqual(len(self._credits()), 1)
        self.assertEqual(self._balance(), Decimal("25.0000"))

    def test_meter_of_another_account_reads_as_missing(self):
        """R5: a meter that is not the account's is refused exactly like one that does not
        exist (a foreign id tells nothing)."""
        foreign = self._create_meter("Power T-102", "000000000102", self.unit2)
        missing = self.env["prepaid.meter"].browse(foreign.id + 1000)
        with self.assertRaises(UserError) as foreign_error:
            self.account._recharge("10", meter=foreign)
        with self.assertRaises(UserError) as missing_error:
            self.account._recharge("10", meter=missing)
        self.assertEqual(str(foreign_error.exception), str(missing_error.exception))
        self.assertFalse(self.account.line_ids)

    def test_several_meter_balance_meters_need_a_choice(self):
        second = self._create_meter("Power T-101b", "000000000111", self.unit)
        second.billing_mode = "meter"
        wizard = self.env["prepaid.account.recharge"].create(
            {"account_id": self.account.id, "amount": 10.0}
        )
        self.assertTrue(wizard.meter_required)
        self.assertFalse(wizard.meter_id)
        with self.assertRaises(UserError):
            wizard.action_confirm()
        self.assertFalse(self.account.line_ids)
        self.account._recharge("10", meter=second)
        self.assertFalse(self._credits())
        self.assertEqual(self._amount(self._credits(second)), Decimal("10.0000"))
        self.assertEqual(self.account.line_ids.meter_id, second)

    def test_server_balance_meter_gets_no_credit(self):
        self.meter.billing_mode = "server"
        lines = self.account._recharge("10", meter=self.meter)
        self.assertEqual(lines.meter_id, self.meter)
        self.assertFalse(lines.meter_credit_id)
        self.assertFalse(self._credits())
        lines = self.account._recharge("10")
        self.assertFalse(lines.meter_id, "no meter given, none that keeps its own balance")

    def test_refund_wizard_warns_the_money_is_on_the_meter(self):
        self.account._recharge("30")
        refund = self.env["prepaid.account.refund"].create(
            {"account_id": self.account.id, "amount": 10.0}
        )
        self.assertTrue(refund.meter_balance_warning)
        self.meter.billing_mode = "server"
        refund = self.env["prepaid.account.refund"].create(
            {"account_id": self.account.id, "amount": 10.0}
        )
        self.assertFalse(refund.meter_balance_warning)

    # === SUPPLY === #
    def test_supply_left_to_the_meter_notices_still_sent(self):
        """B8/B13: alarm 2 and exhaustion cut nothing on a meter-balance meter (the meter
        decides); a server-balance meter of the same account is cut; the notices go out."""
        server_meter = self._create_meter("Power T-101s", "000000000121", self.unit)
        self.account._recharge("25", meter=server_meter)
        self._ingest(server_meter, (0, 5000))
        self._consume((0, 1000), (60, 1012))  # 25 - 6 = 19: alarm 1
        self.assertEqual(self.meter.alarm_level, "alarm1")
        self._consume((120, 1022), (180, 1032), (240, 1042))  # 19 - 15 = 4: alarm 2
        self.assertEqual(self.meter.alarm_level, "alarm2")
        self.assertEqual(self.meter.desired_relay_state, "on", "no reminder cut")
        self.assertIn("its own balance", self.meter.desired_relay_reason)
        self.assertEqual(server_meter.desired_relay_state, "off", "reminder cut")
        self._consume((300, 1052))  # 4 - 5 = -1: credit used up
        self.assertEqual(self.meter.alarm_level, "arrears")
        self.assertEqual(self.meter.desired_relay_state, "on", "the meter cuts itself")
        self.assertEqual(server_meter.desired_relay_state, "off")
        self.assertFalse(
            self.meter.event_ids.filtered(lambda e: e.event_type == "desired_off"),
            "never asked to cut",
        )
        notices = self._notices()
        for text in ("Credit is low", "Credit is very low", "Credit used up"):
            self.assertTrue(any(text in body for body in notices), text)
        self.assertEqual(len(self.sent), 3, [sms["body"] for sms in self.sent])
        self.account._recharge("50", meter=self.meter)
        self.assertEqual(self.meter.alarm_level, "normal")
        self.assertEqual(server_meter.desired_relay_state, "on")
        self.assertEqual(self._amount(self._credits()), Decimal("50.0000"))

    def test_manager_force_and_switch_back_to_server_balance(self):
        """A manager's forced state still rules a meter-balance meter; switched back to
        server balance, it is cut for credit again."""
        self._consume((0, 1000), (60, 1010))  # 0 - 5: arrears
        self.assertEqual(self.meter.alarm_level, "arrears")
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.meter.with_user(self.manager).action_force_off()
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.meter.with_user(self.manager).action_restore_prepaid()
        self.assertEqual(self.meter.desired_relay_state, "on")
        self.meter.billing_mode = "server"
        self.assertEqual(self.meter.desired_relay_state, "off")
        self.assertIn("credit used up", self.meter.desired_relay_reason)
        later = fields.Datetime.now() + timedelta(minutes=5)
        self.meter._evaluate_alarms(now=later)
        self.assertEqual(self.meter.desired_relay_state, "off")


@tagged("post_install", "-at_install")
class TestMeterBalanceRechargeConcurrency(ConcurrencyCase):
    """R1/R10 on committed data: the same payment credited by two workers at once vends one
    credit."""

    def _create(self, env):
        company = env.ref("base.main_company")
        self.created["accounting"] = company.prepaid_accounting
        company.prepaid_accounting = False  # the ledger alone
        site = env["prepaid.site"].create({"name": "Meter Balance Park", "code": "MBP"})
        building = env["prepaid.building"].create({"name": "MB", "site_id": site.id})
        unit = env["prepaid.unit"].create({"name": "MB-1", "building_id": building.id})
        meter = env["prepaid.meter"].create(
            {
                "name": "Power MB-1",
                "model_id": env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
                "unit_id": unit.id,
                "state": "in_service",
                "billing_mode": "meter",
            }
        )
        partner = env["res.partner"].create({"name": "Meter Balance Tenant"})
        tenancy = env["prepaid.tenancy"].create(
            {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        self.created.update(
            company=company.id,
            site=site.id,
            building=building.id,
            meter=meter.id,
            partner=partner.id,
            tenancy=tenancy.id,
            account=tenancy.account_id.id,
        )

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        cr.execute("SELECT id FROM prepaid_meter_credit WHERE meter_id = %s", [ids["meter"]])
        credits = [row[0] for row in cr.fetchall()]
        for model, res_ids in (
            ("prepaid.meter.credit", credits),
            ("prepaid.account", [ids["account"]]),
            ("prepaid.tenancy", [ids["tenancy"]]),
            ("prepaid.meter", [ids["meter"]]),
            ("res.partner", [ids["partner"]]),
        ):
            forget(cr, model, res_ids)
        purge(cr, "prepaid_account", [ids["account"]])
        purge(cr, "prepaid_meter_credit", credits)
        purge(cr, "prepaid_tenancy", [ids["tenancy"]])
        purge_meters(cr, [ids["meter"]])
        purge(cr, "prepaid_building", [ids["building"]])
        purge(cr, "prepaid_site", [ids["site"]])
        purge(cr, "res_partner", [ids["partner"]])
        cr.execute(
            "UPDATE res_company SET prepaid_accounting = %s WHERE id = %s",
            [ids["accounting"], ids["company"]],
        )

    def test_same_payment_twice_at_once_vends_one_credit(self):
        def credit(env):
            account = env["prepaid.account"].browse(self.created["account"])
            meter = env["prepaid.meter"].browse(self.created["meter"])
            account._recharge("35", payment_method="online", reference="MB-RACE-1", meter=meter)

        self._race(credit, credit)
        credits = self._query(
            "SELECT amount::text, origin FROM prepaid_meter_credit WHERE meter_id = %s",
            [self.created["meter"]],
        )
        lines = self._query(
            "SELECT id, meter_id, meter_credit_id FROM prepaid_account_line WHERE account_id = %s",
            [self.created["account"]],
        )
        self.assertEqual(len(lines), 1, "one ledger line")
        [(line_id, meter_id, credit_id)] = lines
        self.assertEqual(meter_id, self.created["meter"])
        self.assertTrue(credit_id)
        self.assertEqual(
            [(Decimal(amount), origin) for amount, origin in credits],
            [(Decimal(35), f"prepaid.account.line,{line_id}")],
        )
        [(balance,)] = self._query(
            "SELECT balance::text FROM prepaid_account WHERE id = %s", [self.created["account"]]
        )
        self.assertEqual(Decimal(balance), Decimal(35))
