"""The Chinese demo (``DEMO_LANG=zh_CN``) names what the English demo data create.

``scripts/demo_stack.py`` loads the add-ons' ``demo/zh_CN/`` files over the English demo
records and renames what ``prepaid.meter._demo_populate`` generates: every file it loads must
exist, every record it writes must be one the English demo data create (same model), every
site, building, floor, gateway, tariff, season and tenant of the English demo must get a
Chinese name, and the Chinese given and family names must pair with the English ones."""

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo_stack  # noqa: E402

ZH_CN = demo_stack.LOCALES["zh_CN"]
NAMED_MODELS = {
    "prepaid.site", "prepaid.building", "prepaid.floor", "prepaid.gateway", "prepaid.tariff",
    "prepaid.tariff.season", "res.partner", "res.company", "res.users",
}  # fmt: skip


def records(path: Path, module: str) -> dict[str, tuple[str, dict]]:
    """``{module.id: (model, {field: text})}`` of an Odoo data file."""
    found = {}
    for record in ET.parse(path).getroot().iter("record"):
        xmlid = record.get("id")
        xmlid = xmlid if "." in xmlid else f"{module}.{xmlid}"
        fields = {f.get("name"): (f.text or "").strip() for f in record.iter("field")}
        found[xmlid] = (record.get("model"), fields)
    return found


def english_demo() -> dict[str, tuple[str, dict]]:
    found = {}
    for manifest in (ROOT / "addons").glob("*/__manifest__.py"):
        addon = manifest.parent
        for path in ast.literal_eval(manifest.read_text()).get("demo", []):
            found.update(records(addon / path, addon.name))
    return found


def chinese(stage: str) -> dict[str, tuple[str, dict]]:
    found = {}
    for module, path in getattr(ZH_CN, stage):
        found.update(records(ROOT / "addons" / module / path, module))
    return found


@pytest.mark.parametrize("stage", ["before", "after"])
def test_the_files_exist(stage):
    for module, path in getattr(ZH_CN, stage):
        assert (ROOT / "addons" / module / path).is_file(), (module, path)


def test_the_chinese_names_are_written_on_english_demo_records():
    english = english_demo()
    for xmlid, (model, fields) in chinese("after").items():
        assert xmlid in english, f"{xmlid}: no such record in the English demo data"
        assert english[xmlid][0] == model, xmlid
        assert fields.get("name"), f"{xmlid}: no Chinese name"


def test_every_named_record_of_the_english_demo_gets_a_chinese_name():
    english, named = english_demo(), chinese("after")
    missing = [
        xmlid
        for xmlid, (model, fields) in english.items()
        if model in NAMED_MODELS and "name" in fields and not xmlid.startswith("base.")
        if xmlid not in named and not xmlid.startswith("prepaid_portal.")  # the tenant's user
    ]
    assert not missing, f"no Chinese name for {missing}"


def test_before_the_suite_only_base_records():
    """Loaded when only base is installed: nothing of the suite exists yet."""
    for xmlid, (model, _fields) in chinese("before").items():
        assert xmlid.startswith("base."), xmlid
        assert model in {"res.currency", "res.company", "res.users"}, xmlid


def demo_name_tuple(name: str) -> tuple[str, ...]:
    source = (ROOT / "addons/prepaid_meter/models/prepaid_meter.py").read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found")


def test_generated_names_pair_with_the_english_ones():
    assert len(ZH_CN.given_names) == len(demo_name_tuple("_DEMO_FIRST_NAMES"))
    assert len(ZH_CN.family_names) == len(demo_name_tuple("_DEMO_LAST_NAMES"))
    everyone = {f + g for f in ZH_CN.family_names for g in ZH_CN.given_names}
    assert len(everyone) == len(ZH_CN.family_names) * len(ZH_CN.given_names)  # no two alike


def test_an_unknown_language_is_refused():
    with pytest.raises(SystemExit):
        demo_stack.main(["--lang", "xx_XX"])
