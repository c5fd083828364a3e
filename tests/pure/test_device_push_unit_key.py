"""A Modbus meter addressed by its unit id alone is named in the device API by its unit
key (its bus number and unit id): made, read back, and taken as a reading's meter."""

import pytest

from prepaid_core import device_push as dp


def test_unit_key_names_the_bus_and_the_unit():
    assert dp.unit_key(3, 17) == "modbus:3:17"
    assert dp.parse_unit_key("modbus:3:17") == (3, 17)
    assert dp.parse_unit_key(dp.unit_key(12, 247)) == (12, 247)


@pytest.mark.parametrize(
    "name",
    [
        "000000000101",
        "modbus:3",
        "modbus:x:17",
        "modbus:3:17:1",
        "modbus:3:1000",
        " modbus:3:17",
        "MODBUS:3:17",
        None,
        17,
    ],
)
def test_an_address_or_anything_else_is_no_unit_key(name):
    assert dp.parse_unit_key(name) is None


def test_a_reading_named_by_a_unit_key_is_in_shape():
    readings = [
        {"address": "modbus:3:17", "read_at": "2026-03-02T00:00:00Z", "forward_total": "1"},
        {"address": "000000000101", "read_at": "2026-03-02T00:00:00Z", "forward_total": "2"},
    ]
    refused = []
    keys = frozenset({"address", "read_at", "forward_total"})
    good, addresses = dp.check_readings(readings, refused, keys)
    assert (good, refused) == ([0, 1], [])
    assert addresses == {"modbus:3:17", "000000000101"}
