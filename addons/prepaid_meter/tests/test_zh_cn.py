from odoo.tests import tagged

from .translations import ChineseTranslationCase


@tagged("post_install", "-at_install")
class TestChinesePrepaidMeter(ChineseTranslationCase):
    _module = "prepaid_meter"
    _messages = {"%(meter)s was removed; it cannot return.": "已拆除"}
