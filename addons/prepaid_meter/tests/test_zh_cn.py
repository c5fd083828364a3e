from odoo.tests import tagged

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
