"""G9: the DLMS reading rules without a meter: the OBIS table, scaler_unit, Wh -> kWh and
W -> kW, the relay state, the credit scaled by the Account's currency, values left out,
and the frames of other meters told apart (frames of the simulated meters)."""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import pytest
from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Unit

from prepaid_core import device_push
from prepaid_core.buses import POLLED_VALUES, dlms
from prepaid_core.buses.common import DlmsSettings
from prepaid_core.protocols import dlms as cosem
from prepaid_core.protocols.dlms import DlmsValueError
from prepaid_core.simulator.dlms_meter import DlmsMeter, DlmsSimulator

ITEMS = {item.name: item for item in cosem.READING_OBJECTS + cosem.BALANCE_OBJECTS}


def test_every_reading_value_is_a_polled_value_and_only_forward_is_required():
    assert set(ITEMS) <= set(POLLED_VALUES)
    assert [name for name, item in ITEMS.items() if item.required] == ["forward_total"]
    tou = [ITEMS[name].obis for name in ("tou_sharp", "tou_peak", "tou_flat", "tou_valley")]
    assert tou == [f"1.0.1.8.{rate}.255" for rate in range(1, 5)]


@pytest.mark.parametrize(
    ("value", "scaler", "unit", "expected"),
    [
        (123456, 0, Unit.ACTIVE_ENERGY, Decimal("123.456")),
        (1234567, -2, Unit.ACTIVE_ENERGY, Decimal("12.34567")),
        (25, 3, Unit.ACTIVE_ENERGY, Decimal(25)),
        (0, -1, Unit.ACTIVE_ENERGY, Decimal(0)),
        (-1500, 0, Unit.ACTIVE_POWER, Decimal("-1.5")),
    ],
)
def test_register_scaled_to_kwh_and_kw(value, scaler, unit, expected):
    item = ITEMS["power"] if unit == Unit.ACTIVE_POWER else ITEMS["forward_total"]
    assert cosem.register_value(item, value, [scaler, unit]) == expected


@pytest.mark.parametrize(
    ("value", "scaler_unit", "message"),
    [
        (100, [0, Unit.REACTIVE_ENERGY], "unit REACTIVE_ENERGY, expected ACTIVE_ENERGY"),
        ("100", [0, Unit.ACTIVE_ENERGY], "is not a number"),
        (True, [0, Unit.ACTIVE_ENERGY], "is not a number"),
        (100, 5, "scaler_unit 5 unreadable"),
    ],
)
def test_register_value_refused_with_its_reason(value, scaler_unit, message):
    with pytest.raises(DlmsValueError, match=message):
        cosem.register_value(ITEMS["forward_total"], value, scaler_unit)


def test_credit_scaled_by_the_account_currency_or_taken_as_it_is():
    assert cosem.credit_value(-1234, ["EUR", -2, 0]) == Decimal("-12.34")
    assert cosem.credit_value(1234, None) == Decimal(1234)
    with pytest.raises(DlmsValueError):
        cosem.credit_value(1.5, None)


def test_reading_values_leave_out_what_the_meter_did_not_give():
    raw = {
        ("1.0.1.8.0.255", 2): 1000,
        ("1.0.1.8.0.255", 3): [0, Unit.ACTIVE_ENERGY],
        ("1.0.2.8.0.255", 2): 500,  # its scaler_unit refused
        ("1.0.1.8.1.255", 2): None,
        ("1.0.1.8.1.255", 3): [0, Unit.ACTIVE_ENERGY],
        (cosem.DISCONNECT_CONTROL, 2): False,
        ("0.0.19.10.0.255", 2): 250,
        (cosem.ACCOUNT, cosem.ACCOUNT_CURRENCY): ["EUR", -1, 0],
    }
    items = cosem.READING_OBJECTS + cosem.BALANCE_OBJECTS
    assert cosem.reading_values(items, raw) == {
        "forward_total": Decimal(1),
        "relay_state": "off",
        "meter_balance": Decimal(25),
    }


def test_attributes_to_read_pair_registers_with_scaler_unit():
    reads = cosem.attributes_to_read(cosem.READING_OBJECTS[:1] + cosem.BALANCE_OBJECTS)
    assert reads == [
        ("1.0.1.8.0.255", 3, 2),
        ("1.0.1.8.0.255", 3, 3),
        ("0.0.19.10.0.255", 112, 2),
        (cosem.ACCOUNT, 111, 15),
    ]


def test_unknown_security_setting_is_refused():
    with pytest.raises(DlmsValueError, match="unknown DLMS security setting"):
        cosem.management_client(DlmsSettings(authentication="high_md5"), "wrapper")


def _client(interface: str, logical: int, physical: int = 0) -> GXDLMSClient:
    settings = DlmsSettings(logical_address=logical, physical_address=physical)
    return cosem.public_client(settings, interface)


@pytest.mark.parametrize("interface", ["hdlc", "wrapper"])
def test_frames_of_another_meter_are_dropped(interface):
    """Reply frames of two simulated meters (gurux's server framing them): the driver's
    check keeps its meter's frames and drops the other's, a partial frame kept."""
    ours, theirs = _client(interface, 1, 17), _client(interface, 2, 18)
    meters = [DlmsMeter(logical_address=1, physical_address=17)]
    meters.append(DlmsMeter(logical_address=2, physical_address=18))
    with DlmsSimulator(meters, interface) as simulator:
        with socket.create_connection((simulator.host, simulator.port), timeout=2) as sock:
            own_frame, foreign_frame = (_reply(sock, c, interface) for c in (ours, theirs))
    kept, dropped = dlms.frames_from(bytearray(foreign_frame + own_frame[:5]), ours)
    assert kept == own_frame[:5] and "not" in dropped
    kept, dropped = dlms.frames_from(bytearray(own_frame), ours)
    assert kept == own_frame and not dropped


def _reply(sock: socket.socket, client: GXDLMSClient, interface: str) -> bytes:
    """The meter's reply to the first request of ``client`` (SNRM, AARQ)."""
    request = client.snrmRequest() if interface == "hdlc" else client.aarqRequest()[0]
    sock.sendall(bytes(request))
    return sock.recv(4096)


# === the settings sent to a gateway runner === #
def test_settings_travel_as_json_and_keep_their_secrets_out_of_the_repr():
    settings = DlmsSettings(
        interface="hdlc",
        client_address=1,
        physical_address=300,
        authentication="high_gmac",
        security="authentication_encryption",
        password=b"secret-password",
        system_title=b"PPENERGY",
        block_cipher_key=bytes(range(16)),
        authentication_key=bytes(range(0xD0, 0xE0)),
    )
    config = json.loads(json.dumps(settings.to_config()))
    assert config["block_cipher_key"] == "000102030405060708090a0b0c0d0e0f"
    assert DlmsSettings.from_config(config) == settings
    text = repr(settings)
    assert "secret-password" not in text and "000102" not in text and "b'\\x00" not in text
    assert "PPENERGY" in text  # the system title is no secret


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"block_cipher_key": "not hex"}, "block_cipher_key must be hexadecimal"),
        ({"security": "rot13"}, "security must be one of"),
        ({"physical_address": 20000}, "physical_address must be a whole number"),
        ({"client_address": "1"}, "client_address must be a whole number"),
        ({"wrapper_port": 4059}, "unknown settings wrapper_port"),
    ],
)
def test_bad_settings_name_the_field(change, error):
    config = {**DlmsSettings(interface="hdlc").to_config(), **change}
    with pytest.raises(ValueError, match=error):
        DlmsSettings.from_config(config)


def test_dlms_key_names_a_meter_on_its_bus():
    assert device_push.dlms_key(3, 1, 300) == "dlms:3:1:300"
    assert device_push.parse_dlms_key("dlms:3:1:300") == (3, 1, 300)
    for other in ("modbus:3:17", "000000000001", "dlms:3:1", "dlms:3:1:300:4", None, 7):
        assert device_push.parse_dlms_key(other) is None
