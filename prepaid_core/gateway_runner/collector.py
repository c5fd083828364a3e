"""The collector side of the gateway runner (G1, G3, G4): a TCP collector's buses held open.

Odoo's scheduled action opens a connection per bus for each poll; on a big site the
runner does the same work outside the Odoo workers, with one ``HeldBus`` (a thread and a
kept link) per bus and the same bus drivers (``prepaid_core.buses``). ``CollectorRunner``
fetches and runs commands, polls when the device API says a poll is due, pushes readings,
daily freezes and clocks, reports each poll, and resends from an outbox what Odoo could
not take yet (same message id).

See docs/design.md (Gateway runner) and docs/device_api.md (what each call carries).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prepaid_core import buses
from prepaid_core.buses.common import BusResult, CommandJob, DlmsSettings, LinkSettings, MeterJob
from prepaid_core.gateway_runner.api import (
    DeviceApiClient,
    DeviceApiError,
    DeviceApiUnavailable,
    new_message_id,
)
from prepaid_core.gateway_runner.dead_letters import (
    DeadLetters,
    letter,
    may_be_content,
    server_answers,
)
from prepaid_core.gateway_runner.mapping import with_addresses

__all__ = ["CollectorRunner", "CollectorSettings", "CollectorStats", "HeldBus"]

_logger = logging.getLogger(__name__)

#: relay commands: a confirmed one tells the meter's actual relay state
RELAY_TARGET = {"relay_on": "on", "relay_off": "off"}


@dataclass
class CollectorSettings:
    command_interval: float = 5.0  # seconds between command fetches (and heartbeats)
    config_interval: float = 300.0  # seconds between refreshes of the meter list
    batch_size: int = 1000  # readings per push
    command_limit: int = 500
    retry_wait: float = 2.0
    isolate_after: int = 3  # server errors in a row before a post is suspected (X1)
    dead_letter_file: str = "dead-letters.jsonl"


@dataclass
class CollectorStats:
    polls: int = 0
    commands: int = 0
    readings: int = 0
    stored: int = 0
    failed_meters: int = 0
    connects: int = 0
    api_failures: int = 0
    splits: int = 0
    dead_letters: int = 0
    last_poll_seconds: float = 0.0
    errors: list[str] = field(default_factory=list, repr=False)


class HeldBus:
    """One bus of the collector: its link, held open between polls, and the thread
    that talks over it (one request at a time, meters in turn)."""

    def __init__(self, number: int, protocol: str, settings: LinkSettings):
        self.number = number
        self.protocol = protocol
        self.settings = settings
        self.driver = buses.DRIVERS[protocol]
        self.link = None
        self.connects = 0
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"bus-{number}")

    def __repr__(self):
        return f"<HeldBus {self.number} {self.protocol} {self.settings.where}>"

    def submit(self, jobs: list[MeterJob]):
        return self.executor.submit(self.serve, jobs)

    def serve(self, jobs: list[MeterJob]) -> BusResult:
        """Serve ``jobs`` over the held connection (bus thread); connect when needed."""
        started = time.monotonic()
        if self.link is not None and not self.link.alive():
            self._close()  # closed by the collector while idle: reconnect
        if self.link is None:
            link = self.driver.link(self.settings)
            try:
                link.__enter__()
            except OSError as exc:
                return BusResult(
                    False,
                    f"cannot connect to {self.settings.where}: {exc}",
                    seconds=time.monotonic() - started,
                )
            self.link = link
            self.connects += 1
        result = buses.serve_bus(self.protocol, self.link, jobs)
        if result.error:  # connection lost (the link is closed): reconnect next time
            self.link = None
        result.seconds = time.monotonic() - started
        return result

    def _close(self):
        if self.link is not None:
            self.link.__exit__()
            self.link = None

    def close(self):
        self.executor.submit(self._close).result(30)
        self.executor.shutdown(wait=True)


def _link_settings(collector: dict, bus: dict) -> LinkSettings:
    """The link to one bus of the device API's collector config: its collector's TCP port,
    or a serial device of the runner's machine when the bus names one (``url`` and its
    line settings)."""
    line = {key: bus[key] for key in ("url", "baudrate", "parity", "stopbits") if bus.get(key)}
    return LinkSettings(
        host=collector["host"],
        port=bus["port"],
        timeout=collector["timeout"],
        retries=collector["retries"],
        password=collector["password"],
        operator=collector["operator"],
        utc_offset_minutes=collector["utc_offset_minutes"],
        **line,
    )


class CollectorRunner:
    """Hold one collector's buses, run its commands, poll it on its schedule."""

    def __init__(self, api: DeviceApiClient, settings: CollectorSettings | None = None):
        self.api = api
        self.settings = settings or CollectorSettings()
        self.stats = CollectorStats()
        self.buses: dict[tuple[int, str], HeldBus] = {}
        #: address -> (bus key, the meter's job template)
        self.meters: dict[str, tuple[tuple[int, str], MeterJob]] = {}
        self.poll_interval = 30
        #: (endpoint, payload, message id, suspected: a part of a post that failed)
        self._outbox: list[tuple[str, dict, str, bool]] = []
        self._head_failures = 0  # server errors in a row of the outbox's first post
        self.letters = DeadLetters(api, self.settings.dead_letter_file, "collector-dead")
        self._config_at = 0.0
        self._stop = threading.Event()

    # === CONFIGURATION === #
    def load_config(self) -> None:
        """The collector's buses and meters from Odoo (device API ``config``); buses no
        longer there are closed, new ones opened at their first use."""
        config = self.api.config()
        collector = config.get("collector")
        if collector is None:
            raise ValueError(f"gateway {self.api.gateway_id} is not a TCP collector")
        self.poll_interval = collector["poll_interval"]
        wanted, meters = {}, {}
        for bus in collector["buses"]:
            if bus["protocol"] not in buses.DRIVERS:
                _logger.warning("bus %s: no driver for %s", bus["number"], bus["protocol"])
                continue
            key = (bus["number"], bus["protocol"])  # a serial bus has no TCP port
            wanted[key] = _link_settings(collector, bus)
            for position, meter in enumerate(bus["meters"]):
                try:
                    meters[meter["address"]] = (key, _meter_template(position, meter))
                except ValueError as exc:  # that meter is left out, not the others
                    _logger.warning("bus %s: meter %s left out: %s", key[0], meter["address"], exc)
        for key in list(self.buses):
            if key not in wanted or self.buses[key].settings != wanted[key]:
                self.buses.pop(key).close()
        for key, link_settings in wanted.items():
            if key not in self.buses:
                self.buses[key] = HeldBus(key[0], key[1], link_settings)
        self.meters = meters
        self._config_at = time.monotonic()

    def close(self) -> None:
        for bus in self.buses.values():
            bus.close()
        self.buses.clear()

    # === LOOP === #
    def run_forever(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        try:
            while not stop.is_set():
                try:
                    self.tick()
                    wait = self.settings.command_interval
                except (DeviceApiUnavailable, DeviceApiError) as exc:
                    self.stats.api_failures += 1
                    _logger.warning("%s; retrying in %ss", exc, self.settings.retry_wait)
                    wait = self.settings.retry_wait
                except Exception:
                    # fetched commands not answered are sent again by Odoo after their
                    # answer timeout (same id: a meter never runs one twice)
                    _logger.exception("collector runner: unexpected error; retrying")
                    wait = self.settings.retry_wait
                stop.wait(wait)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> dict:
        """One round: send what is waiting, fetch the commands, run them (with a poll of
        every meter when one is due), post the results.  Returns what was done."""
        self._flush()
        if not self.meters or time.monotonic() - self._config_at > self.settings.config_interval:
            self.load_config()
        answer = self.api.post("commands/fetch", {"limit": self.settings.command_limit})
        commands = answer.get("commands", [])
        if answer.get("busy"):
            # a scheduled poll of Odoo still holds the buses: hand the commands back
            self._queue_acks(
                [
                    {
                        "id": c["id"],
                        "success": False,
                        "delivered": False,
                        "reason": "collector busy",
                    }
                    for c in commands
                ],
                commands,
            )
            self._flush()
            return {"busy": True}
        if any(c["address"] not in self.meters for c in commands):
            self.load_config()  # a meter added since: its bus may be known now
        poll = bool(answer.get("poll_due"))
        done = self._run(
            commands,
            poll,
            frozen_due=set(answer.get("daily_frozen_due") or ()),
            clock_due=set(answer.get("clock_due") or ()),
        )
        self._flush()
        return done

    def _run(
        self,
        commands: list[dict],
        poll: bool,
        frozen_due: set[str] = frozenset(),
        clock_due: set[str] = frozenset(),
    ) -> dict:
        """Run ``commands`` (and, with ``poll``, read every meter) over the held buses,
        then queue the answers and, for a poll, the readings and its report."""
        acks, jobs = self._jobs(commands, poll, frozen_due, clock_due)
        by_bus: dict[tuple[int, str], list[MeterJob]] = {}
        for address, job in jobs.items():
            by_bus.setdefault(self.meters[address][0], []).append(job)
        started_at = time.time()
        futures = {key: self.buses[key].submit(bus_jobs) for key, bus_jobs in by_bus.items()}
        results = {key: _bus_result(key, future) for key, future in futures.items()}
        gathered = RoundOutcome(acks)
        kinds = {c["id"]: c["kind"] for c in commands}
        for key, result in results.items():
            gathered.add(by_bus[key], result, kinds, self.buses[key].settings)
            self._remember_read_modes(result)
        self._queue_acks(gathered.acks, commands)
        self.stats.commands += len(commands)
        done = {"commands": len(commands), "polled": poll}
        if poll:
            done.update(self._queue_poll(gathered, results, started_at))
        return done

    def _jobs(self, commands, poll, frozen_due, clock_due) -> tuple[list[dict], dict]:
        """(answers of commands for meters on no bus, address -> the meter's job)."""
        acks, jobs = [], {}
        for command in commands:
            known = self.meters.get(command["address"])
            if known is None:
                acks.append(
                    {
                        "id": command["id"],
                        "success": False,
                        "permanent": True,
                        "reason": "the meter is on no bus with a driver of this collector",
                    }
                )
                continue
            _key, template = known
            job = jobs.setdefault(template.address, _job(template, read=False))
            job.commands.append(CommandJob(command["id"], command["kind"], command.get("payload")))
        if poll:
            for address, (_key, template) in self.meters.items():
                job = jobs.setdefault(address, _job(template, read=True))
                job.read = True
                job.read_daily_frozen = address in frozen_due
                job.read_clock = address in clock_due
        return acks, jobs

    def _remember_read_modes(self, result: BusResult) -> None:
        """G2: the way each DL/T645 meter's energy answered is tried first at its next
        read, until the config (where Odoo keeps it from the readings) is fetched again."""
        for meter in result.meters:
            way = meter.values.get("read_mode")
            known = self.meters.get(meter.address)
            if way and known is not None:
                known[1].read_mode = way

    def _queue_poll(self, gathered: RoundOutcome, results: dict, started_at: float) -> dict:
        """Queue a poll's readings in batches, its freezes and clocks, and its report."""
        readings, failed = gathered.readings, gathered.failed
        for start in range(0, len(readings), self.settings.batch_size):
            batch = readings[start : start + self.settings.batch_size]
            self._queue("push", {"readings": batch, "events": []})
        if gathered.frozen or gathered.clocks:
            # a message of their own: should Odoo refuse one, the readings are stored
            # anyway, and a freeze Odoo lacks is asked for again at the next poll
            self._queue("push", {"daily_frozen": gathered.frozen, "clocks": gathered.clocks})
        seconds = max((r.seconds for r in results.values()), default=0.0)
        errors = sorted({r.error for r in results.values() if r.error})
        self._queue(
            "runner/report",
            {
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
                "answered": gathered.answered,
                "failed": failed,
                "connected": any(r.connected for r in results.values()) if results else None,
                "errors": errors,
                "seconds": round(seconds, 3),
                "stored": len(readings),
            },
        )
        self.stats.polls += 1
        self.stats.readings += len(readings)
        self.stats.failed_meters += len(failed)
        self.stats.last_poll_seconds = seconds
        self.stats.connects = sum(bus.connects for bus in self.buses.values())
        return {
            "readings": len(readings),
            "failed": len(failed),
            "errors": errors,
            "daily_frozen": len(gathered.frozen),
            "clocks": len(gathered.clocks),
        }

    # === POSTING === #
    def _queue_acks(self, acks: list[dict], commands: list[dict]) -> None:
        """Each answer names the meter its command was run on (the server checks it)."""
        if acks:
            self._queue("commands/ack", {"acks": with_addresses(acks, commands)})

    def _queue(self, endpoint: str, payload: dict) -> None:
        """A post for the outbox, with its message id (a resend is recognised)."""
        message_id = new_message_id(endpoint.replace("/", "-"))
        self._outbox.append((endpoint, payload, message_id, False))

    def _flush(self) -> None:
        """Send the outbox in order; what Odoo cannot take now stays (same message id).

        A post refused for what it carries (4xx), or failing with a server error
        ``isolate_after`` times in a row while Odoo answers an empty message, is split in
        halves until the part that fails is alone; that part is set aside as a dead
        letter (R12, X1): one unusable reading never holds the collector's others."""
        while self._outbox:
            endpoint, payload, message_id, suspected = self._outbox[0]
            try:
                answer = self.api.post(endpoint, payload, message_id)
            except DeviceApiError as exc:
                if exc.status in (401, 403):
                    raise  # wrong key: keep everything until it is fixed
                failure = f"refused: {exc}"
            except DeviceApiUnavailable as exc:
                self._head_failures += 1
                if not (
                    (suspected or self._head_failures >= self.settings.isolate_after)
                    and may_be_content(exc)
                    and server_answers(self.api)
                ):
                    raise
                failure = f"server error: {exc}"
            else:
                self._head_failures = 0
                self._outbox.pop(0)
                if endpoint == "push":
                    self.stats.stored += answer.get("stored", 0)
                    for item in answer.get("rejected", []):
                        _logger.info("device API rejected a reading: %s", item)
                continue
            self._head_failures = 0
            parts = _halves(endpoint, payload)
            if parts is None:
                self._outbox.pop(0)
                self._set_aside(endpoint, payload, failure)
                continue
            self.stats.splits += 1
            _logger.warning("%s failed (%s): split to find what fails", endpoint, failure)
            self._outbox[0:1] = [
                (endpoint, part, f"{message_id}-{index}", True)
                for index, part in enumerate(parts, 1)
            ]

    def _set_aside(self, endpoint: str, payload: dict, failure: str) -> None:
        self.stats.dead_letters += 1
        self.stats.errors.append(f"{endpoint}: {failure}")
        text = json.dumps(payload, default=str, ensure_ascii=False)
        self.letters.bury([letter(f"collector/{endpoint}", text, failure, dt.datetime.now(dt.UTC))])


#: the lists of items of the posts that can be split (a poll's report cannot)
ITEM_LISTS = {
    "push": ("readings", "events", "daily_frozen", "clocks"),
    "commands/ack": ("acks",),
}


def _halves(endpoint: str, payload: dict) -> list[dict] | None:
    """A post's items in two posts of the same shape; None for one item or a post that is
    not a list of items."""
    keys = [key for key in ITEM_LISTS.get(endpoint, ()) if isinstance(payload.get(key), list)]
    items = [(key, item) for key in keys for item in payload[key]]
    if len(items) < 2:
        return None
    half = len(items) // 2
    parts = []
    for chunk in (items[:half], items[half:]):
        part = {**payload, **{key: [] for key in keys}}
        for key, item in chunk:
            part[key].append(item)
        parts.append(part)
    return parts


@dataclass
class RoundOutcome:
    """What the buses of one round gave: the command answers for the device API and,
    for the meters read, their rows (or why they failed)."""

    acks: list[dict]
    readings: list[dict] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    frozen: list[dict] = field(default_factory=list)
    clocks: list[dict] = field(default_factory=list)

    def add(self, jobs: list[MeterJob], result: BusResult, kinds: dict, settings) -> None:
        """The outcome of one bus (``result``) for its ``jobs``; ``kinds``: command id ->
        kind."""
        served = {m.address: m for m in result.meters}
        for job in jobs:
            meter = served.get(job.address)
            error = (meter.error if meter else result.error) or "meter not reached"
            self.acks.extend(_command_acks(job, meter, kinds, error))
            if not job.read:
                continue
            rows = _rows(meter, settings) if meter and meter.ok else None
            if rows is not None:
                self.answered.append(job.address)
                self.readings.append(rows["reading"])
                self.frozen.extend(rows["frozen"])
                self.clocks.extend(rows["clock"])
            elif meter is not None or not result.connected:
                self.failed.append(
                    {"address": job.address, "error": (meter and meter.error) or error}
                )


def _command_acks(job: MeterJob, meter, kinds: dict, error: str) -> list[dict]:
    """The answers to the commands of one meter's ``job``: the outcome of each that ran,
    and, for those that never went on the wire, back to the queue (no attempt used)."""
    acks, handled = [], set()
    for outcome in meter.outcomes if meter else ():
        handled.add(outcome.command_id)
        ack = {
            "id": outcome.command_id,
            "success": outcome.success,
            "reason": outcome.reason,
            "delivered": outcome.delivered,
            "permanent": outcome.permanent,
        }
        if outcome.success and kinds[outcome.command_id] in RELAY_TARGET:
            ack["relay_state"] = RELAY_TARGET[kinds[outcome.command_id]]
        acks.append(ack)
    acks.extend(
        {"id": c.command_id, "success": False, "delivered": False, "reason": error}
        for c in job.commands
        if c.command_id not in handled
    )
    return acks


def _bus_result(key, future) -> BusResult:
    """What a bus thread brought back; a failure of the thread itself fails that bus
    only (its meters are reported failed with the reason), never the other buses."""
    try:
        return future.result()
    except Exception as exc:
        _logger.exception("bus %s failed", key[0])
        return BusResult(False, f"bus {key[0]} failed: {type(exc).__name__}: {exc}")


def _rows(meter, settings: LinkSettings) -> dict | None:
    """The reading, daily freeze and clock rows of a meter that answered; ``None``, with
    the reason in ``meter.error`` and the log, when its values cannot make them."""
    values = meter.values
    try:
        return {
            "reading": _reading(meter),
            "frozen": [_frozen(meter, settings)] if values.get("daily_frozen") else [],
            "clock": [_clock(meter)] if values.get("clock") else [],
        }
    except Exception as exc:
        meter.ok = False
        meter.error = f"unusable values: {type(exc).__name__}: {exc}"
        _logger.warning("meter %s failed: %s", meter.address, meter.error)
        return None


def _meter_template(position: int, meter: dict) -> MeterJob:
    """A meter of the config as a job template: its Modbus unit id and register map, and
    how a DL/T645 meter is read as Odoo's own poll reads it (G2/M2: the way that worked
    last, the register that bills, whether it keeps its own balance; its model's read way
    and wake-up bytes, the defaults for a config that names none)."""
    wake_up_bytes = meter.get("wake_up_bytes")
    return MeterJob(
        position,
        meter["address"],
        unit_id=meter.get("unit_id") or 0,
        register_map=meter.get("register_map") or "",
        read_mode=meter.get("read_mode") or "",
        billing_register=meter.get("billing_register") or "combined",
        read_balance=bool(meter.get("read_balance")),
        read_way=meter.get("read_way") or MeterJob.read_way,
        wake_up_bytes=MeterJob.wake_up_bytes if wake_up_bytes is None else wake_up_bytes,
        dlms=DlmsSettings.from_config(meter["dlms"]) if meter.get("dlms") else None,
    )


def _job(template: MeterJob, read: bool) -> MeterJob:
    return dataclasses.replace(template, commands=[], read=read)


def _reading(meter) -> dict:
    """A meter's reading for the device API, with ``read_mode`` (DL/T645: the way its
    energy answered) for Odoo to keep."""
    values = meter.values
    row = {"address": meter.address, "read_at": meter.read_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    row.update({key: values[key] for key in buses.POLLED_VALUES if key in values})
    if values.get("read_mode"):
        row["read_mode"] = values["read_mode"]
    return row


def _utc(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(meter, settings: LinkSettings) -> dict:
    """A meter's daily freeze for the device API: its time in UTC (the meter froze at its
    local midnight, ``utc_offset_minutes`` ahead of UTC)."""
    frozen = meter.values["daily_frozen"]
    offset = dt.timedelta(minutes=settings.utc_offset_minutes)
    row = {"address": meter.address, "frozen_at": _utc(frozen["frozen_at"] - offset)}
    row.update({key: value for key, value in frozen.items() if key != "frozen_at"})
    return row


def _clock(meter) -> dict:
    clock = meter.values["clock"]
    return {
        "address": meter.address,
        "checked_at": _utc(clock["checked_at"]),
        "drift_seconds": clock["drift_seconds"],
    }
