"""G9: DLMS/COSEM meters read and switched by the driver over real sockets, the meters
served by gurux-dlms's own server (``prepaid_core.simulator.dlms_meter``): TCP wrapper
and HDLC (several meters on one bus), no security, LLS password and HLS-GMAC with
authenticated encryption, scaling, time-of-use, the meter's balance, the relay."""

from __future__ import annotations

from decimal import Decimal

import pytest
from gurux_dlms.enums import Unit

from prepaid_core import buses
from prepaid_core.buses import dlms
from prepaid_core.buses.common import CommandJob, DlmsSettings, LinkSettings, MeterJob
from prepaid_core.protocols import dlms as cosem
from prepaid_core.simulator.dlms_meter import DlmsMeter, DlmsSimulator

KEY = bytes(range(16))
AUTH_KEY = bytes(range(0xD0, 0xE0))
SECURITY = {
    "none": {"client_address": 16, "authentication": "none", "security": "none"},
    "low": {"authentication": "low", "security": "none"},
    "high_gmac": {"authentication": "high_gmac", "security": "authentication_encryption"},
}


def sim_meter(number: int, level: str = "low", **kwargs) -> DlmsMeter:
    settings = SECURITY[level]
    meter = DlmsMeter(
        logical_address=number,
        physical_address=16 + number,
        authentication="low" if level == "none" else settings["authentication"],
        security=settings["security"],
        **kwargs,
    )
    meter.set_energy_kwh("1.0.1.8.0.255", Decimal(100) * number, scaler=0)
    return meter


def job(number: int, level: str = "low", interface: str = "wrapper", **kwargs) -> MeterJob:
    settings = {
        "interface": interface,
        "client_address": 1,
        "logical_address": number,
        "physical_address": 16 + number,
        "password": b"12345678",
        "system_title": b"PREPAID1",
        "block_cipher_key": KEY,
        "authentication_key": AUTH_KEY,
        **SECURITY[level],
        **kwargs.pop("dlms", {}),
    }
    return MeterJob(number, f"meter-{number}", dlms=DlmsSettings(**settings), **kwargs)


def poll(simulator: DlmsSimulator, jobs, interface: str = "wrapper"):
    settings = LinkSettings(simulator.host, simulator.port, timeout=0.5)
    return buses.poll_bus(f"dlms_{interface}", settings, jobs)


@pytest.mark.parametrize("level", ["none", "low", "high_gmac"])
@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_meters_read_at_every_security_level(interface, level):
    meters = [sim_meter(1, level), sim_meter(2, level)]
    with DlmsSimulator(meters, interface) as simulator:
        result = poll(simulator, [job(1, level, interface), job(2, level, interface)], interface)
    assert result.connected
    assert [m.error for m in result.meters] == ["", ""]
    assert [m.values["forward_total"] for m in result.meters] == [Decimal(100), Decimal(200)]
    assert all(m.values["relay_state"] == "on" for m in result.meters)


def test_scaled_registers_tou_power_and_balance():
    meter = sim_meter(1, credit_scale=-2)
    meter.set_register("1.0.1.8.0.255", 1234567, scaler=-1)  # 123456.7 Wh
    meter.set_register("1.0.2.8.0.255", 25, scaler=3)  # 25 kWh
    for tariff, kwh in zip(range(1, 5), ("1.5", "2.25", "3", "4.125"), strict=True):
        meter.set_energy_kwh(f"1.0.1.8.{tariff}.255", kwh, scaler=-2)
    meter.set_register("1.0.1.7.0.255", 23456, scaler=-1)  # 2345.6 W
    meter.credit = -1234  # -12.34 EUR (currency scale -2)
    with DlmsSimulator([meter]) as simulator:
        result = poll(simulator, [job(1, read_balance=True)])
    values = result.meters[0].values
    assert values == {
        "forward_total": Decimal("123.4567"),
        "reverse_total": Decimal(25),
        "tou_sharp": Decimal("1.5"),
        "tou_peak": Decimal("2.25"),
        "tou_flat": Decimal(3),
        "tou_valley": Decimal("4.125"),
        "power": Decimal("2.3456"),
        "relay_state": "on",
        "meter_balance": Decimal("-12.34"),
    }


def test_meter_without_get_with_list_is_read_attribute_by_attribute():
    meter = sim_meter(1)
    meter.get_with_list = False
    meter.set_register("1.0.1.7.0.255", 1500, scaler=0)
    with DlmsSimulator([meter], "hdlc") as simulator:
        result = poll(simulator, [job(1, interface="hdlc")], "hdlc")
    assert result.meters[0].values["forward_total"] == Decimal(100)
    assert result.meters[0].values["power"] == Decimal("1.5")


@pytest.mark.parametrize("with_list", [True, False])
def test_registers_the_meter_lacks_are_left_out(with_list):
    meter = sim_meter(1)
    meter.get_with_list = with_list
    for obis in ("1.0.2.8.0.255", "1.0.1.8.3.255", "1.0.1.8.4.255"):
        meter.remove(obis)
    with DlmsSimulator([meter]) as simulator:
        result = poll(simulator, [job(1, read_balance=True)])
    values = result.meters[0].values
    assert result.meters[0].ok
    assert "reverse_total" not in values and "tou_flat" not in values
    assert values["tou_sharp"] == 0 and values["meter_balance"] == 0


def test_meter_without_billing_register_fails_as_refused():
    meter = sim_meter(1)
    meter.remove("1.0.1.8.0.255")
    with DlmsSimulator([meter, sim_meter(2)]) as simulator:
        first, second = poll(simulator, [job(1), job(2)]).meters
    assert not first.ok and first.answered and not first.values
    assert "has no billing register 1.0.1.8.0.255" in first.error
    assert second.ok and second.values["forward_total"] == Decimal(200)


def test_register_in_another_unit_fails_with_its_reason():
    meter = sim_meter(1)
    meter.set_register("1.0.1.7.0.255", 5, scaler=0, unit=Unit.REACTIVE_POWER)
    with DlmsSimulator([meter]) as simulator:
        (result,) = poll(simulator, [job(1)]).meters
    assert not result.ok and not result.values
    assert "1.0.1.7.0.255: unit REACTIVE_POWER, expected ACTIVE_POWER" in result.error


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_relay_off_then_on_confirmed_by_read_back(interface):
    meter = sim_meter(1, "high_gmac")
    with DlmsSimulator([meter], interface) as simulator:
        off = poll(
            simulator,
            [job(1, "high_gmac", interface, commands=[CommandJob(7, "relay_off")])],
            interface,
        )
        assert not meter.relay_on
        on = poll(
            simulator,
            [job(1, "high_gmac", interface, commands=[CommandJob(8, "relay_on")])],
            interface,
        )
    assert off.meters[0].outcomes[0].success and off.meters[0].values["relay_state"] == "off"
    assert on.meters[0].outcomes[0].reason == "acknowledged; read-back confirms"
    assert on.meters[0].values["relay_state"] == "on" and meter.relay_on
    assert meter.actions == 2


@pytest.mark.parametrize("knob", ["drop_next_action_answer", "garble_next_action_answer"])
@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_lost_answer_is_read_back_never_sent_twice(interface, knob):
    meter = sim_meter(1)
    setattr(meter, knob, True)
    with DlmsSimulator([meter, sim_meter(2)], interface) as simulator:
        result = poll(
            simulator,
            [
                job(1, interface=interface, commands=[CommandJob(7, "relay_off")]),
                job(2, interface=interface),
            ],
            interface,
        )
    outcome = result.meters[0].outcomes[0]
    assert outcome.success, outcome.reason
    assert outcome.reason == "answer lost; read-back shows the command executed"
    assert meter.actions == 1 and not meter.relay_on
    assert result.meters[1].ok


def test_refused_action_fails_for_good_with_its_reason():
    meter = sim_meter(1)
    meter.refuse_actions = True
    with DlmsSimulator([meter]) as simulator:
        result = poll(
            simulator,
            [job(1, commands=[CommandJob(7, "relay_off"), CommandJob(8, "price", {"price": 1})])],
        )
    refused, unsupported = result.meters[0].outcomes
    assert not refused.success and refused.permanent
    assert refused.reason == "meter refused: read write denied"
    assert not unsupported.success and unsupported.permanent and not unsupported.delivered
    assert unsupported.reason == "command price is not supported over DLMS"
    assert meter.relay_on and result.meters[0].ok


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_wrong_password_fails_that_meter_and_the_next_is_read(interface):
    with DlmsSimulator([sim_meter(1), sim_meter(2)], interface) as simulator:
        bad = job(1, interface=interface, dlms={"password": b"wrong"})
        first, second = poll(simulator, [bad, job(2, interface=interface)], interface).meters
    assert not first.ok and first.answered and not first.values
    assert first.error == "association refused: authentication failure"
    assert second.ok and second.values["forward_total"] == Decimal(200)


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_wrong_key_fails_that_meter_and_the_next_is_read(interface):
    meters = [sim_meter(1, "high_gmac"), sim_meter(2, "high_gmac")]
    with DlmsSimulator(meters, interface) as simulator:
        bad = job(1, "high_gmac", interface, dlms={"block_cipher_key": bytes(16)})
        first, second = poll(simulator, [bad, job(2, "high_gmac", interface)], interface).meters
    assert not first.ok and first.answered and not first.values
    assert first.error.startswith("association refused: no reason given (a ciphered request")
    assert second.ok and second.values["forward_total"] == Decimal(200)


def test_wrong_authentication_key_or_mechanism_fails_the_association():
    with DlmsSimulator([sim_meter(1, "high_gmac")]) as simulator:
        wrong_key = job(1, "high_gmac", dlms={"authentication_key": bytes(16)})
        lls = job(1, "low")
        results = poll(simulator, [wrong_key, lls]).meters
    assert [(r.ok, r.answered, r.values) for r in results] == [(False, True, {})] * 2
    assert [r.error for r in results] == [
        "association refused: HLS authentication failure (read write denied)",
        "association refused: authentication mechanism not recognised",
    ]


@pytest.mark.parametrize("interface", ["wrapper", "hdlc"])
def test_garbled_reply_fails_one_meter_not_the_bus(interface):
    first_meter = sim_meter(1)
    first_meter.garble_next_reply = True
    with DlmsSimulator([first_meter, sim_meter(2)], interface) as simulator:
        result = poll(
            simulator, [job(1, interface=interface), job(2, interface=interface)], interface
        )
    first, second = result.meters
    assert result.connected and not result.error
    assert not first.ok and not first.values and first.error
    assert second.ok and second.values["forward_total"] == Decimal(200)


def test_hdlc_frame_from_another_address_is_ignored():
    second_meter = sim_meter(2)
    second_meter.stray_frame_first = True
    with DlmsSimulator([sim_meter(1), second_meter], "hdlc") as simulator:
        result = poll(simulator, [job(1, interface="hdlc"), job(2, interface="hdlc")], "hdlc")
    assert not second_meter.stray_frame_first  # the stray frame went out first
    assert [m.values["forward_total"] for m in result.meters] == [Decimal(100), Decimal(200)]


def test_wrapper_reply_of_another_logical_device_is_ignored():
    second_meter = sim_meter(2)
    second_meter.stray_frame_first = True
    with DlmsSimulator([sim_meter(1), second_meter]) as simulator:
        result = poll(simulator, [job(1), job(2)])
    assert not second_meter.stray_frame_first
    assert [m.values["forward_total"] for m in result.meters] == [Decimal(100), Decimal(200)]


def test_silent_meter_times_out_and_the_next_is_read():
    with DlmsSimulator([sim_meter(2)], "hdlc") as simulator:
        first, second = poll(
            simulator, [job(1, interface="hdlc"), job(2, interface="hdlc")], "hdlc"
        ).meters
    assert not first.ok and not first.answered and "no answer from meter meter-1" in first.error
    assert second.ok


def test_serve_bus_keeps_the_link_open_between_polls():
    meters = [sim_meter(1, "high_gmac"), sim_meter(2, "high_gmac")]
    with DlmsSimulator(meters, "hdlc") as simulator:
        settings = LinkSettings(simulator.host, simulator.port, timeout=0.5)
        with dlms.Link(settings) as link:
            jobs = [job(1, "high_gmac", "hdlc"), job(2, "high_gmac", "hdlc")]
            first = buses.serve_bus("dlms_hdlc", link, jobs)
            counter = meters[0].invocation_counter
            meters[0].set_energy_kwh("1.0.1.8.0.255", 150)
            second = buses.serve_bus("dlms_hdlc", link, jobs)
            assert link.alive()
    assert [m.ok for m in first.meters + second.meters] == [True] * 4
    assert second.meters[0].values["forward_total"] == Decimal(150)
    assert 0 < counter < meters[0].invocation_counter  # each association above the last


def test_ciphered_association_starts_above_the_meter_frame_counter():
    meter = sim_meter(1, "high_gmac")
    meter.invocation_counter = 70_000  # other clients, earlier sessions
    with DlmsSimulator([meter]) as simulator:
        read, unreadable = poll(
            simulator,
            [
                job(1, "high_gmac"),
                job(1, "high_gmac", dlms={"invocation_counter_obis": "0.0.43.1.9.255"}),
            ],
        ).meters
    assert read.ok and meter.invocation_counter > 70_000
    assert not unreadable.ok and unreadable.answered
    assert unreadable.error == "frame counter 0.0.43.1.9.255 unreadable: None"


def test_meter_without_dlms_settings_fails_with_its_reason():
    with DlmsSimulator([sim_meter(1)]) as simulator:
        (result,) = poll(simulator, [MeterJob(1, "meter-1")]).meters
    assert result.error == "meter meter-1 has no DLMS settings"


@pytest.mark.parametrize("max_info", [32, 64])
def test_hdlc_meter_with_short_frames(max_info):
    """Its AARE comes in segments; its reading in short lists (64) or single GETs (32):
    a list reply must fit one frame."""
    meter = sim_meter(1, "high_gmac", hdlc_max_info=max_info)
    meter.set_register("1.0.1.8.2.255", 987654321, scaler=-3)
    with DlmsSimulator([meter], "hdlc") as simulator:
        (result,) = poll(simulator, [job(1, "high_gmac", "hdlc", read_balance=True)], "hdlc").meters
    assert result.ok, result.error
    assert result.values["tou_peak"] == Decimal("987.654321")
    assert result.values["forward_total"] == Decimal(100)


def test_a_client_below_the_meter_frame_counter_is_refused():
    """Why the frame counter is read first: the meter refuses a counter it has seen."""
    meter = sim_meter(1, "high_gmac")
    meter.invocation_counter = 70_000
    with DlmsSimulator([meter]) as simulator:
        settings = LinkSettings(simulator.host, simulator.port, timeout=0.5)
        with dlms.Link(settings) as link:
            client = cosem.management_client(job(1, "high_gmac").dlms, "wrapper")
            client.ciphering.invocationCounter = 1
            association = dlms.Association(link, client, "wrapper", "")
            with pytest.raises(dlms.AssociationRefused, match="HLS authentication failure"):
                association.open()
    assert meter.invocation_counter == 70_000


def test_hdlc_physical_addresses_above_127_use_four_byte_addressing():
    meter = DlmsMeter(logical_address=1, physical_address=1234)
    meter.set_energy_kwh("1.0.1.8.0.255", 5)
    with DlmsSimulator([meter, sim_meter(2)], "hdlc") as simulator:
        high = job(1, interface="hdlc", dlms={"physical_address": 1234})
        result = poll(simulator, [high, job(2, interface="hdlc")], "hdlc")
    assert [m.values["forward_total"] for m in result.meters] == [Decimal(5), Decimal(200)]
