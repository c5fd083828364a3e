"""G9: DLMS/COSEM meters read and switched by the driver over real sockets, the meters
served by gurux-dlms's own server (``prepaid_core.simulator.dlms_meter``): TCP wrapper
and HDLC (several meters on one bus), no security, LLS password and HLS-GMAC with
authenticated encryption, scaling, time-of-use, the meter's balance, the relay."""

from __future__ import annotations

from decimal import Decimal

import pytest

from prepaid_core import buses
from prepaid_core.buses.common import DlmsSettings, LinkSettings, MeterJob
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
    settings = {"client_address": 1, **SECURITY[level]}
    overrides = kwargs.pop("dlms", {})
    return MeterJob(
        number,
        f"meter-{number}",
        dlms=DlmsSettings(
            interface=interface,
            logical_address=number,
            physical_address=16 + number,
            password=b"12345678",
            system_title=b"PREPAID1",
            block_cipher_key=KEY,
            authentication_key=AUTH_KEY,
            **{**settings, **overrides},
        ),
        **kwargs,
    )


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
