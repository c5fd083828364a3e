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
- ``eastron_sdm230``, ``eastron_sdm72dm_v2``, ``chint_ddsu666``, ``chint_dtsu666``,
  ``acrel_ddsy1352``: see the comment above each map for its source, function code and the
  type, word order and scale of every register.  Only registers that a cited table gives
  are mapped; where sources disagree the comment names each one.
"""

from __future__ import annotations

from decimal import Decimal

from prepaid_core.protocols.modbus_registers import MEASURES, Field, RegisterMap, RelayControl

_E = Decimal("0.01")  # energy kWh
_V = Decimal("0.1")
_A = Decimal("0.01")
_KW = Decimal("0.001")
_PF = Decimal("0.001")
_HZ = Decimal("0.01")
_MA = Decimal("0.001")  # current in mA, read as A
_DW = Decimal("0.0001")  # power in 0.1 W, read as kW
_YUAN = Decimal("0.01")
_ONE = Decimal(1)


def _float(name: str, address: int, unit: str = "", scale=_ONE, table="holding") -> Field:
    """An IEEE-754 float32 register, high word first (ABCD), with its measure's CT/PT rule."""
    return Field(name, address, "float32", scale, unit, table=table, apply=MEASURES[name])


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

# The input registers (04H) Eastron's SDM meters share: float32, high word first, in V, A,
# W (x 0.001 = kW), Hz and kWh; 30001 is address 0000H.
_EASTRON_1P = (
    _float("voltage", 0x0000, "V", table="input"),
    _float("current", 0x0006, "A", table="input"),
    _float("active_power", 0x000C, "kW", _KW, table="input"),
    _float("power_factor", 0x001E, table="input"),
    _float("frequency", 0x0046, "Hz", table="input"),
    _float("import_energy", 0x0048, "kWh", table="input"),
    _float("export_energy", 0x004A, "kWh", table="input"),
    _float("total_energy", 0x0156, "kWh", table="input"),
)
_EASTRON_3P = (
    _float("voltage_a", 0x0000, "V", table="input"),
    _float("voltage_b", 0x0002, "V", table="input"),
    _float("voltage_c", 0x0004, "V", table="input"),
    _float("current_a", 0x0006, "A", table="input"),
    _float("current_b", 0x0008, "A", table="input"),
    _float("current_c", 0x000A, "A", table="input"),
    _float("active_power_a", 0x000C, "kW", _KW, table="input"),
    _float("active_power_b", 0x000E, "kW", _KW, table="input"),
    _float("active_power_c", 0x0010, "kW", _KW, table="input"),
    _float("active_power", 0x0034, "kW", _KW, table="input"),
    _float("power_factor", 0x003E, table="input"),
    _float("frequency", 0x0046, "Hz", table="input"),
    _float("import_energy", 0x0048, "kWh", table="input"),
    _float("export_energy", 0x004A, "kWh", table="input"),
    _float("total_energy", 0x0156, "kWh", table="input"),
)

EASTRON_SDM120 = RegisterMap(
    model="eastron_sdm120",
    description="Eastron SDM120-style meter, float32 input registers, high word first",
    fields=_EASTRON_1P,
    max_registers=80,
    source='Eastron "SDM120 Modbus Protocol" (input registers 30001-30343)',
)

# Eastron "SDM630 Modbus Protocol", input registers (30001 = 0000H): see the docstring
EASTRON_SDM630 = RegisterMap(
    model="eastron_sdm630",
    description="Eastron SDM630 three-phase meter, float32 input registers, high word first",
    fields=_EASTRON_3P,
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

# Eastron SDM230 (single phase): the registers of ``_EASTRON_1P``, every one as listed in
# volkszaehler/mbmd meters/rs485/sdm230.go ("Opcodes as defined by Eastron SDM230",
# bg-etech.de SDM230-register.pdf), read there with 04H as float32, unscaled.
EASTRON_SDM230 = RegisterMap(
    model="eastron_sdm230",
    description="Eastron SDM230 single-phase meter, float32 input registers, high word first",
    fields=_EASTRON_1P,
    max_registers=80,
    source="Eastron SDM230 Modbus register list, as in volkszaehler/mbmd meters/rs485/sdm230.go",
)

# Eastron SDM72D-M v2 (three phase): the registers of ``_EASTRON_3P``, every one as listed
# in volkszaehler/mbmd meters/rs485/sdm72v2.go ("Opcodes as defined by Eastron SDM72DMv2",
# stromzaehler.eu sdm72dm-v2.pdf), read there with 04H as float32, unscaled; the same
# addresses and function in ConsolinnoEnergy/nymea-plugins-modbus bgetech/sdm72-registers
# .json.  (mbmd's map of the first SDM72D reads only power and energies there.)
EASTRON_SDM72DM_V2 = RegisterMap(
    model="eastron_sdm72dm_v2",
    description="Eastron SDM72D-M v2 three-phase meter, float32 input registers",
    fields=_EASTRON_3P,
    max_registers=80,
    source="Eastron SDM72D-M v2 register list, as in volkszaehler/mbmd meters/rs485/sdm72v2.go",
)

# CHINT DDSU666 (single phase): holding registers (03H), float32 high word first (ABCD), in
# V, A, kW, Hz, kWh, unscaled.  Sources: OpenEMS/openems io.openems.edge.meter.chint
# ddsu666/MeterChintDdsu666Impl.java (FC3ReadRegistersTask: 2000H voltage, 2002H current,
# 2004H power in kW, 200EH frequency, 4000H import energy in kWh, word order MSWLSW,
# big endian) and arendst/Tasmota tasmota_xnrg_energy/xnrg_11_ddsu666.ino (the same
# addresses and units, plus 200AH power factor and 400AH export energy, read there with
# 04H).  03H is the read command CHINT's DTSU666/DSSU666 manual (ZTY0.464.1448, 5.3)
# gives for the 666 series; the DDSU666 manual itself could not be read.
CHINT_DDSU666 = RegisterMap(
    model="chint_ddsu666",
    description="CHINT DDSU666 single-phase meter, float32 holding registers",
    fields=(
        _float("voltage", 0x2000, "V"),
        _float("current", 0x2002, "A"),
        _float("active_power", 0x2004, "kW"),
        _float("power_factor", 0x200A),
        _float("frequency", 0x200E, "Hz"),
        _float("import_energy", 0x4000, "kWh"),
        _float("export_energy", 0x400A, "kWh"),
    ),
    source="OpenEMS io.openems.edge.meter.chint ddsu666; Tasmota xnrg_11_ddsu666.ino",
)

# CHINT DTSU666 (three phase, 4 wire): holding registers (03H), float32 high word first.
# Source: volkszaehler/mbmd meters/rs485/dtsu666.go, from CHINT's "DTSU666 DSSU666 User
# Manual" (chintglobal.com): phase voltages 2006H-200AH x 0.1 V, currents 200CH-2010H
# x 0.001 A, powers 2012H (total) and 2014H-2018H x 0.1 W (= 0.0001 kW), power factor
# 202AH x 0.001, frequency 2044H x 0.01 Hz, energies 101EH (ImpEp, forward) and 1028H
# (ExpEp, reverse) in kWh.  ConsolinnoEnergy/nymea-plugins-modbus chint/dtsu666-registers
# .json reads the same addresses with 03H and scales them by the meter's own CT/PT ratios
# (0006H/0007H): the values are secondary-side.  Other public tables give the energies at
# 401EH/4028H (aggsoft's DTSU666 list) or 4000H read with 04H (OpenEMS meter.chint
# dtsu666); meters answering there need a copy of this map with those addresses.
CHINT_DTSU666 = RegisterMap(
    model="chint_dtsu666",
    description="CHINT DTSU666 three-phase meter, float32 holding registers (energy at 101EH)",
    fields=(
        _float("import_energy", 0x101E, "kWh"),
        _float("export_energy", 0x1028, "kWh"),
        _float("voltage_a", 0x2006, "V", _V),
        _float("voltage_b", 0x2008, "V", _V),
        _float("voltage_c", 0x200A, "V", _V),
        _float("current_a", 0x200C, "A", _MA),
        _float("current_b", 0x200E, "A", _MA),
        _float("current_c", 0x2010, "A", _MA),
        _float("active_power", 0x2012, "kW", _DW),
        _float("active_power_a", 0x2014, "kW", _DW),
        _float("active_power_b", 0x2016, "kW", _DW),
        _float("active_power_c", 0x2018, "kW", _DW),
        _float("power_factor", 0x202A, scale=_PF),
        _float("frequency", 0x2044, "Hz", _HZ),
    ),
    source='CHINT "DTSU666 DSSU666 User Manual", as in volkszaehler/mbmd meters/rs485/dtsu666.go',
)

# Acrel DDSY1352 single-phase (wireless) prepaid meter: Acrel "DDSY1352/DTSY1352 Operation
# Manual" T1.0 (2021-06-25), 8.1 "DDSY1352 communication address table" (published page by
# page at manualshive.com/en/manual/acrel/ddsy1352/2841079?page=15).  Holding registers,
# read with 03H (the table has R/W entries; 03H is Acrel's read command, as in the
# ADL3000-E list), big-endian words: energies UINT32 x 0.01 kWh from 0000H (total, sharp,
# peak, flat, valley), 000BH voltage UINT16 x 0.1 V, 000CH current UINT16 x 0.01 A, 000DH
# active power INT16 x 0.001 kW, 0010H power factor INT16 x 0.001.  The table goes on past
# 0010H on pages that could not be read: nothing past 0010H is mapped.  Note the voltage at
# 000BH, where ``acrel_prepaid_1p`` has 000AH.
ACREL_DDSY1352 = RegisterMap(
    model="acrel_ddsy1352",
    description="Acrel DDSY1352 single-phase prepaid meter (energy and instantaneous values)",
    fields=(
        *_ENERGY,
        Field("voltage", 0x000B, "uint16", _V, "V", apply="pt"),
        Field("current", 0x000C, "uint16", _A, "A", apply="ct"),
        Field("active_power", 0x000D, "int16", _KW, "kW", apply="ctpt"),
        Field("power_factor", 0x0010, "int16", _PF),
    ),
    source='Acrel "DDSY1352/DTSY1352 Operation Manual" T1.0, 8.1 communication address table',
)

REGISTER_MAPS: dict[str, RegisterMap] = {
    m.model: m
    for m in (
        ACREL_PREPAID_1P,
        ACREL_PREPAID_3P,
        EASTRON_SDM120,
        EASTRON_SDM630,
        ACREL_ADL3000_E,
        EASTRON_SDM230,
        EASTRON_SDM72DM_V2,
        CHINT_DDSU666,
        CHINT_DTSU666,
        ACREL_DDSY1352,
    )
}
