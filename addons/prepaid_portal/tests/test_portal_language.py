"""The portal in the tenant's language: the footer's language selector (Odoo's own, shown
once a second language is installed) switches a tenant's pages between English and
Simplified Chinese, the choice is kept for the next pages, and the page says its language."""

from lxml import html

from odoo.tests import HttpCase, tagged

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestPortalLanguage(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.env["res.lang"]._activate_lang("zh_CN")
        # Odoo's own Simplified Chinese of its web client and portal layout
        cls.env["ir.module.module"]._load_module_terms(["web", "portal"], ["zh_CN"])

    def _page(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        return response, html.fromstring(response.content)

    @staticmethod
    def _languages(document):
        """The selector's entries: {url code: (shown name, address)}."""
        links = document.xpath(
            "//*[contains(@class, 'js_language_selector')]//a[contains(@class, 'js_change_lang')]"
        )
        return {a.get("data-url_code"): (a.text_content().strip(), a.get("href")) for a in links}

    def test_tenant_switches_to_chinese_and_back(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        response, document = self._page("/my/meters")
        self.assertEqual(document.get("lang"), "en-US")
        self.assertIn("Skip to Content", response.text)
        languages = self._languages(document)
        self.assertEqual(set(languages), {"en", "zh_CN"})
        name, address = languages["zh_CN"]
        self.assertEqual(name, "简体中文")

        response, document = self._page(address)
        self.assertTrue(response.url.endswith("/zh_CN/my/meters"), response.url)
        self.assertEqual(document.get("lang"), "zh-CN")
        self.assertIn("跳至内容", response.text)  # portal's zh_CN.po: "Skip to Content"
        self.assertNotIn("Skip to Content", response.text)
        self.assertIn("Power P-1", response.text)  # still the tenant's own meters

        # kept for the next pages: the plain address now lands on the Chinese one
        response, document = self._page("/my/meters")
        self.assertTrue(response.url.endswith("/zh_CN/my/meters"), response.url)
        self.assertEqual(document.get("lang"), "zh-CN")

        # and back to English
        _name, address = self._languages(document)["en"]
        response, document = self._page(address)
        self.assertTrue(response.url.endswith("/my/meters"), response.url)
        self.assertNotIn("/zh_CN/", response.url)
        self.assertEqual(document.get("lang"), "en-US")
        self.assertIn("Skip to Content", response.text)

    def test_chinese_tenant_gets_chinese_pages(self):
        """A tenant whose preferred language is Chinese gets the portal in Chinese at once."""
        self.user_a.lang = "zh_CN"
        self.authenticate("tenant_a", "tenant_a_pw")
        response, document = self._page("/my/meters")
        self.assertTrue(response.url.endswith("/zh_CN/my/meters"), response.url)
        self.assertEqual(document.get("lang"), "zh-CN")
        self.assertIn("跳至内容", response.text)
