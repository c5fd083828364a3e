"""The printed receipts keep their Chinese and non-ASCII characters: the text of the PDF
wkhtmltopdf makes (read back with poppler's ``pdftotext``) is the text of the records."""

import shutil
import subprocess
import tempfile
import unicodedata
import unittest

from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.common import render_pdf

from .common import PrepaidBillingCommon

RECEIPT = "prepaid_billing.action_report_prepaid_receipt"
OPENING = "prepaid_billing.action_report_prepaid_opening"
LABEL = "prepaid_meter.action_report_prepaid_meter_label"
BROKEN = ("Â", "Ã", "ä¸", "å")  # UTF-8 read as Latin-1


def pdf_text(pdf):
    """The text of ``pdf`` as ``pdftotext`` reads it, NFKC-normalised: Noto CJK shares the
    glyph of some ideographs (一, 支) with a Kangxi radical (⼀, ⽀), and the PDF's text map
    may name the radical; both are the same character to a reader."""
    done = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"],
        input=pdf,
        capture_output=True,
        check=True,
    )
    return unicodedata.normalize("NFKC", done.stdout.decode())


def pdf_pages(pdf):
    """The text of each page of ``pdf`` (``pdftotext`` ends every page with a form feed)."""
    return pdf_text(pdf).split("\f")[:-1]


def pdf_fonts(pdf):
    """The names of the fonts embedded in ``pdf`` (``pdffonts``)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as source:
        source.write(pdf)
        source.flush()
        done = subprocess.run(["pdffonts", source.name], capture_output=True, check=True)
    return [line.split()[0] for line in done.stdout.decode().splitlines()[2:] if line.strip()]


@tagged("post_install", "-at_install")
class TestReceiptPdfText(PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cny = cls.env.ref("base.CNY")
        cny.active = True
        cls.env.company.write({"currency_id": cny.id, "name": "阳光物业 · Sunshine"})
        cls.tenant.name = "张伟"
        cls.meter.name = "电表 A-101"
        cls.unit.name = "一号楼 101"

    def setUp(self):
        super().setUp()
        for tool in ("pdftotext", "pdffonts"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"{tool} not installed (Debian: poppler-utils)")

    def _pdf(self, report, records):
        pdf, _fmt = render_pdf(self.env, report, records.ids)
        return pdf

    def _assert_cjk_font(self, pdf):
        fonts = pdf_fonts(pdf)
        self.assertTrue(
            any("CJK" in font for font in fonts),
            f"no CJK font embedded ({fonts}): install fonts-noto-cjk",
        )

    def _assert_clean(self, text, *expected):
        for wanted in expected:
            self.assertIn(wanted, text)
        for broken in BROKEN:
            self.assertNotIn(broken, text, "UTF-8 read as Latin-1 on the way to wkhtmltopdf")

    def test_recharge_receipt_prints_chinese_and_yuan(self):
        self.account._recharge("49.35", memo="微信支付 · 充值")
        line = self.account.line_ids.filtered(lambda line: line.kind == "recharge")
        pdf = self._pdf(RECEIPT, line)
        text = pdf_text(pdf)
        self._assert_clean(
            text,
            "阳光物业 · Sunshine",
            "张伟",
            "电表 A-101",
            "一号楼 101",
            "微信支付 · 充值",
            "¥ 49.35",
        )
        self.assertEqual(text.count("¥ 49.3500"), 3, "the balance (4 decimals) on each copy")
        balance_on = r"Balance on \d\d/\d\d/\d{4} \d\d:\d\d:\d\d [AP]M: ¥ 49\.3500"
        self.assertRegex(text, balance_on, "date and time in the language's format (en_US)")
        self.assertEqual(text.count("¥ 49.35"), 9, "and the line and the total on each copy")
        self._assert_cjk_font(pdf)

    def test_opening_receipt_prints_chinese(self):
        self.account.preset_credit = 10.0
        text = pdf_text(self._pdf(OPENING, self.account))
        self._assert_clean(
            text, "张伟", "电表 A-101", "一号楼 101", "Preset credit: ¥ 10.00", "¥ 20.00 / ¥ 5.00"
        )

    def test_several_documents_one_a_page(self):
        """All documents go to wkhtmltopdf in one file (one without patched Qt converts one)."""
        other = self._create_meter("水表 B-202", "000000000202", self.unit2)
        pages = pdf_pages(self._pdf(LABEL, self.meter | other))
        self.assertEqual(len(pages), 2, "one label a page")
        self.assertIn("电表 A-101", pages[0])
        self.assertIn("水表 B-202", pages[1])
        self.account._recharge("10", memo="一")
        self.account._recharge("20", memo="二")
        lines = self.account.line_ids.filtered(lambda line: line.kind == "recharge").sorted("id")
        pages = pdf_pages(self._pdf(RECEIPT, lines))
        self.assertEqual(len(pages), 2, "one receipt a page")
        self.assertIn("¥ 10.00", pages[0])
        self.assertIn("¥ 20.00", pages[1])

    def test_qr_label_prints_chinese(self):
        pdf = self._pdf(LABEL, self.meter)
        self.assertEqual(len(pdf_pages(pdf)), 1, "no blank page after the last label")
        self._assert_clean(pdf_text(pdf), "阳光物业 · Sunshine", "电表 A-101", "一号楼 101")
        self._assert_cjk_font(pdf)
