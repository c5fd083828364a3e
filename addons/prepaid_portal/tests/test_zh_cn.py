from datetime import datetime

from lxml import html

from odoo import fields, http
from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase

from .common import PrepaidPortalMixin
from .test_tours import PortalTourCommon


@tagged("post_install", "-at_install")
class TestChinesePrepaidPortal(PrepaidPortalMixin, ChineseTranslationCase):
    _module = "prepaid_portal"
    _messages = {"A new reading arrived.": "新读数"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.account_a1.sudo()._recharge("50", memo="desk")

    def test_low_balance_alert_in_the_subscribers_language(self):
        """X4/T6: the alert goes out in the subscriber's language, whoever runs the check."""
        sent = self._mock_sms_gateway()
        self.tenant_a.lang = "zh_CN"
        self.env["prepaid.alert.subscription"].create(
            {
                "account_id": self.account_a1.id,
                "partner_id": self.tenant_a.id,
                "threshold": 30.5,
                "channel": "sms",
            }
        )
        self.account_a1.sudo().with_context(lang="en_US")._refund("25")
        self.assertIn("已低于您设置的提醒金额", sent[0]["body"])


@tagged("post_install", "-at_install")
class TestChinesePortalPages(PortalTourCommon):
    """The tenant's pages in Chinese: each sentence holding a figure is one translated
    sentence (the figure inside), the chart's months are named in Chinese, the sign-up form's
    example number is the company's country's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # readings from December 2025 to March 2026, frozen per day
        cls.env["res.lang"]._activate_lang("zh_CN")
        cls.env["ir.module.module"]._load_module_terms(
            ["web", "portal", "prepaid_meter", "prepaid_billing", "prepaid_portal"], ["zh_CN"]
        )
        cls.user_a.lang = "zh_CN"

    def _text(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        document = html.fromstring(response.content)
        return document, " ".join(document.text_content().split())

    def test_meter_page_sentences_in_chinese(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        document, text = self._text(f"/zh_CN/my/meters/{self.meter_a1.id}")
        (label,) = document.xpath("//label[@for='o_prepaid_custom_amount']")
        self.assertIn("其他金额", label.text_content())
        self.assertNotIn("Other amount", text)
        self.assertNotIn(" to ", label.text_content())

    def test_history_chart_months_in_chinese(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        document, text = self._text(f"/zh_CN/my/meters/{self.meter_a1.id}/history")
        labels = [
            e.text_content() for e in document.xpath("//*[contains(@class, 'o_prepaid_bar_label')]")
        ]
        # the last 12 months, this one last
        today = fields.Date.context_today(self.meter_a1)
        months = [(today.year * 12 + today.month - 1 - n) for n in reversed(range(12))]
        self.assertEqual(labels, [f"{month % 12 + 1}月" for month in months])
        titles = [e.get("title") for e in document.xpath("//*[contains(@class, 'o_prepaid_bar ')]")]
        self.assertTrue(titles[-1].startswith(f"{today.year}年{today.month}月"), titles[-1])
        self.assertIn("用量（kWh）", text)
        self.assertNotIn("Consumption (", text)
        document, _text = self._text(f"/zh_CN/my/meters/{self.meter_a1.id}/history?period=year")
        labels = [
            e.text_content() for e in document.xpath("//*[contains(@class, 'o_prepaid_bar_label')]")
        ]
        # from the first year with consumption to this one, each shown
        self.assertEqual(labels, [f"{year}年" for year in range(2025, today.year + 1)])

    def test_alert_page_sentence_in_chinese(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        _document, text = self._text(f"/zh_CN/my/meters/{self.meter_a1.id}/alerts")
        self.assertIn(f"账户 {self.account_a1.name} ", text)
        self.assertNotIn("We tell you once", text)
        response = self.url_open(
            f"/zh_CN/my/meters/{self.meter_a1.id}/alerts",
            data={
                "threshold": "abc",
                "channel": "email",
                "csrf_token": http.Request.csrf_token(self),
            },
        )
        self.assertIn("请以数字输入提醒金额", response.text)

    def test_reported_meter_balance_sentence_in_yuan(self):
        cny = self.env.ref("base.CNY")
        cny.active = True
        meter = self.meter_a1.with_context(lang="zh_CN", tz="Asia/Shanghai")
        text = meter._portal_sentence(
            "meter_balance", cny, balance=23.45, time=datetime(2026, 3, 2, 4, 0)
        )
        self.assertIn("表内余额", text)
        self.assertIn("¥", text)
        self.assertIn("23.45", text)
        self.assertIn("12:00", text)  # 04:00 UTC in Shanghai
        self.assertNotIn("reported", text)

    def test_signup_example_number_of_the_companys_country(self):
        self.env.company.country_id = self.env.ref("base.cn")
        document, _text = self._text("/zh_CN/web/phone/signup")
        (phone,) = document.xpath("//input[@name='phone']")
        self.assertTrue(phone.get("placeholder").startswith("+86 "), phone.get("placeholder"))
        self.assertNotIn("555", phone.get("placeholder"))
