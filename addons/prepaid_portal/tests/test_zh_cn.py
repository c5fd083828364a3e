from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase


@tagged("post_install", "-at_install")
class TestChinesePrepaidPortal(ChineseTranslationCase):
    _module = "prepaid_portal"
    _messages = {"A new reading arrived.": "新读数"}
