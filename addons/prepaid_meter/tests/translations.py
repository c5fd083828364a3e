"""X4: an add-on's Simplified Chinese, as Odoo loads it: every field, selection value and
menu of the add-on in Chinese, and the messages of its code found by ``env._``."""

import re

from odoo.tests import TransactionCase
from odoo.tools import SQL
from odoo.tools.translate import code_translations

LANG = "zh_CN"


class ChineseTranslationCase(TransactionCase):
    """Loads ``_module``'s zh_CN.po into the test database and checks what users see."""

    allow_inherited_tests_method = True  # each add-on's class runs these tests
    _module = ""
    #: English messages of the add-on's code with a word their translation must contain
    _messages = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang(LANG)
        cls.env["ir.module.module"]._load_module_terms([cls._module], [LANG], overwrite=True)
        cls.zh = cls.env(context={"lang": LANG})

    def _own(self, model):
        """The add-on's own records of ``model`` (by their external ids)."""
        data = self.env["ir.model.data"].search(
            [("module", "=", self._module), ("model", "=", model)]
        )
        return self.zh[model].browse(data.mapped("res_id")).exists()

    def test_every_field_selection_and_menu_is_in_chinese(self):
        """Each label of the add-on's fields, selection values and menus has its zh_CN
        text in the database, and most read as Chinese (codes and units may not)."""
        for model, column in (
            ("ir.model.fields", "field_description"),
            ("ir.model.fields.selection", "name"),
            ("ir.ui.menu", "name"),
        ):
            records = self._own(model)
            self.assertTrue(records, model)
            self.env.cr.execute(
                SQL(
                    "SELECT id, %s->>'en_US' FROM %s WHERE id IN %s AND NOT %s ? 'zh_CN'",
                    SQL.identifier(column),
                    SQL.identifier(records._table),
                    tuple(records.ids),
                    SQL.identifier(column),
                )
            )
            # labels without a letter (baud rates, dates) are not exported for translation
            missing = [row for row in self.env.cr.fetchall() if any(c.isalpha() for c in row[1])]
            self.assertFalse(missing, f"{model} without zh_CN")
            chinese = [r for r in records if _has_chinese(r[column])]
            self.assertGreater(len(chinese), 0.8 * len(records), model)

    def test_no_spec_ids_in_labels_and_help_texts(self):
        """Field labels and help texts, in English and in Chinese, speak to users: no
        requirement ids of the product spec ("B13", "G9/M2") in them."""
        spec_id = re.compile(r"(?<![\w/.-])[BGMRT]\d{1,2}(?:/[BGMRT]\d{1,2})*(?![\w-])")
        for env in (self.env, self.zh):
            for field in self._own("ir.model.fields").with_env(env):
                for text in (field.field_description, field.help):
                    self.assertFalse(spec_id.search(text or ""), f"{field.name}: {text}")

    def test_code_messages_are_in_chinese(self):
        """The messages of the add-on's Python code as ``env._`` finds them in Chinese."""
        translations = code_translations.get_python_translations(self._module, LANG)
        self.assertTrue(self._messages)
        for english, word in self._messages.items():
            self.assertIn(word, translations.get(english, ""), english)
        self.assertFalse([s for s, t in translations.items() if not t], "empty translations")


def _has_chinese(text):
    return any("\u4e00" <= char <= "\u9fff" for char in text or "")
