"""Register map types of Modbus meters (G2): ``Field``, ``RelayControl``, ``RegisterMap``.

The vocabulary in which a meter model's registers are written (``modbus_maps``, or a map
kept as data in Odoo and built here with ``build_register_map``) and ``modbus`` reads them.
``MEASURES`` names what a register may measure and which CT/PT multiplier applies to it;
a map read from a file or a form is checked here once (``RegisterMapError`` names the bad
field), so Odoo's constraints and the pure driver share one set of rules.
``ModbusCodecError`` is the base of the codec's errors, raised here for an unknown field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from prepaid_core.errors import PrepaidError

__all__ = [
    "MEASURES",
    "TYPES",
    "Field",
    "ModbusCodecError",
    "RegisterMap",
    "RegisterMapError",
    "RelayControl",
    "build_register_map",
    "register_map_data",
]


class ModbusCodecError(PrepaidError):
    """Base of the Modbus codec errors; ``used`` = bytes to drop before decoding again."""

    def __init__(self, message: str, *, used: int = 0):
        super().__init__(message)
        self.used = used


class RegisterMapError(ModbusCodecError):
    """A register map that cannot be used; ``field`` names the bad entry (``scale``,
    ``registers[3].address``...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


#: register type -> registers it takes (``bcd16``/``bcd32``: packed BCD, 4/8 digits)
TYPES = {
    "uint16": 1,
    "int16": 1,
    "uint32": 2,
    "int32": 2,
    "float32": 2,
    "bcd16": 1,
    "bcd32": 2,
    "coil": 1,
}
_TYPES = TYPES
_TABLE_FUNCTION = {"holding": 3, "input": 4, "coil": 1}
_FUNCTION_TABLE = {v: k for k, v in _TABLE_FUNCTION.items()}
_ONE = Decimal(1)
_ORDERS = ("big", "little")

#: what a register measures -> the CT/PT multiplier its value takes ("" none)
MEASURES = {
    "total_energy": "ctpt",  # active energy; forward only on meters without import/export
    "import_energy": "ctpt",  # forward active energy
    "export_energy": "ctpt",  # reverse active energy
    "sharp_energy": "ctpt",
    "peak_energy": "ctpt",
    "flat_energy": "ctpt",
    "valley_energy": "ctpt",
    "active_power": "ctpt",
    "active_power_a": "ctpt",
    "active_power_b": "ctpt",
    "active_power_c": "ctpt",
    "voltage": "pt",
    "voltage_a": "pt",
    "voltage_b": "pt",
    "voltage_c": "pt",
    "current": "ct",
    "current_a": "ct",
    "current_b": "ct",
    "current_c": "ct",
    "power_factor": "",
    "frequency": "",
    "remaining_balance": "",  # the meter's own balance; < 0 is an overdraft
    "purchase_count": "",
    "cumulative_purchase": "",
    "alarm_amount_1": "",
    "alarm_amount_2": "",
    "overdraft_limit": "",
    "price": "",
    "relay_state": "",  # 0 closed (supply on), otherwise open
    "relay_control": "",  # written with the map's trip/close values
    "relay_coil": "",  # ON = open (supply off)
    "ct_ratio": "",
    "pt_ratio": "",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One value of a register map."""

    name: str
    address: int
    type: str = "uint16"
    scale: Decimal = _ONE
    unit: str = ""
    table: str = "holding"
    word_order: str = "big"
    byte_order: str = "big"
    apply: str = ""  # "" | "ct" | "pt" | "ctpt"
    writable: bool = False

    def __post_init__(self):
        def bad(column, message):
            raise RegisterMapError(f"{self.name}.{column}", message)

        if self.type not in _TYPES:
            bad("type", f"unknown type {self.type!r} (one of {', '.join(_TYPES)})")
        if self.table not in _TABLE_FUNCTION:
            bad("table", f"unknown table {self.table!r}")
        if (self.type == "coil") != (self.table == "coil"):
            bad("type", "coils live in the coil table (function 01), and only coils")
        if self.word_order not in _ORDERS or self.byte_order not in _ORDERS:
            bad("word_order", "word and byte order are 'big' or 'little'")
        if self.apply not in ("", "ct", "pt", "ctpt"):
            bad("apply", "is '', 'ct', 'pt' or 'ctpt'")
        if not isinstance(self.address, int) or not (
            0 <= self.address <= 0xFFFF - _TYPES[self.type] + 1
        ):
            bad("address", f"{self.address!r} is not a register address (0-65535)")
        if not isinstance(self.scale, Decimal):
            object.__setattr__(self, "scale", _decimal(self.scale, f"{self.name}.scale"))
        if not self.scale.is_finite() or self.scale == 0:
            bad("scale", f"{self.scale} is not a usable scale (non-zero number)")

    @property
    def count(self) -> int:
        return _TYPES[self.type]

    @property
    def function(self) -> int:
        return _TABLE_FUNCTION[self.table]

    def multiplier(self, ct, pt) -> Decimal:
        if not self.apply:
            return _ONE
        m = _ONE
        if "ct" in self.apply:
            m *= Decimal(str(ct))
        if "pt" in self.apply:
            m *= Decimal(str(pt))
        return m


def _decimal(value, field: str) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise RegisterMapError(field, f"{str(value)[:40]!r} is not a number") from None


@dataclass(frozen=True, slots=True)
class RelayControl:
    """How a meter model's relay is commanded: value written to ``field``."""

    field: str
    trip_value: int
    close_value: int


@dataclass(frozen=True)
class RegisterMap:
    """The registers of one meter model."""

    model: str
    fields: tuple[Field, ...]
    max_registers: int = 125  # per read request (some meters accept fewer)
    relay: RelayControl | None = None
    description: str = ""
    source: str = ""  # the datasheet the addresses come from

    def __post_init__(self):
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            raise RegisterMapError("registers", f"{self.model}: duplicate field names")
        object.__setattr__(self, "_by_name", by_name)
        if self.relay is not None and self.relay.field not in by_name:
            raise RegisterMapError(
                "relay", f"{self.model}: relay field {self.relay.field!r} not in map"
            )
        if not 1 <= self.max_registers <= 125:
            raise RegisterMapError("max_registers", "a read asks for 1 to 125 registers")
        _check_overlaps(self.fields)

    def __getitem__(self, name: str) -> Field:
        try:
            return self._by_name[name]  # type: ignore[attr-defined]
        except KeyError:
            raise ModbusCodecError(f"{self.model}: no field {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name  # type: ignore[attr-defined]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _check_overlaps(fields) -> None:
    """Two fields of one table sharing a register: a typo in an address, refused."""
    previous = None
    for field in sorted(fields, key=lambda f: (f.function, f.address)):
        if (
            previous is not None
            and previous.function == field.function
            and field.address < previous.address + previous.count
        ):
            raise RegisterMapError(
                f"{field.name}.address",
                f"register {field.address} overlaps {previous.name} "
                f"({previous.address}-{previous.address + previous.count - 1})",
            )
        previous = field


# === MAPS AS DATA === #
# The plain form of a map (Odoo's records, the JSON file managers export and import):
# {"name", "description", "source", "max_registers", "relay": {"measure", "trip", "close"}
#  or None, "registers": [{"measure", "address", "function", "type", "word_order",
#  "byte_order", "scale", "unit", "writable"}, ...]}


def build_register_map(data: Mapping) -> RegisterMap:
    """A ``RegisterMap`` from its plain form; RegisterMapError names the first bad entry."""
    if not isinstance(data, Mapping):
        raise RegisterMapError("map", "a register map is an object with registers")
    registers = data.get("registers")
    if not isinstance(registers, list) or not registers:
        raise RegisterMapError("registers", "a register map needs at least one register")
    fields = tuple(_build_field(i, line) for i, line in enumerate(registers))
    relay = data.get("relay")
    if relay:
        try:
            relay = RelayControl(relay["measure"], int(relay["trip"]), int(relay["close"]))
        except (KeyError, TypeError, ValueError):
            raise RegisterMapError("relay", "needs measure, trip and close values") from None
    max_registers = data.get("max_registers") or 125
    if not isinstance(max_registers, int):
        raise RegisterMapError("max_registers", f"{max_registers!r} is not a number")
    return RegisterMap(
        model=str(data.get("name") or ""),
        fields=fields,
        max_registers=max_registers,
        relay=relay or None,
        description=str(data.get("description") or ""),
        source=str(data.get("source") or ""),
    )


def _build_field(index: int, line) -> Field:
    where = f"registers[{index}]"
    if not isinstance(line, Mapping):
        raise RegisterMapError(where, "a register is an object")
    measure = line.get("measure")
    if measure not in MEASURES:
        raise RegisterMapError(f"{where}.measure", f"unknown measure {measure!r}")
    function = line.get("function", 3)
    if function not in _FUNCTION_TABLE:
        raise RegisterMapError(f"{where}.function", f"{function!r} is not 1, 3 or 4")
    address = line.get("address")
    if not isinstance(address, int) or isinstance(address, bool):
        raise RegisterMapError(f"{where}.address", f"{address!r} is not a register address")
    try:
        return Field(
            measure,
            address,
            str(line.get("type") or "uint16"),
            _decimal(line.get("scale", 1), f"{where}.scale"),
            str(line.get("unit") or ""),
            table=_FUNCTION_TABLE[function],
            word_order=str(line.get("word_order") or "big"),
            byte_order=str(line.get("byte_order") or "big"),
            apply=MEASURES[measure],
            writable=bool(line.get("writable")),
        )
    except RegisterMapError as exc:
        raise RegisterMapError(
            f"{where}.{exc.field.partition('.')[2]}", str(exc).partition(": ")[2]
        ) from None


def register_map_data(regmap: RegisterMap) -> dict:
    """The plain form of ``regmap`` (inverse of ``build_register_map``)."""
    relay = regmap.relay
    return {
        "name": regmap.model,
        "description": regmap.description,
        "source": regmap.source,
        "max_registers": regmap.max_registers,
        "relay": relay
        and {"measure": relay.field, "trip": relay.trip_value, "close": relay.close_value},
        "registers": [
            {
                "measure": f.name,
                "address": f.address,
                "function": f.function,
                "type": f.type,
                "word_order": f.word_order,
                "byte_order": f.byte_order,
                "scale": str(f.scale),
                "unit": f.unit,
                "writable": f.writable,
            }
            for f in regmap.fields
        ],
    }
