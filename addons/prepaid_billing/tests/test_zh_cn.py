from datetime import datetime, timedelta
from decimal import Decimal

from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase

from prepaid_core import alarm


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

    def test_alarm_status_labels_are_in_chinese(self):
        labels = dict(self.zh["prepaid.meter"]._fields["status"]._description_selection(self.zh))
        self.assertEqual(labels["arrears"], "欠费")
