"""X3: the demo data and the demo's simulator fleet describe the same site.

``scripts/demo_stack.py`` starts the fleet with fixed dimensions; the add-ons' demo data name
the meters by address.  Every meter in service must exist in the fleet (else it would never
answer), and the meters the stack loads heavily must be the ones whose tenants the demo data
leave with little credit."""

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo_stack  # noqa: E402

METER_DEMO = ROOT / "addons/prepaid_meter/demo/prepaid_meter_demo.xml"
BILLING_DEMO = ROOT / "addons/prepaid_billing/demo/prepaid_billing_demo.xml"


def fleet_addresses():
    tcp = {
        f"00{c:03d}{b:03d}{m:04d}"
        for c in range(1, demo_stack.COLLECTORS + 1)
        for b in range(1, demo_stack.BUSES + 1)
        for m in range(1, demo_stack.METERS_PER_BUS + 1)
    }
    return tcp | {f"9{n:011d}" for n in range(1, demo_stack.MQTT_METERS + 1)}


def demo_meters():
    """(address, in service) of every demo meter: the XML records and the generated ones."""
    root = ET.parse(METER_DEMO).getroot()
    meters = []
    for record in root.iter("record"):
        if record.get("model") != "prepaid.meter":
            continue
        values = {f.get("name"): (f.text or "").strip() for f in record.iter("field")}
        meters.append((values["address"], values.get("state") == "in_service"))
    for function in root.iter("function"):
        if function.get("name") == "_demo_populate":
            feeds = ET.tostring(function, encoding="unicode")
            for first, count in re.findall(r"'(\d{12})', (\d+),", feeds):
                meters += [(f"{int(first) + i:012d}", True) for i in range(int(count))]
    return meters


def test_every_meter_in_service_is_in_the_fleet():
    meters = demo_meters()
    addresses = [address for address, _ in meters]
    assert len(addresses) == len(set(addresses)), "an address is used twice"
    in_service = [address for address, active in meters if active]
    assert len(in_service) >= 200
    assert set(in_service) <= fleet_addresses()
    # spares (draft) are not wired to anything
    assert not {a for a, active in meters if not active} & fleet_addresses()


def test_bus_ports_follow_the_fleet_layout():
    """Demo buses carry the ports of a fleet started at port 9100 (the stack re-binds them
    to its own base port at start, from their meters' addresses)."""
    root = ET.parse(METER_DEMO).getroot()
    letters = {"a": 1, "b": 2, "c": 3, "d": 4}
    buses = 0
    for record in root.iter("record"):
        if record.get("model") != "prepaid.gateway.bus":
            continue
        values = {f.get("name"): (f.text or "").strip() for f in record.iter("field")}
        collector = letters[record.get("id")[len("demo_bus_")]]
        bus = int(values["number"])
        assert int(values["port"]) == 9100 + (collector - 1) * demo_stack.BUSES + bus - 1
        assert (values["protocol"] == "modbus_rtu") == (bus == demo_stack.BUSES)
        buses += 1
    assert buses == demo_stack.COLLECTORS * demo_stack.BUSES


def test_heavy_loads_are_the_low_credit_stories():
    stories = set(re.findall(r"\('(\d{12})', '[\d.]+', (?:\d+|None)\)", BILLING_DEMO.read_text()))
    assert stories == set(demo_stack.HEAVY_LOADS)
    assert demo_stack.STORY_METER in stories
    assert set(demo_stack.HEAVY_LOADS) <= fleet_addresses()


def test_the_database_is_upgraded_when_the_addons_code_changed():
    """Running the demo again keeps the data; when a pull (or an edit) changed the add-ons
    since the database was last brought up to them, they are upgraded first -- else Odoo
    serves new code on an old schema and stops at the first missing column."""
    plan = demo_stack.database_plan
    suite = list(demo_stack.ADDONS)
    assert plan(False, (), None, "abc")[0] == ["-i", ",".join(suite), "--with-demo"]
    assert plan(True, suite, "abc", "abc") == (
        [],
        "The database exists and is up to date: keeping its data",
    )
    args, message = plan(True, suite, "abc", "def")
    assert args == ["-u", ",".join(suite)]
    assert "their code changed" in message and "the data are kept" in message
    # a database of an earlier script (no digest recorded): upgraded once
    assert plan(True, suite, "", "def")[0] == ["-u", ",".join(suite)]
    # asked for (DEMO_UPDATE=1) although nothing changed
    assert plan(True, suite, "abc", "abc", update=True)[0] == ["-u", ",".join(suite)]
    # an add-on new to the suite: installed, the others upgraded in the same run
    args, _message = plan(True, suite[1:], "abc", "def")
    assert args == ["-i", suite[0], "-u", ",".join(suite[1:])]
    assert plan(True, suite[1:], "abc", "abc")[0] == ["-i", suite[0]]


def test_the_addons_fingerprint_follows_their_files(tmp_path):
    root = tmp_path / "addons"
    (root / "prepaid_x" / "models").mkdir(parents=True)
    model = root / "prepaid_x" / "models" / "x.py"
    model.write_text("A = 1\n")
    (root / "prepaid_x" / "__manifest__.py").write_text("{'version': '19.0.1.0.0'}\n")
    first = demo_stack.addons_fingerprint(root)
    assert first == demo_stack.addons_fingerprint(root)
    # compiled files are not the code
    (root / "prepaid_x" / "models" / "__pycache__").mkdir()
    (root / "prepaid_x" / "models" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert demo_stack.addons_fingerprint(root) == first
    model.write_text("A = 2\n")
    changed = demo_stack.addons_fingerprint(root)
    assert changed != first
    # a file moved is a change too
    model.rename(root / "prepaid_x" / "models" / "y.py")
    assert demo_stack.addons_fingerprint(root) not in (first, changed)
