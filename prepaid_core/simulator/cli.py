"""Start a fleet of simulated meters (G7, X3): ``python -m prepaid_core.simulator``.

    python -m prepaid_core.simulator --collectors 2 --buses 2 --meters 32 \\
        --mqtt-meters 100 --mqtt-host 127.0.0.1 --mqtt-port 1883 --speed 60 --base-port 9100

Collector ``c`` (0-based), bus ``b`` listens on ``base_port + c * buses + b`` (``--base-port
0``: free ports chosen by the system); its meters have the DL/T645 addresses
``00 CCC BBB MMMM`` (collector, bus, meter, 1-based), e.g. ``000010010001``; on a Modbus
bus (``--protocol modbus``, or ``mixed``: the last bus of each collector) the unit id is
the meter's position (1..32). MQTT meters are ``9NNNNNNNNNNN``. ``--start-broker`` starts
a private Mosquitto (Debian package) instead of using ``--mqtt-host/--mqtt-port``.
``--json`` prints the same description as one JSON line (for scripts and tests). Every
meter derives its token key from ``--vending-key`` (hex) and its address. ``--load
ADDRESS=WATTS`` gives a meter a steady load (a demo's heavy consumer) instead of its daily
profile; ``--registers FILE`` starts meters at the import totals a platform last read from
them (JSON ``{address: kWh}``), so a restarted fleet goes on counting instead of starting
at zero (which a platform would flag as a rollback). ``--balances FILE`` (JSON ``{address:
money}``) starts those meters with that balance instead of ``--balance``: meters that keep
their own balance start with what the platform counts for them.

STS keypad meters (G10): ``--sts-meter ADDRESS=METER_NUMBER`` makes the site's meter ADDRESS
take STS tokens, its decoder key derived by DKGA02 from ``--sts-vending-key`` (hex, 8 bytes),
``--sts-sgc``, ``--sts-ti``, ``--sts-krn`` and the meter number (11 digits, the STS IIN
600727 put before them, or the 17/18-digit PAN); an ADDRESS the site has no meter for is a
keypad-only meter. ``--keypad`` reads ``ADDRESS TOKEN`` lines on the standard input while
the fleet runs and types each token on that meter's keypad (STS or the own keypad form),
one result line per token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from prepaid_core import sts
from prepaid_core.simulator.clock import AcceleratedClock
from prepaid_core.simulator.collector import MAX_METERS_PER_BUS, Bus, Collector
from prepaid_core.simulator.meter import (
    TOKEN_ERRORS,
    LoadProfile,
    MeterConfig,
    VirtualMeter,
    token_detail,
)

__all__ = ["build_parser", "main", "run"]

DEFAULT_VENDING_KEY = MeterConfig("000000000000").vending_key
#: the issuer identification number of STS meter numbers (IEC 62055-41)
STS_IIN = "600727"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prepaid_core.simulator",
        description="Start simulated prepaid meters: TCP collectors and 4G MQTT meters.",
    )
    parser.add_argument("--collectors", type=int, default=1, help="TCP collectors")
    parser.add_argument("--buses", type=int, default=2, help="RS-485 buses per collector")
    parser.add_argument(
        "--meters", type=int, default=8, help=f"meters per bus (<= {MAX_METERS_PER_BUS})"
    )
    parser.add_argument(
        "--protocol", choices=("dlt645", "modbus", "mixed"), default="dlt645", help="bus protocol"
    )
    parser.add_argument("--baud", type=int, default=2400, help="bus baud rate (8E1)")
    parser.add_argument("--base-port", type=int, default=9100, help="port of the first bus")
    parser.add_argument("--host", default="127.0.0.1", help="address the collectors listen on")
    parser.add_argument("--mqtt-meters", type=int, default=0, help="4G meters over MQTT")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument(
        "--start-broker", action="store_true", help="start a private mosquitto for MQTT meters"
    )
    parser.add_argument(
        "--reading-interval", type=float, default=60.0, help="simulated seconds between readings"
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--seed", type=int, default=0, help="seed of the load profiles")
    parser.add_argument("--balance", type=Decimal, default=Decimal(100), help="initial balance")
    parser.add_argument("--price", type=Decimal, default=Decimal("0.6"), help="price per kWh")
    parser.add_argument(
        "--vending-key", default=DEFAULT_VENDING_KEY.hex(), help="vending key (hex)"
    )
    parser.add_argument(
        "--vending-key-file",
        type=Path,
        help="file holding the vending key (hex): keeps it off the command line",
    )
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="ADDRESS=WATTS",
        help="a steady load for one meter instead of its daily profile (repeatable)",
    )
    parser.add_argument(
        "--registers",
        type=Path,
        help="JSON file {address: kWh}: the import register of those meters at start "
        "(e.g. the last totals a platform read, so a restarted fleet goes on counting)",
    )
    parser.add_argument(
        "--balances",
        type=Path,
        help="JSON file {address: money}: the balance those meters start with instead of "
        "--balance (meters that keep their own balance, as the platform expects them)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        help="JSON-lines file: each 4G reading the broker acknowledged (kind, address, "
        "msg_id, ts), appended as it is acknowledged: what the fleet handed over, to check "
        "a platform's store against",
    )
    parser.add_argument("--duration", type=float, default=0, help="stop after N s (0: never)")
    parser.add_argument("--json", action="store_true", help="print the fleet as one JSON line")
    _add_sts_arguments(parser)
    return parser


def _add_sts_arguments(parser: argparse.ArgumentParser) -> None:
    sts_group = parser.add_argument_group("STS keypad meters")
    sts_group.add_argument(
        "--sts-meter",
        action="append",
        default=[],
        metavar="ADDRESS=METER_NUMBER",
        help="meter ADDRESS takes STS tokens (a keypad-only meter if the site has no such "
        "meter); METER_NUMBER: 11 digits or the 17/18-digit PAN (repeatable)",
    )
    sts_group.add_argument("--sts-vending-key", help="STS vending key, 8 bytes hex (DKGA02)")
    sts_group.add_argument(
        "--sts-vending-key-file", type=Path, help="file holding the STS vending key (hex)"
    )
    sts_group.add_argument("--sts-sgc", default="", help="supply group code, 6 digits")
    sts_group.add_argument("--sts-ti", default="01", help="tariff index, 2 digits")
    sts_group.add_argument("--sts-krn", type=int, default=1, help="key revision number, 1-9")
    sts_group.add_argument(
        "--keypad",
        action="store_true",
        help="read 'ADDRESS TOKEN' lines on stdin and type each token on that meter",
    )


def _check(args: argparse.Namespace) -> None:
    if not 0 < args.meters <= MAX_METERS_PER_BUS:
        raise SystemExit(f"--meters must be 1..{MAX_METERS_PER_BUS} (an RS-485 bus)")
    if args.collectors < 0 or args.buses < 1 or args.mqtt_meters < 0:
        raise SystemExit("--collectors, --buses and --mqtt-meters must not be negative")
    if args.collectors > 999 or args.buses > 999:
        raise SystemExit("at most 999 collectors of 999 buses")
    if args.speed <= 0:
        raise SystemExit("--speed must be positive")
    try:
        bytes.fromhex(args.vending_key)
    except ValueError:
        raise SystemExit("--vending-key must be hex") from None


def _parse_loads(values: list[str]) -> dict[str, int]:
    loads = {}
    for value in values:
        address, _, watts = value.partition("=")
        try:
            loads[address.strip()] = int(watts)
        except ValueError:
            raise SystemExit(f"--load {value!r}: expected ADDRESS=WATTS") from None
        if loads[address.strip()] < 0:
            raise SystemExit(f"--load {value!r}: watts must not be negative")
    return loads


def _read_balances(path: Path | None) -> dict[str, Decimal]:
    if path is None:
        return {}
    try:
        balances = {str(k): Decimal(str(v)) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, ArithmeticError) as exc:
        raise SystemExit(f"--balances {path}: {exc}") from None
    if not all(v.is_finite() for v in balances.values()):
        raise SystemExit(f"--balances {path}: balances must be finite")
    return balances


def _read_registers(path: Path | None) -> dict[str, Decimal]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
        registers = {str(k): Decimal(str(v)) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, ArithmeticError) as exc:
        raise SystemExit(f"--registers {path}: {exc}") from None
    if any(not v.is_finite() or v < 0 for v in registers.values()):
        raise SystemExit(f"--registers {path}: registers must be finite and not negative")
    return registers


class StsMeterSpec(NamedTuple):
    """An ``--sts-meter``: its meter number as given and its DKGA02 decoder key."""

    meter_number: str
    decoder_key: bytes


def _sts_meters(args) -> dict[str, StsMeterSpec]:
    """The ``--sts-meter`` meters by address."""
    if not args.sts_meter:
        return {}
    vending_key = _sts_vending_key(args)
    meters = {}
    for value in args.sts_meter:
        address, _, number = (part.strip() for part in value.partition("="))
        if not (len(address) == 12 and address.isdigit()):
            raise SystemExit(f"--sts-meter {value!r}: the address is 12 digits")
        pan = STS_IIN + number if len(number) == 11 else number
        try:
            key = sts.decoder_key_dkga02(vending_key, args.sts_sgc, args.sts_ti, args.sts_krn, pan)
        except sts.StsError as exc:
            raise SystemExit(f"--sts-meter {value!r}: {exc}") from None
        meters[address] = StsMeterSpec(number, key)
    return meters


def _sts_vending_key(args) -> bytes:
    text = args.sts_vending_key
    if args.sts_vending_key_file is not None:
        try:
            text = args.sts_vending_key_file.read_text().strip()
        except OSError as exc:
            raise SystemExit(f"--sts-vending-key-file: {exc}") from None
    try:
        key = bytes.fromhex(text or "")
    except ValueError:
        key = b""
    if len(key) != 8:
        raise SystemExit("--sts-meter needs --sts-vending-key: 8 bytes in hex")
    return key


def _sts_options(spec: StsMeterSpec | None) -> dict:
    return {} if spec is None else {"token_format": "sts", "decoder_key": spec.decoder_key}


def _meter(args, clock, address: str, index: int) -> VirtualMeter:
    watts = args.loads.get(address)
    if watts is None:
        profile = LoadProfile(seed=args.seed * 100_003 + index)
    else:  # steady, with a little noise, whatever the hour
        profile = LoadProfile(seed=index, base_w=watts, peak_w=watts, noise=0.02, shape=(1.0,) * 24)
    config = MeterConfig(
        address,
        vending_key=bytes.fromhex(args.vending_key),
        balance=args.initial_balances.get(address, args.balance),
        price=args.price,
        profile=profile,
        initial_kwh=args.initial_registers.get(address, Decimal(0)),
        **_sts_options(args.sts.get(address)),
    )
    meter = args.site[address] = VirtualMeter(config, clock)
    return meter


async def run(args: argparse.Namespace, *, out=sys.stdout) -> None:
    """Start the fleet, print what was started, run until ``--duration`` or a signal."""
    if args.vending_key_file is not None:
        try:
            args.vending_key = args.vending_key_file.read_text().strip()
        except OSError as exc:
            raise SystemExit(f"--vending-key-file: {exc}") from None
    _check(args)
    args.loads = _parse_loads(args.load)
    args.initial_registers = _read_registers(args.registers)
    args.initial_balances = _read_balances(args.balances)
    args.sts, args.site = _sts_meters(args), {}
    clock = AcceleratedClock(speed=args.speed)
    async with contextlib.AsyncExitStack() as stack:
        collectors = await _start_collectors(args, clock, stack)
        description = {
            "speed": args.speed,
            "collectors": [_describe_collector(args, collector) for collector in collectors],
            "mqtt": None,
        }
        first_index = args.collectors * args.buses * args.meters
        if args.mqtt_meters:
            description["mqtt"] = await _start_mqtt_fleet(args, clock, first_index, stack)
        description["sts"] = _start_keypad_meters(args, clock, first_index + args.mqtt_meters)
        _print(description, args, out)
        if args.keypad:
            _read_keypad(args.site, sys.stdin, out, args.json)
        await _run_until_stopped(args.duration)


def _start_keypad_meters(args, clock, first_index: int) -> list[dict]:
    """The ``--sts-meter`` meters the site has no transport for (keypad only); returns
    what is printed of every STS meter."""
    described = []
    for n, (address, spec) in enumerate(args.sts.items(), start=1):
        keypad_only = address not in args.site
        if keypad_only:
            _meter(args, clock, address, first_index + n)
        described.append(
            {"address": address, "meter_number": spec.meter_number, "keypad_only": keypad_only}
        )
    return described


def _read_keypad(site: dict[str, VirtualMeter], stream, out, as_json: bool) -> None:
    """Type the tokens of ``ADDRESS TOKEN`` lines from ``stream`` (read by a thread of its
    own that never holds the process) on the meters, in the event loop."""
    loop = asyncio.get_running_loop()

    def read() -> None:
        for line in stream:
            with contextlib.suppress(RuntimeError):  # the loop has closed: stopping
                loop.call_soon_threadsafe(_type_token, site, line, out, as_json)

    threading.Thread(target=read, name="keypad", daemon=True).start()


def _type_token(site: dict[str, VirtualMeter], line: str, out, as_json: bool) -> None:
    """Type one line's token on its meter and print what the meter did."""
    address, _, token = line.strip().partition(" ")
    if not address:
        return
    result = {"address": address, "accepted": False}
    meter = site.get(address)
    if meter is None:
        result["error"] = "no such meter"
    else:
        try:
            result["token"] = token_detail(meter.enter_keypad(token.strip()))
            result["accepted"] = True
        except TOKEN_ERRORS as error:
            result["error"] = f"{type(error).__name__}: {error}"
        result["balance"] = str(meter.snapshot().balance)
    if as_json:
        text = json.dumps(result)
    elif result["accepted"]:
        text = f"{address}: {result['token']} accepted, balance {result['balance']}"
    else:
        text = f"{address}: refused, {result['error']}"
    print(text, file=out, flush=True)


async def _start_collectors(args, clock, stack) -> list[Collector]:
    """The simulated TCP collectors, started (closed when ``stack`` unwinds)."""
    collectors, index = [], 0
    for c in range(args.collectors):
        buses = []
        for b in range(args.buses):
            meters = []
            for m in range(args.meters):
                index += 1
                meters.append(_meter(args, clock, f"00{c + 1:03d}{b + 1:03d}{m + 1:04d}", index))
            modbus = args.protocol == "modbus" or (args.protocol == "mixed" and b == args.buses - 1)
            port = 0 if args.base_port == 0 else args.base_port + c * args.buses + b
            buses.append(
                Bus.of_meters(meters, "modbus" if modbus else "dlt645", baud=args.baud, port=port)
            )
        collector = Collector(buses, host=args.host, name=f"collector{c + 1}")
        await collector.start()
        stack.push_async_callback(collector.close)
        collectors.append(collector)
    return collectors


def _describe_collector(args, collector: Collector) -> dict:
    """What is printed of a started collector: its buses, their ports and meters."""
    return {
        "name": collector.name,
        "buses": [
            {
                "host": args.host,
                "port": bus.port,
                "protocol": bus.protocol,
                "baud": bus.baud,
                "meters": [
                    {"address": r.meter.address, "unit_id": getattr(r, "unit_id", None)}
                    for r in bus.responders
                ],
            }
            for bus in collector.buses
        ],
    }


async def _start_mqtt_fleet(args, clock, first_index: int, stack) -> dict:
    """The 4G meters over MQTT (and their own Mosquitto with ``--start-broker``),
    started and stopped when ``stack`` unwinds; returns what is printed of them."""
    from prepaid_core.simulator.mqtt_meter import MqttFleet  # noqa: PLC0415 (optional)

    host, port = args.mqtt_host, args.mqtt_port
    if args.start_broker:
        from prepaid_core.simulator.broker import start_mosquitto  # noqa: PLC0415

        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="prepaid-sim-broker-"))
        broker = start_mosquitto(Path(tmp))
        stack.callback(broker.stop)
        host, port = broker.host, broker.port
    meters = [
        _meter(args, clock, f"9{n:011d}", first_index + n) for n in range(1, args.mqtt_meters + 1)
    ]
    record = None
    if args.record:
        record = stack.enter_context(args.record.open("a", encoding="utf-8"))
    fleet = MqttFleet(
        meters,
        host,
        port,
        clock,
        reading_interval=args.reading_interval,
        record=_recorder(record) if record else None,
    )
    await fleet.start()
    stack.push_async_callback(fleet.stop)
    return {
        "host": host,
        "port": port,
        "meters": args.mqtt_meters,
        "connected": fleet.stats.connected,
        "first": meters[0].address,
        "last": meters[-1].address,
    }


async def _run_until_stopped(duration) -> None:
    """Wait for SIGINT/SIGTERM, or ``duration`` seconds when given."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if duration:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    else:
        await stop.wait()


def _recorder(out):
    """A fleet record callback writing one JSON line per acknowledged message."""

    def write(kind, address, msg_id, ts):
        out.write(
            json.dumps({"kind": kind, "address": address, "msg_id": msg_id, "ts": ts.isoformat()})
            + "\n"
        )
        out.flush()

    return write


def _print(description: dict, args, out) -> None:
    if args.json:
        print(json.dumps(description), file=out, flush=True)
        return
    print(f"prepaid meter simulator, speed x{args.speed:g}", file=out)
    for collector in description["collectors"]:
        print(f"{collector['name']}:", file=out)
        for bus in collector["buses"]:
            meters = bus["meters"]
            first, last = meters[0]["address"], meters[-1]["address"]
            units = f", unit ids 1..{len(meters)}" if bus["protocol"] == "modbus" else ""
            print(
                f"  {bus['host']}:{bus['port']}  {bus['protocol']} {bus['baud']} baud 8E1, "
                f"{len(meters)} meters {first}..{last}{units}",
                file=out,
            )
    for meter in description["sts"]:
        where = "keypad only" if meter["keypad_only"] else "STS tokens"
        print(f"STS meter {meter['address']}: number {meter['meter_number']}, {where}", file=out)
    mqtt = description["mqtt"]
    if mqtt:
        print(
            f"MQTT: {mqtt['meters']} meters {mqtt['first']}..{mqtt['last']} on "
            f"{mqtt['host']}:{mqtt['port']} ({mqtt['connected']} connected), "
            f"topics prepaid/v1/<address>/...",
            file=out,
        )
    print("running; Ctrl-C stops", file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
