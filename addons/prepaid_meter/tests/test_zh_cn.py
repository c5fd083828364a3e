from decimal import Decimal
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.prepaid_meter.error_texts import error_text

from prepaid_core import balance, sts, tokens

from .common import PrepaidMeterCommon
from .translations import ChineseTranslationCase


@tagged("post_install", "-at_install")
class TestChinesePrepaidMeter(ChineseTranslationCase):
    _module = "prepaid_meter"
    _messages = {"%(meter)s was removed; it cannot return.": "已拆除"}

    def test_meter_status_labels_are_in_chinese(self):
        """The status badge's labels come from a method: translated there."""
        labels = dict(self.zh["prepaid.meter"]._fields["status"]._description_selection(self.zh))
        self.assertEqual(labels["off"], "已拉闸")
        self.assertEqual(labels["normal"], "正常")

    def test_billing_mode_and_meter_balance_have_their_own_words(self):
        """ "Meter Balance" is the balance a meter holds; the billing mode where the meter
        deducts itself has its own words, in English and in Chinese."""
        for env in (self.env, self.zh):
            modes = dict(env["prepaid.meter"]._fields["billing_mode"]._description_selection(env))
            label = env["prepaid.meter.reading"]._fields["meter_balance"]._description_string(env)
            self.assertNotEqual(modes["meter"], label)
        modes = dict(
            self.zh["prepaid.meter"]._fields["billing_mode"]._description_selection(self.zh)
        )
        self.assertEqual(modes["meter"], "表端计费")
        self.assertEqual(modes["server"], "系统计费")
        self.assertEqual(
            self.zh["prepaid.meter.reading"]._fields["meter_balance"]._description_string(self.zh),
            "表内余额",
        )

    def test_core_errors_worded_in_chinese(self):
        """prepaid_core's errors as a Chinese-speaking user reads them: the code's wording,
        its values inside, nothing of the English message."""
        cny = self.env.ref("base.CNY")
        cny.active = True
        with self.assertRaises(balance.BalanceError) as caught:
            balance.refund(Decimal("50"), balance=Decimal("40"))
        text = error_text(self.zh, caught.exception, cny)
        self.assertIn("¥\N{NO-BREAK SPACE}50.00", text)
        self.assertIn("退费", text)
        self.assertNotIn("refund", text)
        with self.assertRaises(sts.StsError) as caught:
            sts.decoder_key_dkga02(bytes(8), "12345", "01", 1, "60072700000900005")
        text = error_text(self.zh, caught.exception)
        self.assertIn("供电组代码", text)
        self.assertIn("6", text)
        self.assertNotIn("supply group code", text)
        with self.assertRaises(tokens.TokenError) as caught:
            tokens.issue_token(bytes(32), "12", tokens.TokenKind.CREDIT, Decimal(5), 1)
        self.assertIn("12 位", error_text(self.zh, caught.exception))
        # an error without a code keeps its English message
        self.assertEqual(error_text(self.zh, ValueError("raw detail")), "raw detail")


@tagged("post_install", "-at_install")
class TestChineseMeterCredit(PrepaidMeterCommon):
    def test_meter_credit_amount_error_in_chinese(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env["ir.module.module"]._load_module_terms(["prepaid_meter"], ["zh_CN"], True)
        Credit = self.env["prepaid.meter.credit"].with_context(lang="zh_CN")
        with self.assertRaises(UserError) as caught:
            Credit._vend(self.meter, "0", "desk-0")
        message = caught.exception.args[0]
        self.assertIn("充值额度", message)
        self.assertIn("大于零", message)
        self.assertNotIn("must be more than zero", message)


@tagged("post_install", "-at_install")
class TestScheduledActionsLanguage(PrepaidMeterCommon):
    """X4: the suite's scheduled actions run in their user's language (Odoo starts them
    without one), so what they store reads in the site's language; others are unchanged."""

    def _language_of_run(self, xmlid):
        cron = self.env.ref(xmlid).with_user(self.env.ref("base.user_root"))
        seen = []

        def run(actions):
            seen.append(actions.env.lang)

        Actions = type(self.env["ir.actions.server"])
        with (
            patch.object(Actions, "run", run),
            patch.object(self.env.cr, "commit", lambda: None),
        ):
            cron._callback(cron.name, cron.ir_actions_server_id.id)
        return seen[0]

    def test_suite_crons_run_in_their_users_language(self):
        self.env["res.lang"]._activate_lang("zh_CN")
        self.env.ref("base.user_root").lang = "zh_CN"
        self.assertEqual(
            self._language_of_run("prepaid_meter.ir_cron_prepaid_meter_connection"), "zh_CN"
        )
        # Odoo's own scheduled actions as Odoo runs them
        self.assertIsNone(self._language_of_run("base.autovacuum_job"))
