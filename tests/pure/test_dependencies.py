"""Every add-on declares in its manifest's ``external_dependencies`` the Python
distributions its code loads, directly or through the ``prepaid_core`` modules it imports,
and nothing else; ``pyproject.toml`` lists those of ``prepaid_core``.  Odoo checks each
declared name as a distribution (``importlib.metadata``) before loading an add-on, so a
server without one gets Odoo's message instead of an ImportError.

The imports are read from the source (module level: what runs when Odoo loads the
add-on; an import guarded by ``except ImportError`` is optional)."""

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADDONS = ("prepaid_meter", "prepaid_billing", "meter_gateway", "prepaid_portal")
OPTIONAL = {"ImportError", "ModuleNotFoundError"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _guards_import(node: ast.Try) -> bool:
    names = set()
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names |= {kind.id for kind in kinds if isinstance(kind, ast.Name)}
    return bool(names & OPTIONAL)


def module_level_imports(path: Path, package: str) -> set[str]:
    """Dotted names imported when the file at ``path`` (in ``package``) is loaded."""
    found = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.Try) and not _guards_import(node):
            body.extend(node.body)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def core_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party(names: set[str]) -> tuple[set[str], set[str]]:
    """(prepaid_core modules, other top-level packages) among ``names``, stdlib and Odoo
    left out."""
    core, others = set(), set()
    for name in names:
        top = name.split(".")[0]
        if top == "prepaid_core":
            core |= {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 2)}
        elif top not in sys.stdlib_module_names and top not in ("odoo", "__future__"):
            others.add(top)
    return {name for name in core if core_file(name)}, others


def core_closure(modules: set[str]) -> set[str]:
    """The third-party top-level packages loaded with the ``prepaid_core`` ``modules``."""
    seen, packages, todo = set(), set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = core_file(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        core, others = third_party(module_level_imports(path, package))
        packages |= others
        todo.extend(core - seen)
    return packages


def distributions(packages: set[str]) -> set[str]:
    """The installed distributions of top-level ``packages`` (unknown names left out)."""
    owners = importlib.metadata.packages_distributions()
    return {canonical(owners[package][0]) for package in packages if package in owners}


def addon_needs(addon: str) -> set[str]:
    core, direct = set(), set()
    for path in (ROOT / "addons" / addon).rglob("*.py"):
        if "tests" in path.relative_to(ROOT / "addons" / addon).parts:
            continue
        package = ".".join(("odoo.addons", *path.relative_to(ROOT / "addons").parent.parts))
        found_core, found = third_party(module_level_imports(path, package))
        core |= found_core
        direct |= found
    needs = distributions(direct | core_closure(core))
    return needs | ({"prepaid-core"} if core else set())


def declared(addon: str) -> list[str]:
    manifest = ast.literal_eval((ROOT / "addons" / addon / "__manifest__.py").read_text())
    return manifest.get("external_dependencies", {}).get("python", [])


@pytest.fixture(scope="module")
def odoo_provides():
    """Distributions the Odoo server loads when it starts (an add-on need not declare
    them): read from a fresh interpreter that imports it."""
    loaded = subprocess.run(
        [sys.executable, "-c", _ODOO_LOADS], capture_output=True, text=True, check=False
    )
    if loaded.returncode:
        pytest.skip("Odoo is not importable here")
    return distributions(set(loaded.stdout.split()))


_ODOO_LOADS = """
import sys
import odoo.http, odoo.service.server
print(*sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)))
"""


@pytest.mark.parametrize("addon", ADDONS)
def test_manifest_declares_what_the_addon_loads(addon, odoo_provides):
    needs = addon_needs(addon)
    names = {canonical(name) for name in declared(addon)}
    assert needs - odoo_provides <= names, f"{addon}: undeclared {needs - odoo_provides - names}"
    assert names <= needs, f"{addon}: declared, never imported: {names - needs}"


@pytest.mark.parametrize("addon", ADDONS)
def test_declared_names_are_installed_distributions(addon):
    """Odoo looks a name up as a distribution first (an import name only with a warning)."""
    for name in declared(addon):
        assert importlib.metadata.version(name)


def test_meter_gateway_loads_the_bus_and_codec_dependencies():
    assert {"prepaid-core", "pymodbus", "pyserial", "cryptography"} <= addon_needs("meter_gateway")


def test_pyproject_lists_what_prepaid_core_imports():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {
        canonical(re.split(r"[\s;<>=!~\[]", d, maxsplit=1)[0]) for d in project["dependencies"]
    }
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "prepaid_core").rglob("*.py")
    }
    assert listed == distributions(core_closure(modules))
