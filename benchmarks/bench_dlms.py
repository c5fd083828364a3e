"""G9 benchmark: DLMS readings per second on one TCP connection, the driver (gurux-dlms)
against the raw socket rate of the same exchanges, against the same simulated meter in
the same run.

One meter of the DLMS simulator (gurux-dlms's own server, WRAPPER mode) is associated
once; then readings of the billing set (forward, reverse, TOU 1-4, power, relay: one
get-with-list of 10 attributes and one of 5) are taken for ``--seconds`` by the driver's
own code path (``prepaid_core.buses.dlms.read_meter``: gurux builds each request, decodes
each reply and the values are scaled).  Then, on the same connection and association,
the request bytes of one reading, captured from the driver, are replayed as they are for
as long; the replies are read to their wrapper length, not decoded.  The raw rate is
what the simulator and the socket allow; the ratio is the share the client side keeps
of it.  Cases: LLS (no ciphering) and HLS-GMAC with authenticated encryption (the
replayed requests keep their invocation counter: the simulator does not check it).

    python3 benchmarks/bench_dlms.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time

from prepaid_core.buses import dlms
from prepaid_core.buses.common import DlmsSettings, LinkSettings, MeterJob
from prepaid_core.simulator.dlms_meter import DlmsMeter, DlmsSimulator

KEY = bytes(range(16))
AUTH_KEY = bytes(range(0xD0, 0xE0))
CASES = {
    "LLS, no ciphering": {"authentication": "low", "security": "none"},
    "HLS-GMAC, authenticated encryption": {
        "authentication": "high_gmac",
        "security": "authentication_encryption",
    },
}


class RecordingLink(dlms.Link):
    """The driver's link, keeping the bytes it sends."""

    def __init__(self, settings):
        super().__init__(settings)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(bytes(data))
        super().send(data)


def sim_meter(case: dict) -> DlmsMeter:
    meter = DlmsMeter(logical_address=1, **case)
    for tariff in range(5):
        meter.set_energy_kwh(f"1.0.1.8.{tariff}.255", 1234.5 + tariff, scaler=-1)
    meter.set_register("1.0.1.7.0.255", 23456, scaler=-1)
    return meter


def meter_job(case: dict) -> MeterJob:
    settings = DlmsSettings(
        interface="wrapper",
        client_address=1,
        logical_address=1,
        password=b"12345678",
        system_title=b"BENCH001",
        block_cipher_key=KEY,
        authentication_key=AUTH_KEY,
        **case,
    )
    return MeterJob(1, "bench", dlms=settings)


def measure(simulator, job, seconds: float) -> tuple[float, float, int]:
    """(driver readings/s, raw readings/s, requests a reading) on one connection."""
    settings = LinkSettings(simulator.host, simulator.port, timeout=2)
    with RecordingLink(settings) as link:
        association = dlms.open_association(link, job, "wrapper")
        link.sent.clear()
        dlms.read_meter(association, job)
        reading = list(link.sent)
        driver = _rate(lambda: dlms.read_meter(association, job), seconds)
        link.serial.timeout = settings.timeout  # blocking reads (the driver polls)
        raw = _rate(lambda: _replay(link.serial, reading), seconds)
        association.close()
    return driver, raw, len(reading)


def _rate(read, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        read()
        count += 1
    return count / elapsed


def _replay(port, requests) -> None:
    """The requests of one reading as they are; each reply read to its wrapper length
    (8-byte header, length in its last two bytes), not decoded."""
    for request in requests:
        port.write(request)
        header = _read_exactly(port, 8)
        _read_exactly(port, int.from_bytes(header[6:8], "big"))


def _read_exactly(port, size: int) -> bytes:
    data = port.read(size)
    while len(data) < size:
        chunk = port.read(size - len(data))
        if not chunk:
            raise ConnectionError("no reply from the simulator")
        data += chunk
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measure")
    args = parser.parse_args(argv)
    print(f"DLMS readings on one TCP connection (wrapper), {args.seconds:.0f} s per measure")
    for name, case in CASES.items():
        with DlmsSimulator([sim_meter(case)]) as simulator:
            driver, raw, requests = measure(simulator, meter_job(case), args.seconds)
        print(
            f"  {name:<36} driver {driver:>7,.0f} readings/s   raw socket {raw:>7,.0f}"
            f" readings/s   driver/raw {driver / raw:.2f}   ({requests} requests a reading)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
