"""The demo's printed banner and keypad answers speak the demo's language: English by
default, Simplified Chinese for ``--lang zh_CN``, with the same facts (URLs, logins, meter
addresses) in both."""

import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo_stack  # noqa: E402


def stack(lang):
    return demo_stack.Stack(db="prepaid_demo", http_port=8069, lang=lang)


def fields(template):
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def chinese(text):
    return sum("\u4e00" <= char <= "\u9fff" for char in text)


def test_every_language_of_the_demo_has_a_banner_with_the_same_fields():
    assert set(demo_stack.LOCALES) <= set(demo_stack.BANNERS)
    english = fields(demo_stack.BANNERS[""])
    for lang, template in demo_stack.BANNERS.items():
        assert fields(template) == english, lang
        assert lang in demo_stack.TENANT_NAMES and lang in demo_stack.KEYPAD_WORDS


def test_the_chinese_banner_is_chinese_with_the_english_facts():
    english = demo_stack.banner(stack(""))
    text = demo_stack.banner(stack("zh_CN"))
    assert chinese(english) == 0
    assert chinese(text) > 300
    for fact in (
        "http://127.0.0.1:8069/odoo/action-prepaid_meter.prepaid_meter_action",
        "http://127.0.0.1:8069/my/meters",
        "admin      / admin",
        "tenant     / tenant",
        "prepaid_demo",
        *demo_stack.OWN_TOKEN_METERS,
        *demo_stack.STS_METERS,
    ):
        assert fact in english and fact in text, fact
    assert "绿叶咖啡" in text and "Green Leaf Cafe" not in text
    assert "Ctrl-C" in text and "按 Ctrl-C 停止" in text
    # the English wording is gone, not merely followed by Chinese
    for words in ("Logins", "Press Ctrl-C", "Within the first minutes", "Recharge one"):
        assert words not in text


def test_keypad_answers_in_the_demos_language():
    answer = {"accepted": False, "error": "replay", "token": "STS", "balance": "12.00"}
    assert demo_stack.keypad_answer("", "900000000005", answer) == (
        "900000000005: STS refused: replay, balance 12.00"
    )
    assert demo_stack.keypad_answer("zh_CN", "900000000005", answer) == (
        "900000000005: STS 被拒绝: replay, 余额 12.00"
    )
    accepted = demo_stack.keypad_answer("zh_CN", "900000000005", {**answer, "accepted": True})
    assert "已接受" in accepted


def test_install_progress_names_the_addon_loading_and_the_time():
    log = (
        "2026-12-06 20:50:10,680 1671 INFO db odoo.modules.loading: Loading module base (1/57)\n"
        "2026-12-06 20:50:46,364 1671 INFO db odoo.modules.loading: "
        "Loading module prepaid_meter (52/57)\n"
    )
    assert demo_stack.install_progress(log, 75.4) == "   1:15 add-on 52 of 57 (prepaid_meter)"
    assert demo_stack.install_progress("nothing loaded yet\n", 3) is None
