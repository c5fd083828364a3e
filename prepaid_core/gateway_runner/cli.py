"""``python -m prepaid_core.gateway_runner``: run one gateway's connections outside Odoo.

    python -m prepaid_core.gateway_runner --odoo-url http://odoo:8069 --gateway 7 \\
        --api-key-file /etc/prepaid/gateway-7.key [--mode mqtt|ble|collector] [--broker-host ...]

The gateway key is read from a file (or the ``PREPAID_GATEWAY_API_KEY`` environment
variable), never from the command line, and is never logged: it signs each request and is
not sent (``--unsigned`` sends it instead, for a gateway set to accept that).  The broker
settings come from the gateway's form in Odoo (device API ``config``); options override
them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    backoff_delay,
)
from prepaid_core.gateway_runner.ble import BleBridge
from prepaid_core.gateway_runner.collector import CollectorRunner, CollectorSettings
from prepaid_core.gateway_runner.mqtt import MqttRunner, MqttSettings

_logger = logging.getLogger("prepaid_core.gateway_runner")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prepaid_core.gateway_runner",
        description="Gateway runner: MQTT 4G meters, a Bluetooth bridge or a TCP collector's "
        "buses held open, posting to Odoo.",
        allow_abbrev=False,
    )
    parser.add_argument("--odoo-url", required=True, help="base URL of Odoo, e.g. http://odoo:8069")
    parser.add_argument("--gateway", required=True, type=int, help="gateway id in Odoo")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="file holding the gateway's device API key (else $PREPAID_GATEWAY_API_KEY)",
    )
    parser.add_argument(
        "--mode", choices=("mqtt", "ble", "collector"), help="default: the gateway's type"
    )
    parser.add_argument(
        "--unsigned",
        action="store_true",
        help="send the key itself instead of signing each request (only for a gateway set to "
        "accept unsigned requests)",
    )
    parser.add_argument("--broker-host")
    parser.add_argument("--broker-port", type=int)
    parser.add_argument("--client-id", help="MQTT client id (the persistent session's name)")
    parser.add_argument("--share-group", help="MQTT 5 shared subscription group (scale out)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-wait", type=float, default=0.5, help="seconds")
    parser.add_argument(
        "--command-interval",
        type=float,
        help="seconds between command fetches (default 2 for MQTT, 5 for a collector)",
    )
    parser.add_argument(
        "--dead-letter-file",
        default="dead-letters.jsonl",
        help="where messages set aside are kept when Odoo does not take them (JSON lines)",
    )
    parser.add_argument("--ble-interval", type=float, default=60.0, help="seconds between rounds")
    parser.add_argument("--log-level", default="INFO")
    return parser


def read_api_key(path: Path | None) -> str:
    if path is not None:
        key = path.read_text().strip()
    else:
        key = os.environ.get("PREPAID_GATEWAY_API_KEY", "").strip()
    if not key:
        raise SystemExit("no API key: give --api-key-file or set PREPAID_GATEWAY_API_KEY")
    return key


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    key = read_api_key(args.api_key_file)
    api = DeviceApiClient(args.odoo_url, args.gateway, key, sign=not args.unsigned)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        config = read_config(api, stop)
    except DeviceApiError as exc:
        _logger.error("cannot read the gateway's settings from Odoo: %s", exc)
        return 2
    if config is None:  # stopped while Odoo was away
        return 0
    mode = args.mode or {"mqtt": "mqtt", "ble_bridge": "ble", "tcp_collector": "collector"}.get(
        config.get("gateway_type")
    )
    if mode is None:
        kind = config.get("gateway_type")
        _logger.error("gateway %s is a %s: nothing to run", args.gateway, kind)
        return 2
    if mode == "mqtt":
        return _run_mqtt(api, config.get("mqtt") or {}, args, stop)
    if mode == "collector":
        return _run_collector(api, args, stop)
    return _run_ble(api, args, stop)


def read_config(api, stop: threading.Event, base: float = 2.0, cap: float = 60.0):
    """The gateway's settings from Odoo, asked again (R12: waits doubling, jittered, at
    most ``cap`` seconds) for as long as Odoo cannot be reached: a runner started while
    Odoo restarts waits for it instead of leaving its meters' messages to nobody.  A
    refusal (wrong key, unknown gateway) raises :class:`DeviceApiError` at once; None when
    ``stop`` is set meanwhile."""
    failures = 0
    while not stop.is_set():
        try:
            return api.config()
        except DeviceApiUnavailable as exc:
            failures += 1
            wait = backoff_delay(failures, base, cap)
            _logger.warning("gateway settings: Odoo unavailable (%s); again in %.1fs", exc, wait)
            stop.wait(wait)
    return None


def _run_mqtt(api, broker: dict, args, stop: threading.Event) -> int:
    settings = MqttSettings(
        host=args.broker_host or broker.get("host") or "127.0.0.1",
        port=args.broker_port or broker.get("port") or 1883,
        client_id=args.client_id or broker.get("client_id") or f"prepaid-gateway-{args.gateway}",
        username=broker.get("username") or None,
        password=broker.get("password") or None,
        tls=bool(broker.get("tls")),
        share_group=args.share_group,
        batch_size=args.batch_size,
        batch_wait=args.batch_wait,
        command_interval=args.command_interval or 2.0,
        dead_letter_file=args.dead_letter_file,
    )
    runner = MqttRunner(api, settings).start(wait=0)
    _logger.info("gateway %s: MQTT runner started as %s", args.gateway, settings.client_id)
    try:
        while not stop.wait(30):
            _logger.info("%s", runner.stats)
    finally:
        runner.stop()
    return 0


def _run_collector(api, args, stop: threading.Event) -> int:
    runner = CollectorRunner(
        api,
        CollectorSettings(
            command_interval=args.command_interval or 5.0,
            batch_size=args.batch_size,
            dead_letter_file=args.dead_letter_file,
        ),
    )
    _logger.info("gateway %s: collector runner started", args.gateway)
    runner.run_forever(stop)
    return 0


def _run_ble(api, args, stop: threading.Event) -> int:
    bridge = BleBridge(api)

    async def main():
        event = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(event.set)), daemon=True
        ).start()
        await bridge.run_forever(args.ble_interval, event)

    asyncio.run(main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
