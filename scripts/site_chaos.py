#!/usr/bin/env python3
"""X1 under faults: the demo's whole stack while things break, then what must still hold.

During a fleet's run (the demo's :class:`demo_stack.Stack`), :func:`run_chaos` kills Odoo
workers and gateway runners, restarts PostgreSQL (a crash) and Mosquitto, publishes hostile
messages (:class:`Hostile`) and pays recharges, each notification sent twice;
:func:`check_site` then checks, against the simulator's record, that nothing was lost,
doubled or charged differently from a clean run. No Odoo import here except in the clean
run, which runs in a process of its own (``python3 scripts/site_chaos.py clean-run DB``).

See docs/field_safety.md (the faults and the checks).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as paho
import psycopg2
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_stack

from prepaid_core.protocols import mqtt_schema as schema

# === THE SIMULATOR'S RECORD === #


def read_record(path: Path, until: datetime | None = None) -> list[dict]:
    """The 4G readings the broker acknowledged (the simulator's ``--record``), up to
    ``until``; each with its time as the message carried it (milliseconds)."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        ts = datetime.fromisoformat(row["ts"])
        row["ts"] = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
        if until is None or row["ts"] <= until:
            rows.append(row)
    return rows


def account_for_readings(cr, acked: list[dict]) -> dict:
    """Each acknowledged reading: stored (once: the store's key is meter and time), or
    rejected with a reason (a rejected reading, or a dead letter of the gateway runner,
    whose payload carries the reading's time as the meter sent it)."""
    cr.execute(
        "CREATE TEMP TABLE IF NOT EXISTS acked_reading (address varchar, read_at timestamp, "
        "sent varchar)"
    )
    cr.execute("TRUNCATE acked_reading")
    cr.execute(
        "INSERT INTO acked_reading SELECT * FROM unnest(%s::varchar[], %s::timestamp[], %s)",
        [
            [row["address"] for row in acked],
            [row["ts"].astimezone(UTC).replace(tzinfo=None, microsecond=0) for row in acked],
            [schema.format_ts(row["ts"]) for row in acked],
        ],
    )
    cr.execute(
        """
        SELECT count(*) AS acknowledged,
               count(*) FILTER (WHERE s.n = 1) AS stored,
               count(*) FILTER (WHERE s.n > 1) AS stored_twice,
               count(*) FILTER (WHERE s.n = 0 AND j.n > 0) AS rejected,
               count(*) FILTER (WHERE s.n = 0 AND j.n = 0) AS missing
          FROM acked_reading a
          JOIN prepaid_meter m ON m.address = a.address
          CROSS JOIN LATERAL (SELECT count(*) AS n FROM prepaid_meter_reading_store r
                               WHERE r.meter_id = m.id AND r.read_at = a.read_at) s
          CROSS JOIN LATERAL (
                SELECT (SELECT count(*) FROM prepaid_meter_reading_rejection j
                         WHERE j.address = a.address AND strpos(j.payload, a.sent) > 0)
                     + (SELECT count(*) FROM meter_gateway_dead_letter d
                         WHERE d.address = a.address AND strpos(d.payload, a.sent) > 0) AS n
          ) j
        """
    )
    names = [column.name for column in cr.description]
    return dict(zip(names, cr.fetchone(), strict=True))


# === HOSTILE MESSAGES === #


class Hostile:
    """An MQTT client of the site's broker that listens to the meters' readings and
    commands and sends what a broken or malicious device would."""

    def __init__(self, port: int, meters: list[str], foreign: str, seed: int = 0):
        self.meters, self.foreign = meters, foreign
        self.random = random.Random(seed)
        self.sent = Counter()
        self.readings: list[tuple[str, bytes]] = []  # (topic, payload) of real readings
        self.commands: list[tuple[str, str]] = []  # (address, cmd_id) of real commands
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"hostile-{seed}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=30)
        self.client.reconnect_delay_set(1, 2)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([("prepaid/v1/+/reading", 0), ("prepaid/v1/+/cmd", 0)])

    def _on_message(self, client, userdata, message):
        kind = message.topic.rsplit("/", 1)[-1]
        with self.lock:
            if kind == "reading":
                self.readings.append((message.topic, message.payload))
            elif kind == "cmd":
                match = re.search(rb'"cmd_id"\s*:\s*"([^"]+)"', message.payload)
                if match:
                    self.commands.append((message.topic.split("/")[2], match.group(1).decode()))

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()

    def _publish(self, what: str, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)
        self.sent[what] += 1

    def strike(self) -> None:
        """One round of every kind of hostile message."""
        now = datetime.now(UTC)
        stamp = schema.format_ts(now)
        meter = self.random.choice(self.meters)
        topic = schema.topic_for(meter, schema.READING)
        for payload in (
            b"\xff\xfe{not json",
            b'{"msg_id": "h-1", "ts": "' + stamp.encode() + b'", "forward_kwh": 1e-20000}',
            b'{"msg_id": "h-2", "ts": "' + stamp.encode() + b'", "forward_kwh": 1e400}',
            b'{"msg_id": "h-3\\u0000", "ts": "' + stamp.encode() + b'", "forward_kwh": "12"}',
            b'{"msg_id": "h-4", "ts": "9999-12-31T23:59:59Z", "forward_kwh": 1}',
            b'{"msg_id": "' + b"x" * 100_000 + b'", "ts": "' + stamp.encode() + b'"}',
        ):
            self._publish("malformed", topic, payload)
        with self.lock:
            readings, commands = list(self.readings), list(self.commands)
        if readings:
            self._publish("duplicate", *readings[-1])
            self._publish("reordered", *readings[len(readings) // 3])
            # a real reading published under another gateway's meter
            self._publish(
                "spoofed reading", schema.topic_for(self.foreign, schema.READING), readings[-1][1]
            )
        if commands:
            target, cmd_id = commands[-1]
            other = next((m for m in self.meters if m != target), self.meters[0])
            ack = schema.Ack(f"h-ack-{cmd_id}", now, cmd_id, "ok", relay="on")
            self._publish(
                "spoofed ack",
                schema.topic_for(other, schema.ACK),
                schema.encode(ack, validate=False),
            )


# === FAULTS === #


def restart_postgres() -> str:
    """Restart the project's PostgreSQL in immediate mode (no shutdown checkpoint: a
    crash as far as the data are concerned; the server recovers from its WAL)."""
    data = _psql("SHOW data_directory")
    owner = Path(data).stat().st_uid
    # the server's log: where the project's scripts keep it, beside the data directory
    log = Path(data).parent / "server.log"
    cmd = [_pg_ctl(), "-D", data, "-l", str(log), "-m", "immediate", "-w", "-t", "120"]
    if os.getuid() == 0 and owner != 0:
        import pwd  # noqa: PLC0415

        cmd = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *cmd]
    # no pipes: the new server would hold them open
    subprocess.run(
        [*cmd, "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=180,
    )
    return data


def _pg_ctl() -> str:
    version = _psql("SHOW server_version_num")[:2]
    path = Path(f"/usr/lib/postgresql/{version}/bin/pg_ctl")
    return str(path) if path.exists() else "pg_ctl"


def _psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(
        ["psql", "-d", db, "-tAc", sql], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _connect(db: str):
    return psycopg2.connect(dbname=db)


@dataclass
class Chaos:
    """The faults of one run, and what they did."""

    stack: demo_stack.Stack
    seed: int = 0
    restart_pg: bool = True
    done: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    recharges: list = field(default_factory=list)  # (reference, amount)

    def __post_init__(self):
        self._supervising = threading.Event()
        self._supervisor = None

    def log(self, text: str) -> None:
        print(f"chaos {time.strftime('%H:%M:%S')} {text}", flush=True)

    def supervise(self) -> None:
        """Start Odoo again whenever it exits, as a service manager would."""
        self._supervising.set()

        def loop():
            while self._supervising.is_set():
                try:
                    if self.stack.revive_odoo():
                        self.done["odoo revived"] += 1
                        self.log("Odoo had exited: started again")
                except Exception as exc:
                    self.log(f"Odoo not started again yet: {exc}")
                time.sleep(1.0)

        self._supervisor = threading.Thread(target=loop, daemon=True)
        self._supervisor.start()

    def stop_supervising(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join(120)

    def kill_worker(self) -> None:
        workers = self.stack.odoo_workers()
        if not workers:
            raise RuntimeError("Odoo runs no worker process (prefork mode expected)")
        pid = random.Random(self.seed + self.done["worker"]).choice(workers)
        os.kill(pid, 9)
        self.done["worker"] += 1
        self.log(f"Odoo worker {pid} killed (SIGKILL)")

    def restart_database(self) -> None:
        if not self.restart_pg:
            return
        started = time.monotonic()
        restart_postgres()
        self.done["postgresql"] += 1
        self.log(f"PostgreSQL restarted in immediate mode ({time.monotonic() - started:.1f} s)")

    def restart_broker(self) -> None:
        self.stack.restart_broker()
        self.done["mosquitto"] += 1
        self.log("Mosquitto restarted")

    def restart_runner(self) -> None:
        gateway = self.stack.gateways[self.done["runner"] % len(self.stack.gateways)]
        self.stack.restart_runner(gateway)
        self.done["runner"] += 1
        self.log(f"runner of gateway {gateway['id']} killed (SIGKILL) and started again")

    def recharge(self, meter_id: int, amount: float) -> None:
        """A portal recharge paid through the demo provider; its notification is sent
        twice, and again until it is answered (a worker may die under it)."""
        try:
            reference = portal_recharge(self.stack, meter_id, amount)
        except Exception as exc:
            self.errors.append(f"recharge not started: {exc}")
            self.log(f"recharge not started ({type(exc).__name__})")
            return
        self.recharges.append((reference, amount))
        self.done["recharge"] += 1
        self.log(f"recharge {reference} of {amount} paid")

    def read_now(self, meters_4g: list[str]) -> None:
        """*Read Now* on a few 4G meters: commands go out, which the hostile client sees
        and answers in other meters' names."""
        addresses = random.Random(self.seed + self.done["read now"]).sample(meters_4g, 3)
        admin = self.stack.admin()
        ids = admin.call("prepaid.meter", "search", [("address", "in", addresses)])
        admin.call("prepaid.meter", "action_read_now", ids)
        self.done["read now"] += 1
        self.log(f"read now asked of {', '.join(addresses)}")

    def run(self, seconds: float, hostile: Hostile, meter_id: int, every: float = 15.0) -> None:
        """The faults in turn over ``seconds``, one every ``every`` seconds at most (all of
        them at least once), a hostile round between each two."""
        steps = [
            lambda: self.read_now(hostile.meters),
            lambda: self.recharge(meter_id, 20.0),
            self.kill_worker,
            self.restart_database,
            lambda: self.recharge(meter_id, 15.5),
            self.restart_broker,
            self.restart_runner,
            self.kill_worker,
            lambda: self.recharge(meter_id, 12.25),
            lambda: self.read_now(hostile.meters),
            self.restart_database,
            self.restart_runner,
        ]
        pause = min(seconds / len(steps), every)
        deadline = time.monotonic() + seconds
        index = 0
        # every step once even when a slow machine stretches them past ``seconds``
        while index < len(steps) or time.monotonic() < deadline:
            step = steps[index % len(steps)]
            try:
                step()
            except Exception as exc:
                self.errors.append(f"{getattr(step, '__name__', 'step')}: {exc}")
                self.log(f"fault failed: {exc}")
            hostile.strike()
            index += 1
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))


def _retry(what, call, attempts=20, wait=3.0):
    """``call()`` again while the site is down (a restarting server, a killed worker)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(wait)
    raise AssertionError(what)


def portal_recharge(stack: demo_stack.Stack, meter_id: int, amount: float) -> str:
    """The tenant's checkout in the portal, paid with the demo provider, as a browser
    would; the payment notification is delivered twice. Returns the payment reference."""
    tenant = _retry(
        "login", lambda: demo_stack.OdooSession(stack.url, stack.db, "tenant", "tenant")
    )
    admin = _retry("login", stack.admin)
    page = _retry(
        "recharge page",
        lambda: tenant.http.get(
            f"{stack.url}/my/meters/{meter_id}/recharge?amount={amount}", timeout=60
        ),
    )
    page.raise_for_status()
    token = re.search(r'data-access-token="([^"]+)"', page.text).group(1)
    provider_id = _retry("provider", lambda: admin.ref("payment.payment_provider_demo"))
    [provider] = _retry(
        "provider",
        lambda: admin.call("payment.provider", "read", [provider_id], ["payment_method_ids"]),
    )
    processing = tenant.rpc(
        f"/my/meters/{meter_id}/recharge/transaction",
        {
            "amount": amount,
            "access_token": token,
            "provider_id": provider_id,
            "payment_method_id": provider["payment_method_ids"][0],
            "token_id": None,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": f"/my/meters/{meter_id}",
            "is_validation": False,
        },
    )
    notification = {
        "reference": processing["reference"],
        "payment_details": "4242",
        "simulated_state": "done",
    }
    for _ in range(2):  # the provider sends its notification again
        _retry("notification", lambda: tenant.rpc("/payment/demo/simulate_payment", notification))
    # the payment page polls the status, which has the payment processed (the recharge
    # credited); if a fault takes that away, Odoo's own scheduled action does it later
    try:
        _retry("status", lambda: tenant.rpc("/payment/status/poll", {}), attempts=5)
    except Exception:
        pass
    return processing["reference"]


# === CHECKS === #


def wait_until(what: str, check, timeout: float, every: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except psycopg2.Error:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(every)


def balances_off_ledger(cr) -> list:
    cr.execute(
        """
        SELECT a.id, a.balance::numeric(16, 4), COALESCE(sum(l.amount), 0)::numeric(16, 4)
          FROM prepaid_account a
          LEFT JOIN prepaid_account_line l ON l.account_id = a.id
         GROUP BY a.id
        HAVING round(a.balance::numeric, 4) != round(COALESCE(sum(l.amount), 0)::numeric, 4)
        """
    )
    return cr.fetchall()


def uncharged_meters(cr) -> int:
    cr.execute(
        """
        SELECT count(*) FROM prepaid_meter m
          JOIN prepaid_meter_latest l ON l.id = m.latest_id
          JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
          JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
         WHERE m.state = 'in_service' AND l.last_reading_at IS NOT NULL
           AND (m.billing_charged_until IS NULL OR l.last_reading_at > m.billing_charged_until)
        """
    )
    return cr.fetchone()[0]


def relays_apart(cr) -> list:
    cr.execute(
        """
        SELECT m.address FROM prepaid_meter m
          JOIN prepaid_meter_latest l ON l.id = m.latest_id
         WHERE m.state = 'in_service' AND l.connection_state = 'online'
           AND m.desired_relay_state IS NOT NULL
           AND l.actual_relay_state IS DISTINCT FROM m.desired_relay_state
        """
    )
    return [row[0] for row in cr.fetchall()]


def credits(cr, references: list[str]) -> dict:
    """Per payment reference: the transaction's state and amount, the recharge's lines (a
    preset credit recovered and an overdraft repaid first are lines of their own: a
    recharge that only repays an overdraft has no line of kind recharge) and what they
    credited."""
    cr.execute(
        """
        SELECT tx.reference, tx.state, tx.amount::numeric(16, 2), count(l.id),
               COALESCE(sum(l.amount), 0)::numeric(16, 4)
          FROM payment_transaction tx
          LEFT JOIN prepaid_account_line l ON l.reference = tx.reference
         WHERE tx.reference = ANY(%s)
         GROUP BY tx.reference, tx.state, tx.amount
        """,
        [references],
    )
    return {row[0]: row[1:] for row in cr.fetchall()}


def uncredited(cr, references: list[str]) -> list[str]:
    """The paid recharges not credited yet."""
    return [
        reference
        for reference, (state, _paid, lines, _credited) in credits(cr, references).items()
        if state == "done" and not lines
    ]


def refused_answers(cr) -> int:
    """Commands whose decision log holds an answer refused as coming from another meter."""
    cr.execute(
        "SELECT count(*) FROM meter_gateway_command WHERE reason_log LIKE %s",
        ["%another meter%"],
    )
    return cr.fetchone()[0]


def deductions_by_account(cr) -> dict:
    cr.execute(
        "SELECT account_id, sum(amount)::numeric(16, 4) FROM prepaid_account_line "
        "WHERE kind = 'deduction' GROUP BY account_id"
    )
    return {row[0]: row[1] for row in cr.fetchall()}


def clean_run(db: str) -> dict:
    """Every account's consumption charges from one clean run over the same stored readings:
    a copy of the database (the site stopped), its charges and meters' cursors removed,
    charged again by the deduction run in a process of its own."""
    copy = f"{db}_clean"
    subprocess.run(["dropdb", "--if-exists", copy], check=True, capture_output=True)
    subprocess.run(["createdb", "-T", db, copy], check=True, capture_output=True)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "clean-run", copy],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
            env=demo_stack.Stack(db=copy).env(),
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"the clean run failed:\n{exc.stderr[-3000:]}") from None
    finally:
        subprocess.run(["dropdb", "--if-exists", copy], check=False, capture_output=True)
    return {int(k): Decimal(v) for k, v in json.loads(out.splitlines()[-1]).items()}


def _clean_run_main(db: str) -> None:
    """In the copy: remove every consumption charge and every meter's billing cursor, then
    charge all stored readings again in one run; print the charges by account (JSON)."""
    import odoo  # noqa: PLC0415
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    args = ["-c", str(demo_stack.ROOT / "odoo.conf"), "-d", db]
    args.append(f"--addons-path={demo_stack.default_addons_path()}")
    for option, variable in (("--db_host", "PGHOST"), ("--db_port", "PGPORT")):
        if os.environ.get(variable):
            args.append(f"{option}={os.environ[variable]}")
    config.parse_config(args)
    odoo.tools.config["log_level"] = "warn"
    registry = Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
        cr.execute(
            "UPDATE prepaid_account a SET balance = a.balance - COALESCE(d.amount, 0) "
            "FROM (SELECT account_id, sum(amount) AS amount FROM prepaid_account_line "
            "WHERE kind = 'deduction' GROUP BY account_id) d WHERE d.account_id = a.id"
        )
        cr.execute("DELETE FROM prepaid_account_line WHERE kind = 'deduction'")
        cr.execute(
            "UPDATE prepaid_meter SET billing_charged_until = NULL, billing_base_at = NULL, "
            "billing_state = NULL, billing_tariff_id = NULL"
        )
        env.invalidate_all()
        env["prepaid.account"]._run_deductions()
        result = deductions_by_account(cr)
        cr.rollback()
    print(json.dumps({str(k): str(v) for k, v in result.items()}))


@dataclass
class SiteReport:
    readings: dict
    off_ledger: list
    uncharged: int
    relays: list
    credits: dict
    charges_differ: dict
    accounts: int
    refused_answers: int = 0

    def problems(self, recharges) -> list[str]:
        found = []
        if self.readings["missing"] or self.readings["stored_twice"]:
            found.append(f"readings not accounted for: {self.readings}")
        if self.readings["rejected"]:
            # the simulated meters send nothing wrong: what they send must be stored
            found.append(f"the simulated meters' own readings rejected: {self.readings}")
        if self.off_ledger:
            found.append(f"balances not equal to their ledger: {self.off_ledger}")
        if self.uncharged:
            found.append(f"{self.uncharged} meters with readings not charged")
        if self.relays:
            found.append(f"actual relay not the desired one: {self.relays}")
        for reference, amount in recharges:
            state, paid, lines, credited = self.credits.get(reference, (None, 0, 0, 0))
            # credited once: the lines of its reference (one of each kind at most, a unique
            # index) add up to what was paid; nothing before the payment is done
            expected = Decimal(str(amount)) if state == "done" else Decimal(0)
            if Decimal(credited) != expected or bool(lines) != (state == "done"):
                found.append(
                    f"recharge {reference} ({state}, {paid}): {lines} lines, {credited} credited"
                )
        if self.charges_differ:
            found.append(f"charges not those of a clean run: {self.charges_differ}")
        return found

    def summary(self) -> str:
        r = self.readings
        return (
            f"4G readings acknowledged by the broker {r['acknowledged']:,}: stored once "
            f"{r['stored']:,}, rejected with a reason {r['rejected']:,}, stored twice "
            f"{r['stored_twice']}, missing {r['missing']}; accounts {self.accounts}, balances "
            f"off their ledger {len(self.off_ledger)}, charges unlike a clean run "
            f"{len(self.charges_differ)}; meters not charged up to their last reading "
            f"{self.uncharged}; online meters whose relay is not the desired one "
            f"{len(self.relays)}; commands with an answer refused as another meter's "
            f"{self.refused_answers}"
        )


def check_site(
    stack: demo_stack.Stack,
    cutoff: datetime,
    references: list[str] = (),
    settle: float = 300,
    before_stop=None,
) -> SiteReport:
    """Wait (``settle`` seconds at most) for the site to catch up with everything recorded
    up to ``cutoff``, stop it (``before_stop`` called first), and measure (see the module
    docstring)."""
    acked = read_record(stack.record, cutoff)
    conn = _connect(stack.db)
    conn.autocommit = True
    cr = conn.cursor()
    started = time.monotonic()

    def all_readings_in():
        counts = account_for_readings(cr, acked)
        return counts if not counts["missing"] else None

    readings = wait_until("every acknowledged reading stored", all_readings_in, settle)
    readings = readings or account_for_readings(cr, acked)
    left = max(60.0, settle - (time.monotonic() - started))
    wait_until("deductions caught up", lambda: uncharged_meters(cr) == 0, left)
    wait_until("payments credited", lambda: not uncredited(cr, list(references)), left)
    relays = wait_until("relays as desired", lambda: relays_apart(cr) == [], left)
    report_relays = [] if relays else relays_apart(cr)
    if before_stop:
        before_stop()
    stack.stop()  # nothing moves any more: the charges are compared with a clean run
    conn.close()
    conn = _connect(stack.db)
    cr = conn.cursor()
    charged = deductions_by_account(cr)
    cr.execute("SELECT count(*) FROM prepaid_account")
    accounts = cr.fetchone()[0]
    report = SiteReport(
        readings=readings,
        off_ledger=balances_off_ledger(cr),
        uncharged=uncharged_meters(cr),
        relays=report_relays,
        credits=credits(cr, list(references)),
        charges_differ={},
        accounts=accounts,
        refused_answers=refused_answers(cr),
    )
    conn.close()
    clean = clean_run(stack.db)
    for account in set(charged) | set(clean):
        got, want = charged.get(account, Decimal(0)), clean.get(account, Decimal(0))
        if got != want:
            report.charges_differ[account] = (str(got), str(want))
    return report


def run_site(stack: demo_stack.Stack, seconds: float, seed: int = 0, restart_pg=True):
    """Chaos on a running stack for ``seconds``; returns (Chaos, Hostile, SiteReport)."""
    admin = stack.admin()
    [story] = admin.call(
        "prepaid.meter", "search_read", [("address", "=", demo_stack.STORY_METER)], ["id"]
    )
    meters_4g = [f"9{n:011d}" for n in range(1, demo_stack.MQTT_METERS + 1)]
    hostile = Hostile(stack.broker_port, meters_4g, foreign=demo_stack.STORY_METER, seed=seed)
    chaos = Chaos(stack, seed=seed, restart_pg=restart_pg)
    chaos.supervise()
    try:
        try:
            chaos.run(seconds, hostile, story["id"])
        finally:
            hostile.stop()
        cutoff = datetime.now(UTC) - timedelta(seconds=1)
        references = [reference for reference, _amount in chaos.recharges]
        report = check_site(stack, cutoff, references, before_stop=chaos.stop_supervising)
    finally:
        chaos.stop_supervising()
    return chaos, hostile, report


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "clean-run":
        _clean_run_main(sys.argv[2])
    else:
        sys.exit("usage: site_chaos.py clean-run DB  (the chaos run: benchmarks/chaos_site.py)")
