from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase


@tagged("post_install", "-at_install")
class TestChinesePrepaidBilling(ChineseTranslationCase):
    _module = "prepaid_billing"
    _messages = {"%(company)s has no cash or bank journal to record prepaid payments.": "日记账"}
