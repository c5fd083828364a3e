"""G2/X1 register maps as data: the plain (JSON) form and its checks, and every shipped map
read by the driver from pymodbus's own server (not the project's simulator)."""

import json
from decimal import Decimal

import pytest

from prepaid_core.buses import modbus_tcp
from prepaid_core.buses.common import LinkSettings, MeterJob
from prepaid_core.protocols import modbus
from prepaid_core.protocols.modbus_maps import REGISTER_MAPS
from prepaid_core.protocols.modbus_registers import (
    RegisterMapError,
    build_register_map,
    register_map_data,
)
from prepaid_core.simulator.modbus_reference import PymodbusMeter

UNIT = 17


def _line(**values):
    line = {"measure": "total_energy", "address": 0, "function": 3, "type": "uint32"}
    line.update(values)
    return line


def _map(*lines, **values):
    return {"name": "test_map", "registers": list(lines), **values}


def _sample(index: int, field: modbus.Field):
    """A value of ``field`` that its type holds exactly (index keeps them apart)."""
    if field.type == "coil":
        return Decimal(1)
    n = 7 * (index + 1)
    if field.type.startswith("bcd"):
        n = int(str(n) * 2)  # digits 0-9 only by construction
    elif field.type.startswith("int"):
        n = -n
    elif field.type == "float32":
        return Decimal(n) + Decimal("0.5")
    return n * field.scale


def _values(regmap):
    return {field.name: _sample(i, field) for i, field in enumerate(regmap.fields)}


def _read_all(regmap, values):
    server = PymodbusMeter(UNIT, regmap, values).start()
    try:
        settings = LinkSettings(host="127.0.0.1", port=server.port, timeout=1.0, retries=0)
        job = MeterJob(1, "", unit_id=UNIT, register_map=regmap)
        with modbus_tcp.Link(settings) as link:
            read = link.read_values(job, regmap.names)
        result = modbus_tcp.poll_bus(settings, [job])
    finally:
        server.stop()
    return read, result


@pytest.mark.parametrize("name", sorted(REGISTER_MAPS))
def test_every_shipped_map_reads_pymodbus_server(name):
    regmap = REGISTER_MAPS[name]
    values = _values(regmap)
    read, result = _read_all(regmap, values)
    for field in regmap.fields:
        assert read[field.name] == values[field.name] * field.multiplier(1, 1), field.name
    meter = result.meters[0]
    assert meter.ok, meter.error
    billing = "import_energy" if "import_energy" in regmap else "total_energy"
    assert meter.values["forward_total"] == values[billing]
    if "active_power" in regmap:
        assert meter.values["power"] == values["active_power"]


def test_orders_and_bcd_read_from_pymodbus_server():
    regmap = build_register_map(
        _map(
            _line(measure="total_energy", type="bcd32", scale="0.01"),
            _line(measure="import_energy", address=2, type="int32", word_order="little"),
            _line(measure="active_power", address=4, type="float32", byte_order="little"),
            _line(measure="voltage", address=6, type="bcd16", scale="0.1", function=4),
            _line(measure="relay_state", address=0, type="coil", function=1),
        )
    )
    values = {
        "total_energy": Decimal("123456.78"),
        "import_energy": Decimal(-70000),
        "active_power": Decimal("2.25"),
        "voltage": Decimal("230.5"),
        "relay_state": Decimal(1),
    }
    read, result = _read_all(regmap, values)
    assert read == values
    assert result.meters[0].values["forward_total"] == Decimal(-70000)
    assert result.meters[0].values["relay_state"] == "off"


@pytest.mark.parametrize("name", sorted(REGISTER_MAPS))
def test_plain_form_round_trips_through_json(name):
    data = register_map_data(REGISTER_MAPS[name])
    rebuilt = build_register_map(json.loads(json.dumps(data)))
    assert register_map_data(rebuilt) == data
    assert [(f.name, f.address, f.function, f.type, f.scale) for f in rebuilt.fields] == [
        (f.name, f.address, f.function, f.type, f.scale) for f in REGISTER_MAPS[name].fields
    ]


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (_map(_line(), _line(measure="voltage", address=1)), "voltage.address", "overlaps"),
        (_map(_line(type="u64")), "registers[0].type", "unknown type"),
        (_map(_line(scale="0")), "registers[0].scale", "scale"),
        (_map(_line(scale="abc")), "registers[0].scale", "not a number"),
        (_map(_line(measure="mood")), "registers[0].measure", "unknown measure"),
        (_map(_line(function=2)), "registers[0].function", "not 1, 3 or 4"),
        (_map(_line(address="0x10")), "registers[0].address", "not a register address"),
        (_map(_line(address=65535)), "registers[0].address", "not a register address"),
        (_map(_line(word_order="middle")), "registers[0].word_order", "big"),
        (_map(_line(type="coil")), "registers[0].type", "coil"),
        (_map(), "registers", "at least one"),
        (_map(_line(), max_registers=200), "max_registers", "1 to 125"),
        (_map(_line(), relay={"measure": "relay_control"}), "relay", "trip"),
        (
            _map(_line(), relay={"measure": "relay_control", "trip": 85, "close": 170}),
            "relay",
            "not in map",
        ),
        ([1, 2], "map", "object"),
    ],
)
def test_bad_map_names_the_field(data, field, words):
    with pytest.raises(RegisterMapError) as caught:
        build_register_map(data)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(field)


def test_tables_do_not_overlap_each_other():
    regmap = build_register_map(
        _map(
            _line(),
            _line(measure="import_energy", function=4),
            _line(measure="relay_coil", type="coil", function=1),
        )
    )
    assert [f.table for f in regmap.fields] == ["holding", "input", "coil"]


def test_unit_id_outside_1_to_247_is_refused():
    regmap = REGISTER_MAPS["eastron_sdm630"]
    for unit in (0, 248, -1):
        with pytest.raises(modbus.ModbusCodecError, match="unit"):
            modbus.build_read_requests(unit, regmap)


def test_register_map_accepts_name_plain_form_and_map():
    sdm = REGISTER_MAPS["eastron_sdm630"]
    assert modbus.register_map("eastron_sdm630") is sdm
    assert modbus.register_map(sdm) is sdm
    assert modbus.register_map(register_map_data(sdm)).names == sdm.names
    with pytest.raises(modbus.ModbusCodecError):
        modbus.register_map(None)
