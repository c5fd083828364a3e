"""The translation checks of ``scripts/i18n.sh check``: a committed ``.pot`` against a fresh
export, a ``zh_CN.po`` against its ``.pot``; each fault is named with the string at fault."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import i18n_po  # noqa: E402

HEADER = """# Translation of Odoo Server.
msgid ""
msgstr ""
"Project-Id-Version: Odoo Server 19.0\\n"
"POT-Creation-Date: {date}\\n"
"PO-Revision-Date: {date}\\n"
"Last-Translator: \\n"
"Language-Team: \\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: \\n"
"Plural-Forms: \\n"
"""


def entry(msgid, msgstr="", ref="code:addons/prepaid_meter/models/prepaid_meter.py:0", flag=""):
    flags = f"#, {flag}\n" if flag else ""
    return f'\n#. module: prepaid_meter\n#: {ref}\n{flags}msgid "{msgid}"\nmsgstr "{msgstr}"\n'


def pot(*msgids, date="2026-12-06 18:45+0000"):
    return HEADER.format(date=date) + "".join(entry(m) for m in msgids)


def po(*pairs):
    return HEADER.format(date="2026-12-06 18:45+0000") + "".join(entry(*p) for p in pairs)


STRINGS = ("Meter", "%(meter)s is cut: balance %(balance)s.", "Hello {{ object.name }}")
GOOD = (
    ("Meter", "电表"),
    ("%(meter)s is cut: balance %(balance)s.", "%(meter)s 已拉闸：余额 %(balance)s。"),
    ("Hello {{ object.name }}", "您好 {{ object.name }}"),
)


def test_a_fresh_export_differing_only_by_its_dates_passes():
    committed = pot(*STRINGS)
    exported = pot(*STRINGS, date="2027-01-01 00:00+0000")
    assert i18n_po.pot_differences(committed, exported) == []


def test_a_changed_msgid_is_named_both_ways():
    exported = pot("Meter", "%(meter)s is cut off: balance %(balance)s.", STRINGS[2])
    problems = i18n_po.pot_differences(pot(*STRINGS), exported)
    assert problems == [
        "new string, not in the committed .pot: '%(meter)s is cut off: balance %(balance)s.'",
        "string no longer in the code: '%(meter)s is cut: balance %(balance)s.'",
    ]


def test_a_moved_reference_is_shown_as_a_diff():
    moved = pot(*STRINGS).replace("prepaid_meter.py:0", "prepaid_meter_state.py:0", 1)
    (problem,) = i18n_po.pot_differences(pot(*STRINGS), moved)
    assert problem.startswith("the .pot differs from a fresh export")
    assert "+#: code:addons/prepaid_meter/models/prepaid_meter_state.py:0" in problem


def test_a_complete_translation_passes():
    assert i18n_po.po_problems(po(*GOOD), pot(*STRINGS)) == []


def test_a_missing_translation_fails():
    problems = i18n_po.po_problems(po(*GOOD[:2]), pot(*STRINGS))
    assert problems == ["string of the .pot not in the .po: 'Hello {{ object.name }}'"]


def test_an_empty_translation_fails():
    problems = i18n_po.po_problems(po(GOOD[0], (STRINGS[1], ""), GOOD[2]), pot(*STRINGS))
    assert problems == ["empty translation of '%(meter)s is cut: balance %(balance)s.'"]


def test_a_fuzzy_translation_fails():
    fuzzy = (GOOD[0][0], GOOD[0][1], "code:addons/prepaid_meter/models/prepaid_meter.py:0", "fuzzy")
    problems = i18n_po.po_problems(po(fuzzy, *GOOD[1:]), pot(*STRINGS))
    assert problems == ["fuzzy translation of 'Meter'"]


def test_a_lost_placeholder_fails():
    lost = (STRINGS[1], "%(meter)s 已拉闸：余额 %(amount)s。")
    template = ("Hello {{ object.name }}", "您好")
    problems = i18n_po.po_problems(po(GOOD[0], lost, template), pot(*STRINGS))
    assert problems == [
        "placeholder %(balance)s lost in the translation of "
        "'%(meter)s is cut: balance %(balance)s.'",
        "placeholder %(amount)s added to the translation of "
        "'%(meter)s is cut: balance %(balance)s.'",
        "placeholder {{ object.name }} lost in the translation of 'Hello {{ object.name }}'",
    ]


def test_a_string_left_out_of_the_pot_fails():
    extra = ("Water meter", "水表")
    problems = i18n_po.po_problems(po(*GOOD, extra), pot(*STRINGS))
    assert problems == ["string not in the .pot (run msgmerge): 'Water meter'"]


def test_placeholders_are_counted_and_percent_signs_are_not_one():
    assert i18n_po.placeholders("%s of %s at 5%% (%(rate).2f)") == {"%s": 2, "%(rate).2f": 1}


def test_msgfmt_complaints_are_reported(tmp_path):
    broken = tmp_path / "zh_CN.po"
    broken.write_text(po(("Meter", "电表\\n")), encoding="utf-8")
    problems = i18n_po.msgfmt_problems(broken)
    assert problems[0].endswith(
        "zh_CN.po:17: 'msgid' and 'msgstr' entries do not both end with '\\n'"
    )
    assert problems[1:] == ["msgfmt: msgfmt: found 1 fatal error"]
    broken.write_text(po(("Meter", "电表")), encoding="utf-8")
    assert i18n_po.msgfmt_problems(broken) == []


def test_addon_problems_name_the_file_at_fault(tmp_path):
    addon = tmp_path / "prepaid_meter"
    (addon / "i18n").mkdir(parents=True)
    (addon / "i18n" / "prepaid_meter.pot").write_text(pot(*STRINGS), encoding="utf-8")
    (addon / "i18n" / "zh_CN.po").write_text(po(*GOOD[:2]), encoding="utf-8")
    exported = tmp_path / "prepaid_meter.pot"
    exported.write_text(pot(*STRINGS, "Water meter"), encoding="utf-8")
    assert i18n_po.addon_problems(addon, exported) == [
        "prepaid_meter/i18n/prepaid_meter.pot: "
        "new string, not in the committed .pot: 'Water meter'",
        "prepaid_meter/i18n/zh_CN.po: string of the .pot not in the .po: 'Hello {{ object.name }}'",
    ]
