"""The register maps shipped with the project (G2): data only, written with the types of
``modbus_registers`` (see ``modbus`` for the columns).

``REGISTER_MAPS`` maps a model name to its ``RegisterMap``.  The meter_gateway add-on loads
them as register map records (editable, exported and imported as JSON), so a new meter
brand needs no code: add its map in the backend, or here to ship it.

- ``acrel_prepaid_1p``: an Acrel-style single-phase prepaid meter (DDSY-type) laid out as
  in the vendor family's manuals: energies UINT32 x 0.01 kWh from 0000H (total, then
  sharp/peak/flat/valley), voltage x 0.1 V, current x 0.01 A, power x 0.001 kW, power factor
  x 0.001, remaining balance, relay state and a relay control register.  Register addresses
  past 0000H differ between firmware versions: check the manual of the meter at hand and
  copy this map under a new model name when they do.  Values are secondary-side; CT/PT
  multipliers turn them into primary-side values (``apply``).
- ``acrel_prepaid_3p``: the same layout with three phases (voltage/current per phase).
- ``eastron_sdm120``: Eastron SDM120-style meter, IEEE-754 float32 input registers, no
  prepaid logic (energy-only sub-meter).
- ``eastron_sdm630``: Eastron SDM630 three-phase sub-meter, float32 input registers (04H),
  high word first; energies in kWh, power in W.  Source: Eastron "SDM630 Modbus Protocol"
  input register table (30001 = address 0000H), as transcribed in the public
  merlokk/SmartHome ``lib/eastron.h`` and ilseh/Oppleo ``SDM360v2.py`` register tables.
- ``acrel_adl3000_e``: Acrel ADL3000-E three-phase meter, energy registers only: UINT32
  x 0.01 kWh (x PT x CT) read with 03H from 0000H.  Source: Acrel "ADL3000-E-A
  installation and operation manual" V1.1, section 9.1 "ADDR list" (published page by
  page at easymanua.ls/acrel/adl3000-e/manual?p=14).  Its voltage, current and power
  registers are left out: their scale could not be read from the published pages.
"""

from __future__ import annotations

from decimal import Decimal

from prepaid_core.protocols.modbus_registers import Field, RegisterMap, RelayControl

_E = Decimal("0.01")  # energy kWh
_V = Decimal("0.1")
_A = Decimal("0.01")
_KW = Decimal("0.001")
_PF = Decimal("0.001")
_HZ = Decimal("0.01")
_YUAN = Decimal("0.01")

_ENERGY = (
    Field("total_energy", 0x0000, "uint32", _E, "kWh", apply="ctpt"),
    Field("sharp_energy", 0x0002, "uint32", _E, "kWh", apply="ctpt"),
    Field("peak_energy", 0x0004, "uint32", _E, "kWh", apply="ctpt"),
    Field("flat_energy", 0x0006, "uint32", _E, "kWh", apply="ctpt"),
    Field("valley_energy", 0x0008, "uint32", _E, "kWh", apply="ctpt"),
)

_PREPAID = (
    # balance < 0 means overdraft
    Field("remaining_balance", 0x0020, "int32", _YUAN, "yuan"),
    Field("purchase_count", 0x0022, "uint16"),
    Field("cumulative_purchase", 0x0023, "uint32", _YUAN, "yuan"),
    Field("alarm_amount_1", 0x0025, "uint32", _YUAN, "yuan", writable=True),
    Field("alarm_amount_2", 0x0027, "uint32", _YUAN, "yuan", writable=True),
    Field("overdraft_limit", 0x0029, "uint32", _YUAN, "yuan", writable=True),
    Field("price", 0x002B, "uint32", Decimal("0.0001"), "yuan/kWh", writable=True),
    # 0 = closed (supply on), 1 = open (supply off)
    Field("relay_state", 0x0030, "uint16"),
    # write 0x0055 trip, 0x00AA close
    Field("relay_control", 0x0031, "uint16", writable=True),
    Field("ct_ratio", 0x0040, "uint16", writable=True),
    Field("pt_ratio", 0x0041, "uint16", writable=True),
    # relay output as a coil as well (ON = open/trip)
    Field("relay_coil", 0x0000, "coil", table="coil", writable=True),
)

_RELAY = RelayControl("relay_control", trip_value=0x0055, close_value=0x00AA)

ACREL_PREPAID_1P = RegisterMap(
    model="acrel_prepaid_1p",
    description="Acrel-style single-phase prepaid meter (DDSY family layout)",
    fields=(
        *_ENERGY,
        Field("voltage", 0x000A, "uint16", _V, "V", apply="pt"),
        Field("current", 0x000B, "uint16", _A, "A", apply="ct"),
        Field("active_power", 0x000C, "int16", _KW, "kW", apply="ctpt"),
        Field("power_factor", 0x000D, "int16", _PF),
        Field("frequency", 0x000E, "uint16", _HZ, "Hz"),
        *_PREPAID,
    ),
    max_registers=64,
    relay=_RELAY,
)

ACREL_PREPAID_3P = RegisterMap(
    model="acrel_prepaid_3p",
    description="Acrel-style three-phase prepaid meter",
    fields=(
        *_ENERGY,
        Field("voltage_a", 0x000A, "uint16", _V, "V", apply="pt"),
        Field("voltage_b", 0x000B, "uint16", _V, "V", apply="pt"),
        Field("voltage_c", 0x000C, "uint16", _V, "V", apply="pt"),
        Field("current_a", 0x000D, "uint16", _A, "A", apply="ct"),
        Field("current_b", 0x000E, "uint16", _A, "A", apply="ct"),
        Field("current_c", 0x000F, "uint16", _A, "A", apply="ct"),
        Field("active_power", 0x0010, "int32", _KW, "kW", apply="ctpt"),
        Field("power_factor", 0x0012, "int16", _PF),
        Field("frequency", 0x0013, "uint16", _HZ, "Hz"),
        *_PREPAID,
    ),
    max_registers=64,
    relay=_RELAY,
)

EASTRON_SDM120 = RegisterMap(
    model="eastron_sdm120",
    description="Eastron SDM120-style meter, float32 input registers, high word first",
    fields=(
        Field("voltage", 0x0000, "float32", unit="V", table="input"),
        Field("current", 0x0006, "float32", unit="A", table="input"),
        Field("active_power", 0x000C, "float32", Decimal("0.001"), "kW", table="input"),
        Field("power_factor", 0x001E, "float32", table="input"),
        Field("frequency", 0x0046, "float32", unit="Hz", table="input"),
        Field("import_energy", 0x0048, "float32", unit="kWh", table="input"),
        Field("export_energy", 0x004A, "float32", unit="kWh", table="input"),
        Field("total_energy", 0x0156, "float32", unit="kWh", table="input"),
    ),
    max_registers=80,
    source='Eastron "SDM120 Modbus Protocol" (input registers 30001-30343)',
)

# Eastron "SDM630 Modbus Protocol", input registers (30001 = 0000H): see the docstring
EASTRON_SDM630 = RegisterMap(
    model="eastron_sdm630",
    description="Eastron SDM630 three-phase meter, float32 input registers, high word first",
    fields=(
        Field("voltage_a", 0x0000, "float32", unit="V", table="input", apply="pt"),
        Field("voltage_b", 0x0002, "float32", unit="V", table="input", apply="pt"),
        Field("voltage_c", 0x0004, "float32", unit="V", table="input", apply="pt"),
        Field("current_a", 0x0006, "float32", unit="A", table="input", apply="ct"),
        Field("current_b", 0x0008, "float32", unit="A", table="input", apply="ct"),
        Field("current_c", 0x000A, "float32", unit="A", table="input", apply="ct"),
        Field("active_power_a", 0x000C, "float32", _KW, "kW", table="input", apply="ctpt"),
        Field("active_power_b", 0x000E, "float32", _KW, "kW", table="input", apply="ctpt"),
        Field("active_power_c", 0x0010, "float32", _KW, "kW", table="input", apply="ctpt"),
        Field("active_power", 0x0034, "float32", _KW, "kW", table="input", apply="ctpt"),
        Field("power_factor", 0x003E, "float32", table="input"),
        Field("frequency", 0x0046, "float32", unit="Hz", table="input"),
        Field("import_energy", 0x0048, "float32", unit="kWh", table="input", apply="ctpt"),
        Field("export_energy", 0x004A, "float32", unit="kWh", table="input", apply="ctpt"),
        Field("total_energy", 0x0156, "float32", unit="kWh", table="input", apply="ctpt"),
    ),
    max_registers=80,
    source='Eastron "SDM630 Modbus Protocol" (input registers 30001-30343)',
)

# Acrel "ADL3000-E-A" manual V1.1, 9.1 ADDR list: see the docstring
ACREL_ADL3000_E = RegisterMap(
    model="acrel_adl3000_e",
    description="Acrel ADL3000-E three-phase meter (energy registers)",
    fields=(
        *_ENERGY,  # 0000H-0008H: total, then sharp/peak/flat/valley, as the list gives them
        Field("import_energy", 0x000A, "uint32", _E, "kWh", apply="ctpt"),
        Field("export_energy", 0x0014, "uint32", _E, "kWh", apply="ctpt"),
    ),
    source='Acrel "ADL3000-E-A installation and operation manual" V1.1, 9.1 ADDR list',
)

REGISTER_MAPS: dict[str, RegisterMap] = {
    m.model: m
    for m in (
        ACREL_PREPAID_1P,
        ACREL_PREPAID_3P,
        EASTRON_SDM120,
        EASTRON_SDM630,
        ACREL_ADL3000_E,
    )
}
