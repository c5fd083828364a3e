import html
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.prepaid_meter.error_texts import ERROR_TEXTS
from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase, _has_chinese

import prepaid_core
from prepaid_core import alarm

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestChinesePrepaidBilling(ChineseTranslationCase):
    _module = "prepaid_billing"
    _messages = {"%(company)s has no cash or bank journal to record prepaid payments.": "日记账"}

    def test_alarm_notices_in_the_tenants_language_and_currency(self):
        """X4/B8: a tenant reading Chinese gets the alarm notices in Chinese, amounts in the
        account's currency (CNY: ¥); an English-speaking tenant gets them in English."""
        cny = self.env.ref("base.CNY")
        cny.active = True
        account = self.env["prepaid.account"].new({"currency_id": cny.id})
        settings = alarm.AlarmSettings(
            alarm1=Decimal(20), alarm2=Decimal(5), reminder_cut=timedelta(minutes=30)
        )
        zhang = self.env["res.partner"].create({"name": "张伟", "lang": "zh_CN"})
        jones = self.env["res.partner"].create({"name": "Ann Jones", "lang": "en_US"})
        low = alarm._notice(alarm.ALARM2, 0, Decimal("4.5"), settings)
        text = account._notice_text(low, zhang)
        self.assertIn("余额严重不足", text)
        self.assertIn("¥", text)
        self.assertIn("4.50", text)
        self.assertIn("30", text)
        english = account._notice_text(low, jones)
        self.assertIn("Credit is very low", english)
        self.assertIn("¥", english)
        overload = alarm._overload_notice(datetime(2026, 12, 6), None)
        self.assertIn("过载", account._notice_text(overload, zhang))

    def test_overdue_policy_notices_in_the_tenants_language(self):
        """B14/X4: the notices of the overdue policy are worded for the tenant, whatever the
        language of the user (or scheduled action) that applied the policy."""
        account = self.env["prepaid.account"].with_context(lang="en_US")
        zhang = self.env["res.partner"].create({"name": "张伟", "lang": "zh_CN"})
        jones = self.env["res.partner"].create({"name": "Ann Jones", "lang": "en_US"})
        english = account._postpaid_notice_text("postpaid_overdue")
        cut = alarm.Notice("postpaid_overdue", "postpaid_overdue#1", english)
        self.assertEqual(
            account._notice_text(cut, zhang), "已拉闸：有发票逾期未付。付清后自动合闸。"
        )
        self.assertEqual(account._notice_text(cut, jones), english)
        paid = alarm.Notice("postpaid_paid", "postpaid_paid@1", "")
        self.assertEqual(account._notice_text(paid, zhang), "逾期发票已付清：已合闸恢复供电。")

    def test_alarm_status_labels_are_in_chinese(self):
        labels = dict(self.zh["prepaid.meter"]._fields["status"]._description_selection(self.zh))
        self.assertEqual(labels["arrears"], "欠费")


@tagged("post_install", "-at_install")
class TestChineseBillingMessages(PrepaidBillingCommon):
    """A manager reading Chinese meets prepaid_core's errors and the chatter's figures in
    Chinese, amounts in the account's currency (¥ for CNY)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("zh_CN")
        cls.env["ir.module.module"]._load_module_terms(
            ["prepaid_meter", "prepaid_billing"], ["zh_CN"], overwrite=True
        )
        cny = cls.env.ref("base.CNY")
        cny.active = True
        cls.env.company.currency_id = cny
        cls.zh_account = cls.account.with_context(lang="zh_CN")

    def test_alarm_threshold_error_in_chinese(self):
        with self.assertRaises(ValidationError) as caught:
            self.zh_account.write({"alarm1_threshold": 5.0, "alarm2_threshold": 8.0})
        message = caught.exception.args[0]
        self.assertIn("一级报警", message)
        self.assertIn("¥", message)
        self.assertNotIn("must be higher", message)

    def test_refund_above_the_balance_in_chinese(self):
        self.account._recharge("40", memo="desk")
        with self.assertRaises(UserError) as caught:
            self.zh_account._refund("50")
        message = caught.exception.args[0]
        self.assertIn("退费", message)
        self.assertIn("¥\N{NO-BREAK SPACE}50.00", message)
        self.assertIn("¥\N{NO-BREAK SPACE}40.00", message)
        self.assertNotIn("refundable", message)

    def test_tariff_error_in_chinese(self):
        """A time-of-use day with a gap, saved by a manager reading Chinese."""
        with self.assertRaises(ValidationError) as caught:
            self._create_tariff(
                "峰谷",
                [{"price_peak": 0.8, "price_valley": 0.3}],
                segments=[(0, 8, "valley"), (10, 24, "peak")],
                env=self.env(context={"lang": "zh_CN"}),
            )
        message = caught.exception.args[0]
        self.assertIn("08:00", message)
        self.assertIn("10:00", message)
        self.assertIn("全天", message)
        self.assertNotIn("cover", message)

    def test_every_error_code_of_prepaid_core_is_worded_in_chinese(self):
        """Each ``code=`` prepaid_core raises has its wording, and each wording its Chinese
        with the same placeholders."""
        root = Path(prepaid_core.__file__).parent
        raised = {
            code
            for path in root.rglob("*.py")
            for code in re.findall(r'code="([a-z0-9_]+\.[a-z0-9_]+)"', path.read_text())
        }
        self.assertTrue(raised)
        self.assertFalse(raised - set(ERROR_TEXTS), "codes without a wording")
        zh = self.env(context={"lang": "zh_CN"})
        for code, text in ERROR_TEXTS.items():
            chinese = zh._(text)
            self.assertTrue(_has_chinese(chinese), code)
            self.assertEqual(
                sorted(re.findall(r"%\(\w+\)s", chinese)),
                sorted(re.findall(r"%\(\w+\)s", text._source)),
                code,
            )

    def test_recharge_chatter_in_yuan_and_chinese(self):
        self.zh_account._recharge("40", payment_method="cash", memo="desk")
        body = html.unescape(str(self.account.message_ids[:1].body))
        self.assertIn("¥\N{NO-BREAK SPACE}40.00", body)
        self.assertIn("现金", body)
        self.assertNotIn("Recharge of", body)

    def test_alarm_level_events_in_chinese(self):
        meter = self.meter.with_context(lang="zh_CN")
        meter._log_alarm_level_changes({("normal", "alarm1"): meter.ids})
        event = self.env["prepaid.meter.event"].search(
            [("meter_id", "=", meter.id), ("code", "=", "alarm1")], limit=1
        )
        self.assertIn("一级报警", event.reason)
        self.assertNotIn("Alarm 1", event.reason)

    def test_supply_reason_in_chinese(self):
        """The alarm machine's reason for cutting supply, on the meter form in Chinese; a
        manager's own words as written."""
        self.meter.sudo().desired_relay_reason = alarm.REASON_TEXTS[alarm.CUT_ARREARS]
        why = self.meter.with_context(lang="zh_CN").desired_relay_why
        self.assertIn("拉闸", why)
        self.assertNotIn("Supply cut", why)
        self.meter.sudo().desired_relay_reason = "电工检修"
        self.meter.invalidate_recordset(["desired_relay_why"])
        self.assertEqual(self.meter.with_context(lang="zh_CN").desired_relay_why, "电工检修")
