"""The checks of the translation files: a committed ``.pot`` against a fresh export by Odoo,
and each add-on's ``zh_CN.po`` against its ``.pot`` (same strings, none empty or fuzzy,
placeholders kept, ``msgfmt -c --check-format`` clean).

Used by ``scripts/i18n.sh``; every check returns the problems found as sentences naming
the string, so a failed check says what to fix.

    python3 scripts/i18n_po.py check|update ROOT EXPORT_DIR
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib

LANGUAGES = ("zh_CN",)
# Header lines that change with every export and say nothing about the strings.
VOLATILE_HEADER = re.compile(r'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"$')
# printf placeholders (``%s``, ``%(amount)s``, ``%d``) and inline-template expressions
# (``{{ object.name }}``): a translation must keep every one of them.
PLACEHOLDER = re.compile(
    r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-+ #0]*\d*(?:\.\d+)?[sdfirx]|\{\{.*?\}\}"
)
SHOWN = 60


def shown(msgid: str) -> str:
    """A string as a message quotes it: on one line; a long one by its beginning and its end
    (where an edited template usually differs)."""
    text = " ".join(msgid.split())
    if len(text) > 2 * SHOWN:
        text = f"{text[:SHOWN]}…{text[-SHOWN:]}"
    return repr(text)


def placeholders(text: str) -> Counter:
    """The placeholders of ``text``, counted (``%%`` is a literal percent sign, not one)."""
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


def _entries(po: polib.POFile) -> dict[tuple[str | None, str], polib.POEntry]:
    return {(e.msgctxt, e.msgid): e for e in po if e.msgid and not e.obsolete}


def _parse(text: str) -> polib.POFile:
    return polib.pofile(text)


def pot_differences(committed: str, exported: str) -> list[str]:
    """What a fresh export changes in the committed ``.pot``, the creation and revision dates
    of the header aside: strings added or gone, else the lines that differ."""
    old, new = _entries(_parse(committed)), _entries(_parse(exported))
    problems = [
        f"new string, not in the committed .pot: {shown(k[1])}" for k in new if k not in old
    ]
    problems += [f"string no longer in the code: {shown(k[1])}" for k in old if k not in new]
    if problems:
        return problems
    old_lines = [line for line in committed.splitlines() if not VOLATILE_HEADER.match(line)]
    new_lines = [line for line in exported.splitlines() if not VOLATILE_HEADER.match(line)]
    diff = list(
        difflib.unified_diff(old_lines, new_lines, "committed", "exported", lineterm="", n=1)
    )
    return [f"the .pot differs from a fresh export:\n  {chr(10).join(diff[:40])}"] if diff else []


def _entry_problems(entry: polib.POEntry) -> list[str]:
    where = shown(entry.msgid)
    if "fuzzy" in entry.flags:
        return [f"fuzzy translation of {where}"]
    if not entry.msgstr.strip():
        return [f"empty translation of {where}"]
    lost = placeholders(entry.msgid) - placeholders(entry.msgstr)
    added = placeholders(entry.msgstr) - placeholders(entry.msgid)
    problems = [f"placeholder {p} lost in the translation of {where}" for p in sorted(lost)]
    return problems + [
        f"placeholder {p} added to the translation of {where}" for p in sorted(added)
    ]


def po_problems(po_text: str, pot_text: str) -> list[str]:
    """What keeps a ``.po`` from being complete for its ``.pot``: strings missing or not in
    the ``.pot``, empty or fuzzy translations, placeholders lost or added."""
    po, pot = _entries(_parse(po_text)), _entries(_parse(pot_text))
    problems = [f"string of the .pot not in the .po: {shown(k[1])}" for k in pot if k not in po]
    problems += [
        f"string not in the .pot (run msgmerge): {shown(k[1])}" for k in po if k not in pot
    ]
    for key, entry in po.items():
        if key in pot:
            problems += _entry_problems(entry)
    return problems


def msgfmt_problems(path: Path) -> list[str]:
    """``msgfmt -c --check-format``'s errors in a ``.po`` file, one per line (its warnings, such
    as a header field left out, do not fail the file)."""
    if shutil.which("msgfmt") is None:
        return ["msgfmt not found: install GNU gettext (Debian: gettext)"]
    done = subprocess.run(
        ["msgfmt", "-c", "--check-format", "-o", "/dev/null", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return []
    errors = [
        line for line in done.stderr.splitlines() if line.strip() and ": warning: " not in line
    ]
    return [f"msgfmt: {line}" for line in errors] or ["msgfmt failed"]


def addon_problems(addon_dir: Path, exported_pot: Path) -> list[str]:
    """Every problem of one add-on's translation files, each prefixed by the file at fault."""
    name = addon_dir.name
    pot_path = addon_dir / "i18n" / f"{name}.pot"
    if not pot_path.exists():
        return [f"{name}/i18n/{name}.pot: missing (run scripts/i18n.sh export)"]
    pot_text = pot_path.read_text(encoding="utf-8")
    problems = [
        f"{name}/i18n/{name}.pot: {p}"
        for p in pot_differences(pot_text, exported_pot.read_text(encoding="utf-8"))
    ]
    for lang in LANGUAGES:
        po_path = addon_dir / "i18n" / f"{lang}.po"
        if po_path.exists():
            found = po_problems(po_path.read_text(encoding="utf-8"), pot_text) + msgfmt_problems(
                po_path
            )
            problems += [f"{name}/i18n/{lang}.po: {p}" for p in found]
    return problems


def update(root: Path, exported: Path) -> None:
    """Copy each exported ``.pot`` over the committed one, unless only its dates changed."""
    for pot in sorted(exported.glob("*.pot")):
        target = root / "addons" / pot.stem / "i18n" / pot.name
        text = pot.read_text(encoding="utf-8")
        same = target.exists() and not pot_differences(target.read_text(encoding="utf-8"), text)
        if not same:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
        print(f"{pot.stem}: {'unchanged' if same else 'rewritten'}")


def check(root: Path, exported: Path) -> bool:
    """Print each add-on's problems; whether there were none."""
    failed = False
    for pot in sorted(exported.glob("*.pot")):
        problems = addon_problems(root / "addons" / pot.stem, pot)
        failed = failed or bool(problems)
        print(f"{pot.stem}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  {problem}")
    if failed:
        print("To fix: scripts/i18n.sh export, then msgmerge each .po (see CONTRIBUTING.md).")
    return not failed


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("check", "update"):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    root, exported = Path(argv[2]), Path(argv[3])
    if argv[1] == "update":
        update(root, exported)
        return 0
    return 0 if check(root, exported) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
