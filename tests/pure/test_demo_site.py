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
