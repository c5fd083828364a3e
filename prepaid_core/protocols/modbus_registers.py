"""Register map types of Modbus meters (G2): ``Field``, ``RelayControl``, ``RegisterMap``.

The vocabulary in which ``modbus_maps`` writes a meter model's registers and ``modbus``
reads them; ``ModbusCodecError`` is the base of the codec's errors, raised here for an
unknown field.  See ``modbus`` for the columns' meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from prepaid_core.errors import PrepaidError

__all__ = ["Field", "ModbusCodecError", "RegisterMap", "RelayControl"]


class ModbusCodecError(PrepaidError):
    """Base of the Modbus codec errors; ``used`` = bytes to drop before decoding again."""

    def __init__(self, message: str, *, used: int = 0):
        super().__init__(message)
        self.used = used


_TYPES = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "coil": 1}
_TABLE_FUNCTION = {"holding": 3, "input": 4, "coil": 1}
_ONE = Decimal(1)


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
        if self.type not in _TYPES:
            raise ValueError(f"{self.name}: unknown type {self.type!r}")
        if self.table not in _TABLE_FUNCTION:
            raise ValueError(f"{self.name}: unknown table {self.table!r}")
        if (self.type == "coil") != (self.table == "coil"):
            raise ValueError(f"{self.name}: coils live in the coil table")
        if self.word_order not in ("big", "little") or self.byte_order not in ("big", "little"):
            raise ValueError(f"{self.name}: word/byte order is 'big' or 'little'")
        if self.apply not in ("", "ct", "pt", "ctpt"):
            raise ValueError(f"{self.name}: apply is '', 'ct', 'pt' or 'ctpt'")
        if not 0 <= self.address <= 0xFFFF - _TYPES[self.type] + 1:
            raise ValueError(f"{self.name}: address out of range")
        if not isinstance(self.scale, Decimal):
            object.__setattr__(self, "scale", Decimal(str(self.scale)))

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

    def __post_init__(self):
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            raise ValueError(f"{self.model}: duplicate field names")
        object.__setattr__(self, "_by_name", by_name)
        if self.relay is not None and self.relay.field not in by_name:
            raise ValueError(f"{self.model}: relay field {self.relay.field!r} not in map")

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
