"""G2/X1 register maps as data: the plain (JSON) form and its checks, and every shipped map
read by the driver from pymodbus's own server (not the project's simulator)."""

import json
import struct
from dataclasses import replace
from decimal import Decimal

import pytest

from prepaid_core.buses import modbus_tcp
from prepaid_core.buses.common import LinkSettings, MeterJob
from prepaid_core.protocols import modbus
from prepaid_core.protocols.modbus_maps import REGISTER_MAPS
from prepaid_core.protocols.modbus_registers import (
    MEASURES,
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


def _read_all(regmap, values, served=None):
    """``regmap`` read (and polled) from pymodbus serving ``values`` by ``served``."""
    server = PymodbusMeter(UNIT, served or regmap, values).start()
    try:
        settings = LinkSettings(host="127.0.0.1", port=server.port, timeout=1.0, retries=0)
        job = MeterJob(1, "", unit_id=UNIT, register_map=regmap)
        with modbus_tcp.Link(settings) as link:
            read = link.read_values(job, (served or regmap).names)
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


def _float_words(value: float) -> tuple[int, int]:
    """A float32 as a meter sends it, high word first (laid out by struct, not the codec)."""
    return struct.unpack(">HH", struct.pack(">f", value))


# Registers as the cited table (or the cited driver's own example) shows them, and the
# engineering value they stand for: each map's scale and word order against its source.
DATASHEET_READINGS = [
    # Tasmota xnrg_11_ddsu666.ino, example reply "43 66 33 34 = 230.2 Volt"; power in kW
    ("chint_ddsu666", "voltage", (0x4366, 0x3334), Decimal("230.2")),
    ("chint_ddsu666", "active_power", _float_words(-0.1963), Decimal("-0.1963")),
    # DTSU666 floats count 0.1 V, 0.001 A, 0.1 W, 0.001 and 0.01 Hz; energies in kWh
    ("chint_dtsu666", "voltage_a", _float_words(2302.0), Decimal("230.2")),
    ("chint_dtsu666", "current_b", _float_words(1260.0), Decimal("1.26")),
    ("chint_dtsu666", "active_power", _float_words(-19630.0), Decimal("-1.963")),
    ("chint_dtsu666", "power_factor", _float_words(910.0), Decimal("0.91")),
    ("chint_dtsu666", "frequency", _float_words(4998.0), Decimal("49.98")),
    ("chint_dtsu666", "import_energy", _float_words(478.49), Decimal("478.49")),
    # DDSY1352: UINT32 x 0.01 kWh (100001), UINT16 x 0.1 V, INT16 x 0.001 kW (-439)
    ("acrel_ddsy1352", "total_energy", (0x0001, 0x86A1), Decimal("1000.01")),
    ("acrel_ddsy1352", "voltage", (2201,), Decimal("220.1")),
    ("acrel_ddsy1352", "active_power", (0xFE49,), Decimal("-0.439")),
    ("acrel_ddsy1352", "power_factor", (0xFC7C,), Decimal("-0.9")),
    # Eastron: power in W, read as kW
    ("eastron_sdm230", "active_power", _float_words(1500.0), Decimal("1.5")),
    ("eastron_sdm72dm_v2", "active_power", _float_words(-2250.0), Decimal("-2.25")),
    ("eastron_sdm72dm_v2", "import_energy", _float_words(12.5), Decimal("12.5")),
]


@pytest.mark.parametrize(("name", "measure", "words", "expected"), DATASHEET_READINGS)
def test_datasheet_registers_read_as_their_value(name, measure, words, expected):
    regmap = REGISTER_MAPS[name]
    field = regmap[measure]
    raw = replace(field, type="uint16" if len(words) == 1 else "uint32", scale=Decimal(1))
    served = modbus.RegisterMap("raw", (raw,))
    value = int.from_bytes(struct.pack(f">{len(words)}H", *words), "big")
    read, _ = _read_all(regmap, {measure: value}, served)
    assert read == {measure: expected}


@pytest.mark.parametrize("name", sorted(REGISTER_MAPS))
def test_shipped_fields_take_their_measures_ct_pt_rule(name):
    """The rule a map built from its plain form (Odoo's records) gives every measure."""
    fields = REGISTER_MAPS[name].fields
    assert {f.name: f.apply for f in fields} == {f.name: MEASURES[f.name] for f in fields}


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
