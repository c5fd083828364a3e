"""The Bluetooth bridge mode of the gateway runner (G2 BLE GATT, G6 tokens).

A bridge is a small computer near the meters (a phone or a Raspberry Pi in the building)
with the credentials of one ``ble_bridge`` gateway. Each round it fetches its gateway's
pending commands, connects to each meter in range with bleak, reads it, writes its credit
tokens in strict sequence order (R10), and posts the readings and then the command results
to the device API. A meter out of range leaves its commands queued without using an
attempt; commands other than tokens are answered as failed (the GATT profile takes only
tokens).

See docs/tokens.md (delivery order) and docs/protocols.md (the GATT profile).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bleak import BleakClient
from bleak.exc import BleakError

from prepaid_core.gateway_runner.api import DeviceApiClient, new_message_id
from prepaid_core.gateway_runner.mapping import with_addresses
from prepaid_core.protocols.ble import TokenStatus, read_meter, send_token
from prepaid_core.tokens import TokenError, token_from_text

UTC = timezone.utc  # datetime.UTC is Python 3.11+

__all__ = ["BleBridge", "BridgeStats"]

_logger = logging.getLogger(__name__)


@dataclass
class BridgeStats:
    rounds: int = 0
    readings: int = 0
    tokens_applied: int = 0
    tokens_already_applied: int = 0
    tokens_refused: int = 0
    out_of_range: int = 0
    results: list[dict] = field(default_factory=list, repr=False)


def _sequence(command: dict) -> int:
    sequence = (command.get("payload") or {}).get("sequence")
    return sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else 0


def _held_back(command: dict, waiting: int) -> dict:
    """The answer for a token not written because an older one is not applied yet."""
    return {
        "id": command["id"],
        "success": False,
        "delivered": False,
        "reason": f"waiting for token {waiting} to be applied first",
    }


def _reading_row(reading) -> dict:
    return {
        "address": reading.address,
        "read_at": datetime.fromtimestamp(reading.meter_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "forward_total": reading.forward_kwh,
        "reverse_total": reading.reverse_kwh,
        "relay_state": reading.relay,
        "status_word": reading.status_word,
        "voltage": reading.voltage_v,
        "current": reading.current_a,
        "power": reading.power_kw,
        "power_factor": reading.pf,
        "meter_balance": reading.balance,
    }


class BleBridge:
    """Deliver tokens and collect readings of the Bluetooth meters of one gateway.

    ``meters``: ``{address: mac}`` of the meters the bridge serves (``None``: asked from
    the device API's ``config``); ``backend`` and ``backend_kwargs`` go to ``BleakClient``
    (tests and the demo use ``prepaid_core.simulator.ble.FakeBleakBackend``).
    """

    def __init__(
        self,
        api: DeviceApiClient,
        meters: dict[str, str] | None = None,
        *,
        backend=None,
        backend_kwargs: dict | None = None,
        connect_timeout: float = 10.0,
    ):
        self.api = api
        self.meters = meters
        self.backend = backend
        self.backend_kwargs = backend_kwargs or {}
        self.connect_timeout = connect_timeout
        self.stats = BridgeStats()

    def _client(self, mac: str) -> BleakClient:
        kwargs = dict(self.backend_kwargs, timeout=self.connect_timeout)
        if self.backend is not None:
            kwargs["backend"] = self.backend
        return BleakClient(mac, **kwargs)

    async def run_once(self) -> dict:
        """One round over every meter; returns what was posted."""
        loop = asyncio.get_running_loop()
        if self.meters is None:
            config = await loop.run_in_executor(None, self.api.config)
            self.meters = {m["address"]: m["mac"] for m in config.get("ble_meters", [])}
        commands = await loop.run_in_executor(None, self.api.fetch_commands, 500)
        by_address: dict[str, list[dict]] = {}
        for command in commands:
            by_address.setdefault(command["address"], []).append(command)
        readings, acks = [], []
        for address in sorted(set(self.meters) | set(by_address)):
            meter_commands = by_address.get(address, [])
            mac = self.meters.get(address)
            if not mac:
                acks += [
                    {"id": c["id"], "success": False, "reason": "no Bluetooth address known"}
                    for c in meter_commands
                ]
                continue
            reading, meter_acks = await self._visit(address, mac, meter_commands)
            if reading:
                readings.append(reading)
            acks += meter_acks
        if readings:
            # readings first: a credit confirmed below is already reflected in them
            await loop.run_in_executor(None, lambda: self.api.push(readings, []))
        if acks:
            acks = with_addresses(acks, commands)  # each answer names its command's meter
            await loop.run_in_executor(
                None, lambda: self.api.ack(acks, message_id=new_message_id("ble-ack"))
            )
        self.stats.rounds += 1
        self.stats.readings += len(readings)
        self.stats.results.extend(acks)
        return {"readings": readings, "acks": acks}

    async def _visit(self, address: str, mac: str, commands: list[dict]):
        acks = []
        tokens = [c for c in commands if c["kind"] == "credit"]
        for command in commands:
            if command["kind"] != "credit":
                acks.append(
                    {
                        "id": command["id"],
                        "success": False,
                        "reason": f"{command['kind']} is not supported over Bluetooth",
                        "permanent": True,
                    }
                )
        tokens.sort(key=_sequence)
        try:
            async with self._client(mac) as client:
                held = (await read_meter(client)).last_token_sequence
                waiting = None  # the token newer ones wait for
                for command in tokens:
                    after = (command.get("payload") or {}).get("after_sequence") or 0
                    if waiting is None and held < after:
                        waiting = after
                    if waiting is not None:
                        acks.append(_held_back(command, waiting))
                        continue
                    ack = await self._deliver(client, command)
                    acks.append(ack)
                    if ack["success"]:
                        held = max(held, _sequence(command))
                    else:
                        waiting = _sequence(command)
                reading = await read_meter(client)
        except (BleakError, OSError, TimeoutError) as exc:
            self.stats.out_of_range += 1
            _logger.info("meter %s (%s) not reached: %s", address, mac, exc)
            done = {ack["id"] for ack in acks}
            acks += [
                {
                    "id": c["id"],
                    "success": False,
                    "delivered": False,
                    "reason": f"meter not reached over Bluetooth: {exc}",
                }
                for c in tokens
                if c["id"] not in done
            ]
            return None, acks
        if reading.address != address:
            _logger.error("meter at %s answers as %s, expected %s", mac, reading.address, address)
        return _reading_row(reading), acks

    async def _deliver(self, client: BleakClient, command: dict) -> dict:
        payload = command.get("payload") or {}
        try:
            token = token_from_text(payload["token"])
        except (KeyError, TokenError) as exc:
            self.stats.tokens_refused += 1
            return {
                "id": command["id"],
                "success": False,
                "reason": f"bad token: {exc}",
                "permanent": True,
            }
        result = await send_token(client, token)
        sequence = payload.get("sequence")
        if result.status == TokenStatus.ACCEPTED:
            self.stats.tokens_applied += 1
            return {
                "id": command["id"],
                "success": True,
                "reason": f"token {result.sequence} accepted, balance {result.balance}",
            }
        if result.status == TokenStatus.REPLAYED:
            reading = await read_meter(client)
            if sequence and reading.last_token_sequence >= sequence:
                # accepted on an earlier visit whose result was lost (tokens reach a meter
                # in order: one past this sequence has applied it): never applied twice
                self.stats.tokens_already_applied += 1
                return {
                    "id": command["id"],
                    "success": True,
                    "reason": (
                        f"token {sequence} was already applied "
                        f"(meter's last sequence {reading.last_token_sequence})"
                    ),
                }
        self.stats.tokens_refused += 1
        return {
            "id": command["id"],
            "success": False,
            "reason": f"meter refused the token: {result.status.name.lower()}",
            # a token the meter refuses (not authentic, wrong meter, replayed) stays refused
            "permanent": True,
        }

    async def run_forever(self, interval: float = 60.0, stop: asyncio.Event | None = None):
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                _logger.exception("bridge round failed; next round in %ss", interval)
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
