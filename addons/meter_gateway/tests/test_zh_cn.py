from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.translations import ChineseTranslationCase


@tagged("post_install", "-at_install")
class TestChineseMeterGateway(ChineseTranslationCase):
    _module = "meter_gateway"
    _messages = {" (and %s more)": "另有"}
