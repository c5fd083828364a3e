"""B13/G6/R10/R12: every credit sold for a meter-balance meter becomes one token delivered
by the meter's channel; device deliveries settle the credit, queued ones can be
cancelled; STS keypad tokens carry energy at the meter's price with the rest kept for the
next token; managers issue management tokens; only managers read tokens."""

import base64
from datetime import datetime
from decimal import Decimal

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from prepaid_core import sts, tokens

from .common import MeterGatewayCommon

STS_KEY_HEX = "abababababababab"
PAN = "600727000000000009"
SGC = "123456"


@tagged("post_install", "-at_install")
class TestMeterCredit(MeterGatewayCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Credit = cls.env["prepaid.meter.credit"]
        cls.meter.write({"billing_mode": "meter", "token_format": "own"})
        cls.manager = cls._user("mc_manager", "prepaid_meter.group_prepaid_manager")
        cls.operator = cls._user("mc_operator", "prepaid_meter.group_prepaid_user")

    def _acceptor(self, meter):
        key = tokens.derive_meter_key(self.env.company._prepaid_vending_key(), meter.address)
        return tokens.TokenAcceptor(key, meter.address)

    def test_own_format_device_credit_one_command_applied_on_confirmation(self):
        self.meter.credit_channel = "device"
        credit = self.Credit._vend(self.meter, "10", "test,1")
        command = credit.command_ids
        self.assertEqual((credit.state, credit.channel), ("issued", "device"))
        self.assertEqual((command.kind, command.state), ("credit", "queued"))
        self.assertEqual(credit.token, command.token_secret["token"])
        self.assertEqual(credit.token_reference, str(command.payload["sequence"]))
        token = self._acceptor(self.meter).accept(tokens.token_from_text(credit.token))
        self.assertEqual((token.kind, token.amount), (tokens.TokenKind.CREDIT, Decimal(10)))
        # R10: the sale retried gives the same credit, no second command
        self.assertEqual(self.Credit._vend(self.meter, "10", "test,1"), credit)
        self.assertEqual(self.Command.search_count([("credit_id", "=", credit.id)]), 1)
        command._mark_sent()
        command._mark_result(True, "meter: executed")
        self.assertEqual((command.state, credit.state), ("confirmed", "applied"))
        self.assertTrue(credit.applied_at)

    def test_failed_delivery_leaves_the_credit_issued_with_the_reason(self):
        credit = self.Credit._vend(self.meter, "5", "test,2")
        command = credit.command_ids
        command.max_attempts = 1
        command._mark_sent()
        command._mark_result(False, "meter: refused")
        self.assertEqual((command.state, credit.state), ("failed", "issued"))
        self.assertIn("meter: refused", credit.reason)

    def test_meter_reporting_the_token_accepted_applies_the_credit(self):
        credit = self.Credit._vend(self.meter, "7", "test,3")
        self.meter._log_event(
            "token_accepted", reason=f"CREDIT #{credit.token_reference}", source="device"
        )
        self.assertEqual(credit.state, "applied")

    def test_queued_credit_cancelled_never_sent_and_not_blocking_later_ones(self):
        first = self.Credit._vend(self.meter, "10", "test,4")
        first.with_user(self.manager).action_cancel()
        self.assertEqual((first.state, first.command_ids.state), ("cancelled", "cancelled"))
        second = self.Credit._vend(self.meter, "20", "test,5")
        queued = self.Command.search([("meter_id", "=", self.meter.id), ("state", "=", "queued")])
        kept, after = queued._credits_in_order()
        self.assertEqual(kept.filtered(lambda c: c.kind == "credit"), second.command_ids)
        self.assertEqual(after[second.command_ids.id], 0)
        # a late answer to the cancelled command applies nothing
        first.command_ids._mark_result(True, "meter: executed")
        self.assertEqual(first.state, "cancelled")

    def test_sent_credit_cannot_be_cancelled(self):
        credit = self.Credit._vend(self.meter, "10", "test,6")
        credit.command_ids._mark_sent()
        with self.assertRaises(UserError):
            credit.with_user(self.manager).action_cancel()
        self.assertEqual(credit.state, "issued")

    def test_own_format_keypad_and_card_credits_are_handed_over(self):
        self.meter.credit_channel = "keypad"
        keypad = self.Credit._vend(self.meter, "12.5", "test,7")
        self.assertEqual(keypad.command_ids.state, "handed")
        self.assertEqual(len(keypad.token), 20)
        self.assertEqual(self._acceptor(self.meter).accept(keypad.token).amount, Decimal("12.5"))
        self.meter.credit_channel = "card"
        card = self.Credit._vend(self.meter, "30", "test,8")
        self.assertEqual(card.command_ids.state, "handed")
        handed = self.meter.gateway_id._api_fetch_commands()["commands"]
        self.assertFalse([c for c in handed if c["kind"] == "credit"], "never sent by a gateway")
        action = card.with_user(self.manager).action_download_card_payload()
        self.assertIn("/card_payload/", action["url"])
        payload = card.with_user(self.manager).card_payload
        token = self._acceptor(self.meter).check(base64.b64decode(payload))
        self.assertEqual(token.amount, Decimal(30))

    def test_tokens_readable_by_managers_only(self):
        credit = self.Credit._vend(self.meter, "10", "test,9")
        command = credit.command_ids
        self.assertTrue(command.with_user(self.manager).token_secret)
        self.assertTrue(credit.with_user(self.manager).token)
        with self.assertRaises(AccessError):
            command.with_user(self.operator).read(["token_secret"])
        with self.assertRaises(AccessError):
            credit.with_user(self.operator).read(["token"])
        with self.assertRaises(AccessError):
            self.meter.with_user(self.operator)._issue_management_tokens("clear_tamper", "t")

    def test_own_format_management_tokens(self):
        commands = self.meter.with_user(self.manager)._issue_management_tokens(
            "clear_tamper", "tamper inspected"
        )
        self.assertEqual((commands.kind, commands.state), ("management", "handed"))
        token = self._acceptor(self.meter).accept(commands.sudo().token_secret["keypad"])
        self.assertEqual(token.kind, tokens.TokenKind.CLEAR_TAMPER)
        with self.assertRaises(UserError):
            self.meter.with_user(self.manager)._issue_management_tokens("max_power", "x", 100)


@tagged("post_install", "-at_install")
class TestStsCredit(MeterGatewayCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Credit = cls.env["prepaid.meter.credit"]
        cls.env.company.prepaid_sts_vending_key = STS_KEY_HEX
        cls.manager = cls._user("sts_manager", "prepaid_meter.group_prepaid_manager")
        sts_params = {
            "billing_mode": "meter",
            "token_format": "sts",
            "credit_channel": "keypad",
            "sts_meter_number": PAN,
            "sts_supply_group_code": SGC,
            "sts_tariff_index": "01",
            "sts_key_revision": 1,
        }
        cls.meter.write(sts_params)
        cls.meter2.write(sts_params)

    def setUp(self):
        super().setUp()
        if "prepaid.tariff" not in self.env:
            self.skipTest("prepaid_billing gives the meter's price and is not installed")
        self.env.company.prepaid_accounting = False
        tariff = self.env["prepaid.tariff"].create(
            {
                "name": "Flat 0.3",
                "timezone": "UTC",
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2020, 1, 1),
                            "code": "v1",
                            "step_ids": [Command.create({"price_flat": 0.3})],
                        }
                    )
                ],
            }
        )
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": self.unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        tenancy.account_id.tariff_id = tariff

    def _key(self, revision=1):
        return sts.decoder_key_dkga02(bytes.fromhex(STS_KEY_HEX), SGC, "01", revision, PAN)

    def test_sts_keypad_credits_carry_energy_and_the_rest_exactly(self):
        first = self.Credit._vend(self.meter, "10", "sts,1")
        self.assertEqual((first.state, first.channel), ("issued", "keypad"))
        self.assertEqual(first.command_ids.state, "handed")
        decoded = sts.decode(first.token, self._key())
        self.assertEqual(decoded.amount, Decimal("33.3"))  # 10 / 0.3 = 33.33.. kWh, down
        self.assertEqual(self.meter._meter_credit_not_carried(), Decimal("0.01"))
        # the 0.01 not carried goes with the next token: 0.29 + 0.01 = 1.0 kWh exactly
        second = self.Credit._vend(self.meter, "0.29", "sts,2")
        decoded2 = sts.decode(second.token, self._key())
        self.assertEqual(decoded2.amount, Decimal("1.0"))
        self.assertEqual(self.meter._meter_credit_not_carried(), Decimal(0))
        # same minute: distinct, strictly increasing token ids; the meter takes both
        self.assertGreater(decoded2.tid, decoded.tid)
        self.assertEqual(
            (first.token_reference, second.token_reference), (str(decoded.tid), str(decoded2.tid))
        )
        self.assertEqual(decoded.issued_since(sts.BASE_DATE_2014).year, datetime.now().year)
        meter = sts.StsMeter(self._key())
        meter.enter(first.token)
        meter.enter(second.token)
        self.assertEqual(meter.credit[sts.CreditSubclass.ELECTRICITY], Decimal("34.3"))

    def test_meter_balance_meters_get_their_prices_whatever_the_model_says(self):
        self.ddsy.holds_settings = False
        issued = self.Command._issue_device_settings(meters=self.meter)
        self.assertEqual(issued.filtered(lambda c: c.kind == "price").payload["price"], "0.3")

    def test_sts_credit_without_a_single_price_stays_to_issue(self):
        credit = self.Credit._vend(self.meter2, "10", "sts,3")
        self.assertEqual(credit.state, "to_issue")
        self.assertIn("no single price", credit.reason)
        self.assertFalse(credit.command_ids)
        self.assertFalse(credit.sudo().token)

    def test_sts_management_tokens_decode_to_what_was_asked(self):
        Wizard = self.env["meter.gateway.management.token.wizard"].with_user(self.manager)
        issued = {}
        for action in ("max_power", "clear_credit", "clear_tamper"):
            wizard = Wizard.create(
                {
                    "meter_id": self.meter.id,
                    "action": action,
                    "max_power_watts": 5000,
                    "reason": "test",
                }
            )
            result = wizard.action_issue()
            issued[action] = self.Command.browse(result["domain"][0][2])
        values = {a: sts.decode(c.token_secret["keypad"], self._key()) for a, c in issued.items()}
        self.assertEqual(values["max_power"].subclass, sts.Subclass.MAX_POWER_LIMIT)
        self.assertEqual(sts.decode_amount(values["max_power"].value), 5000)
        self.assertEqual(values["clear_credit"].subclass, sts.Subclass.CLEAR_CREDIT)
        self.assertEqual(values["clear_tamper"].subclass, sts.Subclass.CLEAR_TAMPER)
        tids = [values[a].tid for a in ("max_power", "clear_credit", "clear_tamper")]
        self.assertEqual(tids, sorted(set(tids)))
        # key change: two tokens moving the meter to key revision 2
        wizard = Wizard.create(
            {
                "meter_id": self.meter.id,
                "action": "key_change",
                "key_revision": 2,
                "tariff_index": "01",
                "reason": "rekey",
            }
        )
        first, second = self.Command.browse(wizard.action_issue()["domain"][0][2]).sorted("id")
        meter = sts.StsMeter(self._key())
        meter.enter(first.token_secret["keypad"])
        meter.enter(second.token_secret["keypad"])
        self.assertEqual(meter.decoder_key, self._key(revision=2))
        self.assertEqual(self.meter.sts_key_revision, 2)
        # the next credit is made for the new key
        credit = self.Credit._vend(self.meter, "3", "sts,4")
        self.assertEqual(meter.enter(credit.token).amount, Decimal("10.0"))
