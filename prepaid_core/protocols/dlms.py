"""DLMS/COSEM (IEC 62056) for the bus driver: which COSEM objects make a reading, how
their values become reading values, and the gurux-dlms client of one meter.

``READING_OBJECTS`` is the one OBIS table of a reading (data, so that a meter model can
later bring its own): each reading value names its object (class, OBIS, attribute) and
the rule that turns the decoded value into the value stored (``register``: scaled by
the register's scaler_unit, Wh -> kWh and W -> kW; ``relay``: the Disconnect control's
output_state; ``credit``: the Credit's current_credit_amount scaled by the Account's
currency scale).  Framing, APDUs, ciphering and value decoding are gurux-dlms's; no I/O
here and no Odoo import."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType, ObjectType, Security, Unit
from gurux_dlms.objects import (
    GXDLMSAccount,
    GXDLMSCredit,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSRegister,
)
from gurux_dlms.secure import GXDLMSSecureClient

if TYPE_CHECKING:
    from prepaid_core.buses.common import DlmsSettings

__all__ = [
    "ACCOUNT",
    "AUTHENTICATIONS",
    "BALANCE_OBJECTS",
    "DISCONNECT_CONTROL",
    "READING_OBJECTS",
    "SECURITIES",
    "DlmsValueError",
    "ObisValue",
    "cosem_object",
    "management_client",
    "public_client",
    "reading_values",
]

PUBLIC_CLIENT = 16
DISCONNECT_CONTROL = "0.0.96.3.10.255"  # class 70; methods 1 remote_disconnect, 2 reconnect
ACCOUNT = "0.0.19.0.0.255"  # class 111; attribute 15 currency {name, scale, unit}
ACCOUNT_CURRENCY = 15


def _quiet(*_args, **_kwargs) -> None:
    """gurux-dlms prints diagnostics to stdout from its cipher and client code (each
    ciphered frame: "Encryption is applied."): silenced there, the driver reports what
    went wrong itself."""


for _module in (
    "gurux_dlms.GXDLMSChippering",
    "gurux_dlms.GXDLMSClient",
    "gurux_dlms.GXDLMSSettings",
):
    importlib.import_module(_module).print = _quiet


class DlmsValueError(ValueError):
    """A value the reading cannot use (an unexpected unit or type)."""


@dataclass(frozen=True)
class ObisValue:
    """One reading value and the COSEM attribute it is read from."""

    name: str  # the reading value (``POLLED_VALUES`` of the buses)
    obis: str
    class_id: int
    attribute: int = 2
    rule: str = "register"  # "register", "relay" or "credit"
    unit: int = Unit.NONE  # a register's expected unit (Wh, W)
    required: bool = False  # a meter without it cannot be read


#: the reading of a meter (energy in Wh, kWh stored; power in W, kW stored)
READING_OBJECTS = (
    ObisValue("forward_total", "1.0.1.8.0.255", 3, unit=Unit.ACTIVE_ENERGY, required=True),
    ObisValue("reverse_total", "1.0.2.8.0.255", 3, unit=Unit.ACTIVE_ENERGY),
    ObisValue("tou_sharp", "1.0.1.8.1.255", 3, unit=Unit.ACTIVE_ENERGY),  # rate T1
    ObisValue("tou_peak", "1.0.1.8.2.255", 3, unit=Unit.ACTIVE_ENERGY),  # T2
    ObisValue("tou_flat", "1.0.1.8.3.255", 3, unit=Unit.ACTIVE_ENERGY),  # T3
    ObisValue("tou_valley", "1.0.1.8.4.255", 3, unit=Unit.ACTIVE_ENERGY),  # T4
    ObisValue("power", "1.0.1.7.0.255", 3, unit=Unit.ACTIVE_POWER),
    ObisValue("relay_state", DISCONNECT_CONTROL, 70, rule="relay"),
)
#: read too when the meter's own balance is asked for
BALANCE_OBJECTS = (ObisValue("meter_balance", "0.0.19.10.0.255", 112, rule="credit"),)

#: unit -> factor to the stored unit (kWh, kW)
UNIT_FACTORS = {Unit.ACTIVE_ENERGY: Decimal("0.001"), Unit.ACTIVE_POWER: Decimal("0.001")}

_OBJECT_CLASSES = {
    ObjectType.REGISTER: GXDLMSRegister,
    ObjectType.DISCONNECT_CONTROL: GXDLMSDisconnectControl,
    ObjectType.CREDIT: GXDLMSCredit,
    ObjectType.ACCOUNT: GXDLMSAccount,
    ObjectType.DATA: GXDLMSData,
}


def cosem_object(class_id: int, obis: str):
    """gurux's object of ``class_id`` at ``obis`` (what its client reads and calls)."""
    return _OBJECT_CLASSES[ObjectType(class_id)](obis)


# === VALUES === #
def register_value(item: ObisValue, value, scaler_unit) -> Decimal:
    """A register's value x 10^scaler in the stored unit (kWh, kW)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise DlmsValueError(f"{item.obis}: value {value!r} is not a number")
    if not isinstance(scaler_unit, list | tuple) or len(scaler_unit) != 2:
        raise DlmsValueError(f"{item.obis}: scaler_unit {scaler_unit!r} unreadable")
    scaler, unit = scaler_unit
    if unit != item.unit:
        raise DlmsValueError(
            f"{item.obis}: unit {_unit_name(unit)}, expected {_unit_name(item.unit)}"
        )
    return Decimal(str(value)).scaleb(int(scaler)) * UNIT_FACTORS[item.unit]


def credit_value(amount, currency) -> Decimal:
    """Current credit amount x 10^currency scale (the Account's; 0 without one)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise DlmsValueError(f"credit amount {amount!r} is not an integer")
    scale = currency[1] if isinstance(currency, list | tuple) and len(currency) == 3 else 0
    return Decimal(amount).scaleb(int(scale))


def reading_values(items, raw: dict) -> dict:
    """The reading values of ``items`` from ``raw`` ((obis, attribute) -> decoded value,
    absent when the meter refused or lacks it); a value that is not there is left out."""
    values = {}
    for item in items:
        value = raw.get((item.obis, item.attribute))
        if value is None:
            continue
        if item.rule == "register":
            scaler_unit = raw.get((item.obis, 3))
            if scaler_unit is None:
                continue
            values[item.name] = register_value(item, value, scaler_unit)
        elif item.rule == "relay":
            values[item.name] = "on" if value else "off"
        elif item.rule == "credit":
            values[item.name] = credit_value(value, raw.get((ACCOUNT, ACCOUNT_CURRENCY)))
    return values


def attributes_to_read(items) -> list[tuple[str, int, int]]:
    """(obis, class, attribute) read for ``items``: each register's value and its
    scaler_unit, the Account's currency with a credit."""
    reads = []
    for item in items:
        reads.append((item.obis, item.class_id, item.attribute))
        if item.rule == "register":
            reads.append((item.obis, item.class_id, 3))
        elif item.rule == "credit":
            reads.append((ACCOUNT, ObjectType.ACCOUNT, ACCOUNT_CURRENCY))
    return reads


def _unit_name(unit) -> str:
    try:
        return Unit(unit).name
    except ValueError:
        return str(unit)


# === CLIENTS === #
#: authentication setting -> gurux's mechanism
AUTHENTICATIONS = {
    "none": Authentication.NONE,
    "low": Authentication.LOW,
    "high_gmac": Authentication.HIGH_GMAC,
}
#: security setting -> gurux's policy (suite 0)
SECURITIES = {
    "none": Security.NONE,
    "authentication": Security.AUTHENTICATION,
    "encryption": Security.ENCRYPTION,
    "authentication_encryption": Security.AUTHENTICATION_ENCRYPTION,
}
_INTERFACES = {"hdlc": InterfaceType.HDLC, "wrapper": InterfaceType.WRAPPER}


def server_address(settings: DlmsSettings, interface: str) -> int:
    """The meter's address as gurux's client wants it: the logical device (wrapper) or
    logical and physical address together (HDLC)."""
    if interface == "hdlc":
        return GXDLMSClient.getServerAddress(settings.logical_address, settings.physical_address)
    return settings.logical_address


def public_client(settings: DlmsSettings, interface: str) -> GXDLMSClient:
    """The public client (16, no security): what reads the frame counter."""
    return GXDLMSClient(
        True,
        PUBLIC_CLIENT,
        server_address(settings, interface),
        Authentication.NONE,
        None,
        _INTERFACES[interface],
    )


def management_client(settings: DlmsSettings, interface: str) -> GXDLMSSecureClient:
    """The client of ``settings`` (usually the management client, 1) with its
    authentication and ciphering (suite 0)."""
    try:
        authentication = AUTHENTICATIONS[settings.authentication]
        security = SECURITIES[settings.security]
    except KeyError as exc:
        raise DlmsValueError(f"unknown DLMS security setting {exc}") from None
    client = GXDLMSSecureClient(
        True,
        settings.client_address,
        server_address(settings, interface),
        authentication,
        settings.password or None,
        _INTERFACES[interface],
    )
    if ciphered(settings):
        cipher = client.ciphering
        cipher.security = security
        cipher.systemTitle = settings.system_title
        cipher.blockCipherKey = settings.block_cipher_key
        cipher.authenticationKey = settings.authentication_key
    return client


def ciphered(settings: DlmsSettings) -> bool:
    """Whether the association uses suite 0 keys (HLS-GMAC or a ciphered context)."""
    return settings.security != "none" or settings.authentication == "high_gmac"
