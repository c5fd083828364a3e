#!/usr/bin/env python3
"""The whole simulated site (X3), from one command: ``scripts/demo.sh`` runs this.

    python3 scripts/demo_stack.py --db prepaid_demo --http-port 8069 --addons-path ...

Brings up, in order, the database (created with the demo data on the first run), a private
Mosquitto, Odoo, the run-time settings (bus ports, brokers, a fresh gateway key per 4G
gateway kept in a mode-600 file, the vending key), the simulator fleet and a gateway runner
per 4G gateway; stops them in reverse order on Ctrl-C or when one dies. Time is real. No
Odoo import here: the end-to-end test (``tests/e2e``) drives the same :class:`Stack`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project's own prepaid_core

from prepaid_core import device_auth  # noqa: E402  (after the path above)

# the suite's add-ons, and Odoo's demo payment provider (tenants recharge online through it)
ADDONS = (
    *sorted(manifest.parent.name for manifest in (ROOT / "addons").glob("*/__manifest__.py")),
    "payment_demo",
)

# The simulator fleet the demo data describe (prepaid_meter/demo/prepaid_meter_demo.xml):
# collector c (1-based), bus b listens on base_port + (c - 1) * BUSES + (b - 1).
COLLECTORS, BUSES, METERS_PER_BUS, MQTT_METERS = 4, 3, 16, 60
# Meters whose tenants run out of credit in the first minutes (prepaid_billing's demo data
# leave them little): a steady load in watts, within what each model can register.
HEAVY_LOADS = {
    "000010010001": 50_000,  # Green Leaf Cafe (the portal tenant), DTSY 10(100) A: arrears cut
    "000010010002": 50_000,  # Bright Optics: alarm 1
    "000010010003": 50_000,  # Urban Threads: alarm 2 and its 2-minute reminder cut
    "900000000001": 10_000,  # a 4G single-phase meter (DDSY 5(60) A): arrears cut
    "000030020001": 3_500,  # Harbour View, CT 200/5 (x40): 140 kW on the primary side
}
STORY_METER = "000010010001"  # the portal tenant's meter (login tenant / tenant)
# B13: the 4G flats whose meters keep their own balance (prepaid_billing's demo data):
# own-format tokens over their connection, and STS keypad meters (meter_gateway's demo data:
# meter number, supply group, tariff index, key revision as below)
OWN_TOKEN_METERS = ("900000000002", "900000000003", "900000000004")
STS_METERS = {"900000000005": "60072700000900005", "900000000006": "60072700000900006"}
STS_SGC, STS_TI, STS_KRN = "123456", "01", 1
IDLE_METER = "900000000004"  # nothing switched on: its balance moves only by tokens
# desk recharges when the database is created, once the keys are set: one token delivered
# over the 4G connection (applied), one STS token to type on the keypad (issued)
START_RECHARGES = (("900000000003", "15"), ("900000000006", "12"))
READING_INTERVAL = 30  # seconds between two readings of a 4G meter
FAST_CRONS = (
    "meter_gateway.ir_cron_meter_gateway_poll",
    "meter_gateway.ir_cron_meter_gateway_reconcile",
    "prepaid_billing.ir_cron_prepaid_deduction",
    "prepaid_billing.ir_cron_prepaid_deduction_2",
    "prepaid_billing.ir_cron_prepaid_alarm_wake",
    "prepaid_meter.ir_cron_prepaid_meter_connection",
)


FINGERPRINT_PREFIX = "prepaid demo, add-ons "


@dataclass(frozen=True)
class DemoLocale:
    """A language the demo can be built in besides English (``DEMO_LANG``): Odoo data files
    of the add-ons' ``demo/<lang>/`` folders, loaded on a new database ``before`` accounting
    (only base installed: the company's country and currency, the default language) and
    ``after`` the suite (names of the demo's records); the country's charts of accounts
    (installed between the two: the landlord's currency is the chart's); the words of the
    names the demo generates (``prepaid.meter._demo_populate``: tenants, meters, floors)."""

    before: tuple[tuple[str, str], ...]
    after: tuple[tuple[str, str], ...]
    accounting: str  # the add-on of the country's charts of accounts, installed first
    chart: str  # the landlord's chart of accounts (in the country's currency)
    given_names: tuple[str, ...]  # in the order of prepaid.meter._DEMO_FIRST_NAMES
    family_names: tuple[str, ...]  # in the order of prepaid.meter._DEMO_LAST_NAMES
    meter_words: dict[str, str]  # "A-101 Power" -> "A-101 电表"
    floor: str  # "Level 3" -> floor.format(3)


LOCALES = {
    "zh_CN": DemoLocale(
        before=(("prepaid_meter", "demo/zh_CN/company.xml"),),
        accounting="l10n_cn",
        chart="cn",  # 小企业会计准则, in CNY (Odoo's generic chart is in USD)
        after=(
            ("prepaid_meter", "demo/zh_CN/names.xml"),
            ("prepaid_billing", "demo/zh_CN/names.xml"),
        ),
        given_names=tuple("秀英 斌 佳怡 德明 丽娟 晓峰 桂兰 浩然 颖 俊杰 凯 琳 明 娜 鹏 萍 强 蓉"
                          " 思远 婷 宇 薇 伟 燕 子涵".split()),
        family_names=tuple("安 白 曹 邓 范 冯 高 韩 胡 江 孔 林 马 倪 欧阳 潘 任 宋 唐 王".split()),
        meter_words={"Power": "电表", "Water": "水表"},
        floor="{}层",
    ),
}  # fmt: skip


def localize(env, lang: str, stage: str) -> None:
    """Runs inside ``odoo shell`` (see :meth:`Stack.localize`), a stage of building a new
    database in ``lang``: ``before`` accounting is installed, the data files of
    ``LOCALES[lang].before``; ``chart``: the landlord's chart of accounts; ``after`` the
    suite, the ``after`` files and the names of the generated tenants, meters and floors."""
    from odoo.tools.convert import convert_file  # noqa: PLC0415 (in Odoo's shell only)

    locale = LOCALES[lang]
    for module, path in {"before": locale.before, "after": locale.after}.get(stage, ()):
        convert_file(env, module, path, {}, mode="init", noupdate=True)
    if stage == "chart":
        load_chart(env, locale.chart)
    elif stage == "after":
        rename_generated(env, locale)
    env.cr.commit()


def load_chart(env, chart: str) -> None:
    """The landlord's chart of accounts instead of the generic one installing accounting
    gave it (in USD): as Odoo does when the demo is installed on a new localization, the
    company's entries and generic accounts are dropped first (they are only account's demo
    so far), the company gets the chart's currency, then account's demo entries again."""
    landlord = env.ref("base.main_company")
    env["account.chart.template"].try_loading(chart, landlord, install_demo=True)


def rename_generated(env, locale: DemoLocale) -> None:
    """The tenants, meters and floors ``_demo_populate`` made (English words) in ``locale``."""
    Meter = env["prepaid.meter"]
    given = dict(zip(Meter._DEMO_FIRST_NAMES, locale.given_names, strict=True))
    family = dict(zip(Meter._DEMO_LAST_NAMES, locale.family_names, strict=True))
    for partner in env["prepaid.tenancy"].search([]).partner_id:
        first, _, last = partner.name.partition(" ")
        if first in given and last in family:
            partner.name = family[last] + given[first]
    for meter in Meter.search([]):
        unit, _, word = meter.name.rpartition(" ")
        if unit and word in locale.meter_words:
            meter.name = f"{unit} {locale.meter_words[word]}"
    for floor in env["prepaid.floor"].search([("name", "=like", "Level %")]):
        floor.name = locale.floor.format(floor.name.split()[-1])


def addons_fingerprint(root: Path = ROOT / "addons") -> str:
    """A digest of the add-ons' code (every file under ``root`` but compiled Python): it
    changes when a pull or an edit changes what the database must be upgraded to."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def database_plan(exists, installed, stored, current, update=False):
    """What to do with the demo database before Odoo serves it: ``(Odoo's arguments, what
    to say)``, no arguments when it is ready as it is.

    - none yet: create it with the suite and the demo data;
    - add-ons of the suite not installed: install them;
    - the add-ons' code is not the one the database was last brought up to (``stored``, the
      :func:`addons_fingerprint` recorded then; unknown for a database of an older script),
      or ``update``: upgrade them (``-u``: the data are kept) -- else Odoo would serve new
      code on an old schema and stop at the first missing column;
    - else keep it as it is.
    """
    if not exists:
        return (
            ["-i", ",".join(ADDONS), "--with-demo"],
            "Creating the database with the suite and demo data (a few minutes)",
        )
    args, done = [], []
    missing = [m for m in ADDONS if m not in installed]
    if missing:
        args += ["-i", ",".join(missing)]
        done.append(f"installing {', '.join(missing)}")
    present = [m for m in ADDONS if m in installed]
    if present and (update or stored != current):
        args += ["-u", ",".join(present)]
        why = "as asked" if update else "their code changed since it was last upgraded"
        done.append(f"upgrading the add-ons ({why}); the data are kept")
    if not args:
        return [], "The database exists and is up to date: keeping its data"
    return args, "The database exists: " + "; ".join(done)


#: what Odoo logs as it loads each add-on of an install or upgrade
MODULE_LOADING = re.compile(r"Loading module (\S+) \((\d+)/(\d+)\)")
#: seconds between two progress lines of a long install
PROGRESS_EVERY = 15


def install_progress(log_text: str, elapsed: float) -> str | None:
    """The progress line of an install whose log is ``log_text``: the add-on Odoo loads now
    and how far it is, with the time elapsed (``None`` before the first add-on)."""
    found = MODULE_LOADING.findall(log_text)
    if not found:
        return None
    name, done, total = found[-1]
    minutes, seconds = divmod(int(elapsed), 60)
    return f"   {minutes}:{seconds:02d} add-on {done} of {total} ({name})"


class StackError(RuntimeError):
    """Something of the stack did not come up; the message says what and where to look."""


class OdooSession:
    """Odoo's web JSON-RPC as one user (the web client's own API: a session cookie)."""

    def __init__(self, url: str, db: str, login: str, password: str):
        self.url, self.db = url.rstrip("/"), db
        self.http = requests.Session()
        self._id = 0
        result = self.rpc(
            "/web/session/authenticate", {"db": db, "login": login, "password": password}
        )
        self.uid = result["uid"]
        # backend users: every company they may see (the demo's admin runs both landlords)
        companies = (result.get("user_companies") or {}).get("allowed_companies") or {}
        self.companies = sorted(int(company) for company in companies)

    def rpc(self, path: str, params: dict):
        self._id += 1
        response = self.http.post(
            self.url + path,
            json={"jsonrpc": "2.0", "method": "call", "id": self._id, "params": params},
            timeout=120,
        )
        response.raise_for_status()
        answer = response.json()
        if answer.get("error"):
            error = answer["error"]
            message = error.get("data", {}).get("message") or error.get("message")
            raise StackError(f"{path}: {message}")
        return answer.get("result")

    def call(self, model: str, method: str, *args, **kwargs):
        context = kwargs.pop("context", {})
        if self.companies:
            context = {"allowed_company_ids": self.companies, **context}
        return self.rpc(
            f"/web/dataset/call_kw/{model}/{method}",
            {
                "model": model,
                "method": method,
                "args": list(args),
                "kwargs": {**kwargs, "context": context},
            },
        )

    def ref(self, xmlid: str) -> int:
        module, name = xmlid.split(".")
        rows = self.call(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        if not rows:
            raise StackError(f"{xmlid} not found")
        return rows[0]["res_id"]


def default_addons_path() -> str:
    """Odoo's add-ons (wherever Odoo is installed) and this project's, as scripts/common.sh
    finds them (in a subprocess: this module never imports Odoo)."""
    code = (
        "import os, odoo.addons, odoo.release as r\n"
        "root = os.path.dirname(os.path.dirname(os.path.abspath(r.__file__)))\n"
        "paths = list(odoo.addons.__path__) + [os.path.join(root, 'addons')]\n"
        "print(','.join(p for p in dict.fromkeys(map(os.path.abspath, paths))"
        " if os.path.isdir(p)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{out},{ROOT / 'addons'}"


def odoo_executable(workers: int = 0) -> list[str]:
    """How to start Odoo. In prefork mode Odoo starts its websocket process again with its
    own command line, which ``python -m odoo`` cannot be: its console script then."""
    if workers:
        script = Path(sys.executable).with_name("odoo")
        if script.exists():
            return [str(script)]
        import odoo.release  # noqa: PLC0415 - only to find the source tree's odoo-bin

        odoo_bin = Path(odoo.release.__file__).resolve().parent.parent / "odoo-bin"
        if odoo_bin.exists():
            return [sys.executable, str(odoo_bin)]
    return [sys.executable, "-m", "odoo"]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        # as the servers do: connections of a previous run in TIME_WAIT do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Stack:
    """One simulated site: database, broker, Odoo, simulator, gateway runners."""

    db: str
    http_port: int = 8069
    broker_port: int = 18830
    sim_base_port: int = 9100
    addons_path: str = ""
    local: Path = ROOT / ".local" / "demo"
    fresh: bool = False  # drop the database first (the end-to-end test)
    update: bool = False  # upgrade the add-ons even if their code did not change
    quiet: bool = False
    workers: int = 0  # Odoo in prefork mode with that many HTTP workers (0: threaded)
    record: Path | None = None  # the simulator's record of acknowledged 4G readings
    lang: str = ""  # a new database built in this language (LOCALES), "": English
    keypad: queue.Queue = field(default_factory=queue.Queue)  # the keypad's answers
    processes: dict = field(default_factory=dict)
    gateways: list = field(default_factory=list)

    # --- helpers --- #
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"\033[1m==> {text}\033[0m", flush=True)

    def env(self) -> dict:
        env = dict(os.environ)
        # the project's own prepaid_core first, whatever is pip-installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop("PREPAID_GATEWAY_API_KEY", None)
        return env

    def odoo_cmd(self, command: str = "") -> list[str]:
        """Odoo's command line for this database; ``command``: an Odoo subcommand (shell)."""
        cmd = [*odoo_executable(0 if command else self.workers), *filter(None, [command])]
        cmd += ["-c", str(ROOT / "odoo.conf")]
        cmd.append(f"--addons-path={self.addons_path or default_addons_path()}")
        if os.environ.get("PGHOST"):
            cmd += [f"--db_host={os.environ['PGHOST']}"]
        if os.environ.get("PGPORT"):
            cmd += [f"--db_port={os.environ['PGPORT']}"]
        cmd += [f"--db_user={os.environ.get('PGUSER', 'odoo')}", "-d", self.db]
        return cmd

    def _psql(self, sql: str, db: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-d", db, "-tAc", sql], capture_output=True, text=True, check=True
        ).stdout.strip()

    def _spawn(self, name: str, cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with log.open("ab") as out:
            process = subprocess.Popen(
                cmd,
                stdout=kwargs.pop("stdout", out),
                stderr=out,
                env=self.env(),
                cwd=kwargs.pop("cwd", str(self.local)),
                start_new_session=True,  # Ctrl-C reaches us only: we stop them in order
                **kwargs,
            )
        self.processes[name] = process
        return process

    # --- 1. database --- #
    def ensure_database(self) -> bool:
        """Create the database with the suite and demo data if needed, or bring it up to the
        add-ons' code (see :func:`database_plan`); True if created."""
        self.local.mkdir(parents=True, exist_ok=True)
        log = self.local / "install.log"
        if self.fresh:
            subprocess.run(["dropdb", "--if-exists", self.db], check=True, capture_output=True)
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.db}'") == "1"
        installed, stored = (), None
        if exists:
            installed = self._psql(
                "SELECT name FROM ir_module_module WHERE state = 'installed'", db=self.db
            ).split()
            stored = self._psql(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                f"WHERE datname = '{self.db}'"
            ).removeprefix(FINGERPRINT_PREFIX)
        current = addons_fingerprint()
        args, message = database_plan(exists, installed, stored, current, self.update)
        self.say(f"{self.db}: {message}")
        if exists and self.lang:
            self.check_lang()
        if not args:
            return False
        started = time.monotonic()
        log.write_bytes(b"")
        if not exists and self.lang:
            self.prepare_localized(log)
        self._run_odoo(args, log)
        if not exists and self.lang:
            self.localize("after", log)
        self.say(f"Database ready in {time.monotonic() - started:.0f} s")
        try:  # the code it is now up to (kept in the database, which it describes)
            self._psql(f"COMMENT ON DATABASE \"{self.db}\" IS '{FINGERPRINT_PREFIX}{current}'")
        except subprocess.CalledProcessError:  # not its owner: upgraded again next time
            self.say(f"(could not record the add-ons' version in {self.db})")
        return not exists

    def prepare_localized(self, log: Path) -> None:
        """A new database in ``lang`` (:func:`localize`), before the suite is installed: the
        language (the database's default; English stays active) and the company on base
        alone, then accounting with the country's chart of accounts for the landlord."""
        self.say(f"In {self.lang}: the language, the company and its chart of accounts first")
        languages = f"--load-language={self.lang},en_US"
        self._run_odoo(["-i", "base", "--with-demo", languages], log)
        self.localize("before", log)
        self._run_odoo(["-i", LOCALES[self.lang].accounting, "--with-demo"], log)
        self.localize("chart", log)

    def _run_odoo(self, args: list[str], log: Path, stdin: str | None = None) -> None:
        """Odoo on the database until it is done (installs, upgrades; ``stdin``: the code
        of an ``odoo shell``); its output appended to ``log``."""
        shell = stdin is not None
        cmd = [*self.odoo_cmd("shell" if shell else ""), *args, "--log-level=warn"]
        if not shell:
            cmd += ["--stop-after-init", f"--http-port={self.http_port}"]
        if not shell:  # the add-ons as they load, for the progress lines
            cmd.append("--log-handler=odoo.modules.loading:INFO")
        start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out, self._progress(log, start, shell):
            done = subprocess.run(
                cmd,
                input=(stdin or "").encode(),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=str(self.local),
            )
        if done.returncode:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            what = "localizing the demo data" if shell else "installing the add-ons"
            raise StackError(f"{what} failed (see {log}):\n{tail}")

    @contextlib.contextmanager
    def _progress(self, log: Path, start: int, silent: bool):
        """While an install runs: every :data:`PROGRESS_EVERY` seconds, the add-on it loads
        and the time elapsed (read from its log after byte ``start``)."""
        stop, began = threading.Event(), time.monotonic()

        def report():
            while not stop.wait(PROGRESS_EVERY):
                with log.open("rb") as text:
                    text.seek(start)
                    line = install_progress(
                        text.read().decode(errors="replace"), time.monotonic() - began
                    )
                if line:
                    print(line, flush=True)

        thread = threading.Thread(target=report, daemon=True)
        if not (silent or self.quiet):
            thread.start()
        try:
            yield
        finally:
            stop.set()

    def localize(self, stage: str, log: Path) -> None:
        """:func:`localize` run in ``odoo shell`` on the database."""
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
            f"import demo_stack; demo_stack.localize(env, {self.lang!r}, {stage!r})\n"
        )
        self._run_odoo([], log, stdin=code)

    def check_lang(self) -> None:
        """An existing database is kept as it is: say so if it is not in ``lang``."""
        active = self._psql(
            f"SELECT 1 FROM res_lang WHERE code = '{self.lang}' AND active", db=self.db
        )
        if active != "1":
            self.say(
                f"(the database {self.db} was built without {self.lang}: "
                "DEMO_RESET=1 builds it again in that language)"
            )

    # --- 2. broker --- #
    def start_broker(self) -> None:
        from prepaid_core.simulator.broker import start_mosquitto  # noqa: PLC0415

        directory = self.local / "mosquitto"
        broker = start_mosquitto(directory, self.broker_port)
        self.processes["mosquitto"] = broker.process
        self.say(f"Mosquitto on 127.0.0.1:{self.broker_port}")

    # --- 3. Odoo --- #
    def start_odoo(self, timeout: float = 300, name: str = "odoo", port: int = 0) -> None:
        """Odoo serving the database on ``port`` (default: the stack's HTTP port), as the
        process ``name`` (several nodes of a cluster: one name each), logged to
        ``<name>.log``; returns once it answers."""
        port = port or self.http_port
        if not port_free(port):
            raise StackError(f"port {port} is taken: set another HTTP port")
        log = self.local / f"{name}.log"
        self.say(f"Starting Odoo on http://127.0.0.1:{port} (log: {log})")
        process = self._spawn(
            name,
            [
                *self.odoo_cmd(),
                f"--db-filter=^{self.db}$",
                f"--http-port={port}",
                f"--logfile={log}",
                "--log-handler=werkzeug:WARNING",  # not a line per device API request
                "--max-cron-threads=1",
                *self.worker_options(port),
            ],
            self.local / f"{name}-console.log",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"Odoo exited (code {process.returncode}): see {log}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/web/login", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise StackError(f"Odoo did not answer within {timeout:.0f} s: see {log}")

    def worker_options(self, port: int = 0) -> list[str]:
        """Prefork mode as in production (README, *Scaling*): HTTP workers, a cron worker,
        the websocket on the next port."""
        if not self.workers:
            return []
        return [f"--workers={self.workers}", f"--gevent-port={(port or self.http_port) + 1}"]

    def odoo_workers(self, name: str = "odoo") -> list[int]:
        """The process ids of Odoo's worker processes (prefork mode), gevent's excepted."""
        master = self.processes[name].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [
            int(pid)
            for pid in children
            if b"gevent" not in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ]

    def admin(self) -> OdooSession:
        return OdooSession(self.url, self.db, "admin", "admin")

    # --- 4. run-time settings --- #
    def _secret_file(self, name: str, content: str) -> Path:
        path = self.local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(content + "\n")
        os.chmod(path, 0o600)
        return path

    def vending_key(self, name: str = "vending.key", size: int = 32) -> str:
        """A demo-only vending key kept in ``name`` (created once): the own format's, or
        the STS one (``sts.key``, 8 bytes) with which the simulated STS meters are keyed."""
        path = self.local / name
        if path.exists():
            return path.read_text().strip()
        return self._secret_file(name, secrets.token_hex(size)).read_text().strip()

    def sts_vending_key(self) -> str:
        return self.vending_key("sts.key", 8)

    def configure(self) -> None:
        """Settings that depend on this run (ports, keys), written through the web API."""
        odoo = self.admin()
        # scheduled actions every minute; deductions and relay commands are also triggered
        # at once by new readings and new intents
        cron_ids = [odoo.ref(xmlid) for xmlid in FAST_CRONS]
        odoo.call("ir.cron", "write", cron_ids, {"interval_number": 1, "interval_type": "minutes"})
        # collectors' buses: the simulator's ports, from the addresses of their meters
        meters = odoo.call(
            "prepaid.meter",
            "search_read",
            [("bus_id", "!=", False), ("address", "=like", "00%")],
            fields=["bus_id", "address"],
        )
        ports = {}
        for meter in meters:
            collector, bus = int(meter["address"][2:5]), int(meter["address"][5:8])
            ports[meter["bus_id"][0]] = self.sim_base_port + (collector - 1) * BUSES + bus - 1
        for bus_id, port in sorted(ports.items()):
            odoo.call("prepaid.gateway.bus", "write", [bus_id], {"port": port})
        # 4G gateways: the private broker, a new gateway key each (Odoo never sees it)
        self.gateways = odoo.call(
            "prepaid.gateway", "search_read", [("gateway_type", "=", "mqtt")], fields=["name"]
        )
        for gateway in self.gateways:
            key = secrets.token_urlsafe(32)
            odoo.call(
                "prepaid.gateway",
                "write",
                [gateway["id"]],
                {
                    "mqtt_host": "127.0.0.1",
                    "mqtt_port": self.broker_port,
                    "api_key_hash": device_auth.key_hash(key),
                    "api_signing_public_key": device_auth.public_key_hex(key),
                },
            )
            gateway["key_file"] = self._secret_file(f"gateway-{gateway['id']}.key", key)
        # one vending key for the demo's landlords and the simulated meters (credit tokens)
        companies = odoo.call("res.company", "search", [])
        keys = {"prepaid_vending_key": self.vending_key()}
        keys["prepaid_sts_vending_key"] = self.sts_vending_key()
        odoo.call("res.company", "write", companies, keys)
        # the simulated registers go on from what Odoo last read
        rows = odoo.call(
            "prepaid.meter",
            "search_read",
            [("address", "!=", False), ("state", "=", "in_service")],
            fields=["address", "last_forward_total"],
        )
        registers = {r["address"]: r["last_forward_total"] for r in rows if r["last_forward_total"]}
        (self.local / "registers.json").write_text(json.dumps(registers))
        (self.local / "balances.json").write_text(json.dumps(self.meter_balances(odoo)))
        self.say(
            f"Configured {len(ports)} buses, {len(self.gateways)} 4G gateways, "
            f"{len(rows)} meters in service"
        )

    def meter_balances(self, odoo: OdooSession) -> dict:
        """What each meter that keeps its own balance holds, as the server counts it: the
        base (the balance accepted, or the preset on board) plus the credits applied,
        less the credit tokens did not carry and the consumption charged since the base.
        The simulated meters start with it (credits not applied yet come as tokens)."""
        meters = odoo.call(
            "prepaid.meter",
            "search_read",
            [("billing_mode", "=", "meter"), ("address", "!=", False)],
            fields=[
                "address", "meter_balance_base", "meter_balance_base_at",
                "meter_balance_base_credited", "meter_balance_base_not_carried",
                "meter_balance_base_charged", "billing_charged_amount", "credit_not_carried",
                "preset_credit", "preset_account_id",
            ],
        )  # fmt: skip
        credits = odoo.call(
            "prepaid.meter.credit",
            "search_read",
            [("meter_id", "in", [m["id"] for m in meters]), ("state", "=", "applied")],
            fields=["meter_id", "amount"],
        )
        applied = {}
        for credit in credits:
            meter_id = credit["meter_id"][0]
            applied[meter_id] = applied.get(meter_id, 0) + credit["amount"]
        balances = {}
        for m in meters:
            if m["meter_balance_base_at"]:
                base = m["meter_balance_base"]
            else:
                base = m["preset_credit"] if m["preset_account_id"] else 0
            balance = (
                base
                + applied.get(m["id"], 0) - m["meter_balance_base_credited"]
                - (m["credit_not_carried"] - m["meter_balance_base_not_carried"])
                - (m["billing_charged_amount"] - m["meter_balance_base_charged"])
            )  # fmt: skip
            balances[m["address"]] = f"{balance:.4f}"
        return balances

    def start_recharges(self) -> None:
        """Desk recharges of a new demo database (:data:`START_RECHARGES`), so Meter Credits
        shows a token delivered and one waiting for the keypad."""
        odoo = self.admin()
        for address, amount in START_RECHARGES:
            [meter] = odoo.call(
                "prepaid.meter", "search_read", [("address", "=", address)], fields=["account_id"]
            )
            self.desk_recharge(odoo, meter["account_id"][0], meter["id"], amount)

    @staticmethod
    def desk_recharge(odoo: OdooSession, account_id: int, meter_id: int, amount) -> None:
        """A recharge at the desk (the recharge wizard, as an operator confirms it)."""
        wizard = odoo.call(
            "prepaid.account.recharge",
            "create",
            {"account_id": account_id, "meter_id": meter_id, "amount": float(amount)},
        )
        odoo.call("prepaid.account.recharge", "action_confirm", [wizard])

    # --- 5. simulator --- #
    def start_simulator(self) -> dict:
        self.vending_key()  # the file exists
        cmd = [
            sys.executable, "-m", "prepaid_core.simulator",
            "--collectors", str(COLLECTORS), "--buses", str(BUSES),
            "--meters", str(METERS_PER_BUS), "--protocol", "mixed", "--baud", "9600",
            "--base-port", str(self.sim_base_port),
            "--mqtt-meters", str(MQTT_METERS), "--mqtt-port", str(self.broker_port),
            "--reading-interval", str(READING_INTERVAL),
            "--balance", "1000000",  # billing is Odoo's: the meters' own credit never ends
            "--balances", str(self.local / "balances.json"),  # but for meters keeping theirs
            "--vending-key-file", str(self.local / "vending.key"),
            "--registers", str(self.local / "registers.json"),
            "--json",
        ]  # fmt: skip
        if self.record:
            cmd += ["--record", str(self.record)]
        for address, watts in {**HEAVY_LOADS, IDLE_METER: 0}.items():
            cmd += ["--load", f"{address}={watts}"]
        cmd += self.sts_arguments()
        log = self.local / "simulator.log"
        process = self._spawn("simulator", cmd, log, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        line = process.stdout.readline()
        if not line:
            process.wait(10)
            raise StackError(f"the simulator did not start: see {log}")
        fleet = json.loads(line)
        # its later output (the keypad's answers) must not block it
        threading.Thread(target=self._keypad_answers, args=(process,), daemon=True).start()
        tcp = sum(len(b["meters"]) for c in fleet["collectors"] for b in c["buses"])
        self.say(
            f"Simulator: {len(fleet['collectors'])} collectors, {tcp} meters on RS-485, "
            f"{fleet['mqtt']['meters']} 4G meters (log: {log})"
        )
        return fleet

    def sts_arguments(self) -> list[str]:
        """The STS keypad meters, keyed as Odoo makes their tokens; ``--keypad``: tokens
        typed through :meth:`type_token`."""
        self.sts_vending_key()  # the file exists
        cmd = ["--keypad", "--sts-vending-key-file", str(self.local / "sts.key")]
        cmd += ["--sts-sgc", STS_SGC, "--sts-ti", STS_TI, "--sts-krn", str(STS_KRN)]
        for address, number in STS_METERS.items():
            cmd += ["--sts-meter", f"{address}={number}"]
        return cmd

    def _keypad_answers(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            try:
                self.keypad.put(json.loads(line))
            except ValueError:
                continue

    def type_token(self, address: str, token: str, timeout: float = 10) -> dict:
        """Type ``token`` on the simulated meter's keypad; the meter's answer
        (``accepted``, ``token`` or ``error``, ``balance``)."""
        process = self.processes["simulator"]
        process.stdin.write(f"{address} {token}\n".encode())
        process.stdin.flush()
        try:
            return self.keypad.get(timeout=timeout)
        except queue.Empty:
            raise StackError(f"the simulated meter {address} did not answer") from None

    # --- 6. gateway runners --- #
    def start_runners(self) -> None:
        for gateway in self.gateways:
            self.start_runner(gateway)
        self.say(f"{len(self.gateways)} gateway runners (MQTT <-> Odoo)")

    def start_runner(self, gateway: dict, member: str = "") -> subprocess.Popen:
        """The gateway's runner; ``member``: one of several runners sharing the gateway's
        meters (an MQTT 5 shared subscription, a persistent session of its own)."""
        name = f"runner-{gateway['id']}" + (f"-{member}" if member else "")
        cmd = [
            sys.executable, "-m", "prepaid_core.gateway_runner",
            "--odoo-url", self.url, "--gateway", str(gateway["id"]),
            "--api-key-file", str(gateway["key_file"]), "--log-level", "WARNING",
        ]  # fmt: skip
        if member:
            cmd += ["--share-group", f"gateway-{gateway['id']}"]
            cmd += ["--client-id", f"prepaid-gateway-{gateway['id']}-{member}"]
            cmd += ["--dead-letter-file", f"dead-letters-{gateway['id']}-{member}.jsonl"]
        return self._spawn(name, cmd, self.local / f"{name}.log")

    # --- faults (the chaos test) --- #
    def kill(self, name: str) -> None:
        """SIGKILL one of the stack's processes (no clean-up of its own)."""
        process = self.processes[name]
        process.kill()
        process.wait(10)

    def restart_runner(self, gateway: dict) -> None:
        """A runner killed with SIGKILL, then started again."""
        self.kill(f"runner-{gateway['id']}")
        self.start_runner(gateway)

    def revive_odoo(self) -> bool:
        """Start Odoo again if it exited, as a service manager would (``Restart=always``):
        Odoo's prefork master exits when it cannot reach PostgreSQL while it starts a
        worker. True if it was started again."""
        process = self.processes.get("odoo")
        if process is None or process.poll() is None:
            return False
        deadline = time.monotonic() + 30
        while not port_free(self.http_port) and time.monotonic() < deadline:
            time.sleep(0.5)  # its workers are still closing
        self.start_odoo()
        return True

    def restart_broker(self) -> None:
        """Mosquitto stopped (it saves its persistent sessions) and started again."""
        process = self.processes.pop("mosquitto")
        process.terminate()
        process.wait(20)
        self.start_broker()

    # --- all --- #
    def start(self) -> None:
        self.local.mkdir(parents=True, exist_ok=True)
        for port, what in ((self.broker_port, "broker"), (self.sim_base_port, "simulator")):
            if not port_free(port):
                raise StackError(f"port {port} ({what}) is taken: choose another one")
        created = self.ensure_database()
        self.start_broker()
        self.start_odoo()
        self.configure()
        if created:
            self.start_recharges()
        self.start_runners()
        self.start_simulator()

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                self.say(f"Stopping {name}")
                process.send_signal(signal.SIGINT if name == "simulator" else signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self.processes.clear()


#: the banner printed once the demo runs, in English and in each language of LOCALES (the
#: same fields: ``str.format`` of :func:`banner`)
BANNERS = {
    "": """
  Prepaid energy suite is running: {url}/odoo/action-prepaid_meter.prepaid_meter_action

  Logins (login / password):
    admin      / admin        administrator, prepaid manager (both landlords)
    operator   / operator     prepaid operator (desk)
    accountant / accountant   read-only accountant
    tenant     / tenant       {tenant} in the portal: {url}/my/meters
                              (online recharge through the demo payment provider)

  The simulated site: 2 landlords, {collectors} TCP collectors ({buses} RS-485 buses, \
polled every minute) and {mqtt_meters} 4G meters (a reading every {interval} s).
  Within the first minutes: readings arrive and are charged at once; Bright Optics
  (A-102) crosses alarm 1, Urban Threads (A-103) alarm 2 with a 2-minute reminder cut;
  {tenant} (A-101, the tenant login), a 4G flat (B-101) and a Harbour View flat run
  out of credit and are cut. Recharge {tenant} in the portal: supply comes back.

  Meters that keep their own balance (Meter Billing mode): the 4G flats B-102, B-103,
  B-104 ({own_token_meters}) get every recharge as a token over their
  connection; B-105 and B-201 ({sts_meters}) are STS keypad meters. Recharge
  one at the desk (Accounts, Recharge, choose the meter): Prepaid, Meter Credits shows its
  credit and, for managers, its token; the meter's Commands list the deliveries. To type
  an STS token on a simulated keypad, enter here a line with the meter's address and the
  20 digits, e.g.  {sts_meter} 1234 5678 9012 3456 7890

  Database: {db}; logs in {local}
  Press Ctrl-C to stop.
""",
    "zh_CN": """
  预付费能源管理系统已运行：{url}/odoo/action-prepaid_meter.prepaid_meter_action

  登录（用户名 / 密码）：
    admin      / admin        管理员，预付费经理（两个业主）
    operator   / operator     预付费操作员（营业厅）
    accountant / accountant   只读会计
    tenant     / tenant       门户中的租户{tenant}：{url}/my/meters
                              （通过演示支付服务商在线充值）

  模拟现场：2 个业主，{collectors} 台 TCP 采集器（{buses} 条 RS-485 总线，每分钟轮询抄表）\
和 {mqtt_meters} 块 4G 电表（每 {interval} 秒一条读数）。
  最初几分钟内：读数陆续到达并立即扣费；明亮眼镜（A-102）达到一级报警，都市服饰（A-103）
  达到二级报警并短暂拉闸 2 分钟提醒；{tenant}（A-101，租户登录账号）、一户 4G 公寓（B-101）
  和一户海景苑公寓余额用尽，拉闸断电。在门户中为{tenant}充值：恢复供电（合闸）。

  表端计费的电表：4G 公寓 B-102、B-103、B-104（{own_token_meters}）的每笔充值都以充值码
  经电表自身的连接下发；B-105 和 B-201（{sts_meters}）是 STS 键盘表。在营业厅为其中一块充值
  （预付费账户，充值，选择电表）：预付费 › 仪表充值额度 中可看到充值额度，经理还可看到充值码；
  电表的“指令”列出各次下发。要在模拟键盘上输入 STS 充值码，请在此输入一行：电表地址加 20 位
  数字，例如  {sts_meter} 1234 5678 9012 3456 7890

  数据库：{db}；日志在 {local}
  语言：所有用户和租户均为简体中文（业主以人民币结算）；门户页脚可在 English 与简体中文之间切换。
  按 Ctrl-C 停止。
""",
}
#: the tenant login's name in each language of the demo
TENANT_NAMES = {"": "Green Leaf Cafe", "zh_CN": "绿叶咖啡"}
#: the keypad console's words: (accepted, refused, balance) in each language
KEYPAD_WORDS = {"": ("accepted", "refused", "balance"), "zh_CN": ("已接受", "被拒绝", "余额")}


def banner(stack: Stack) -> str:
    """What the demo prints once it runs, in the demo's language (English by default)."""
    return BANNERS.get(stack.lang, BANNERS[""]).format(
        url=stack.url,
        tenant=TENANT_NAMES.get(stack.lang, TENANT_NAMES[""]),
        collectors=COLLECTORS,
        buses=COLLECTORS * BUSES,
        mqtt_meters=MQTT_METERS,
        interval=READING_INTERVAL,
        own_token_meters=", ".join(OWN_TOKEN_METERS),
        sts_meters=", ".join(STS_METERS),
        sts_meter=next(iter(STS_METERS)),
        db=stack.db,
        local=stack.local,
    )


def keypad_console(stack: Stack) -> None:
    """Lines ``ADDRESS TOKEN`` typed in the demo's terminal go to that simulated meter's
    keypad; its answer is printed."""
    for line in sys.stdin:
        address, _, token = line.strip().partition(" ")
        if not token:
            continue
        try:
            answer = stack.type_token(address, token)
        except StackError as exc:
            print(f"!!  {exc}", flush=True)
            continue
        print(keypad_answer(stack.lang, address, answer), flush=True)


def keypad_answer(lang: str, address: str, answer: dict) -> str:
    """The line printed for a simulated keypad's ``answer`` to a token, in ``lang``."""
    accepted, refused, balance = KEYPAD_WORDS.get(lang, KEYPAD_WORDS[""])
    verdict = accepted if answer.get("accepted") else f"{refused}: {answer.get('error')}"
    token = answer.get("token", "token")
    return f"{address}: {token} {verdict}, {balance} {answer.get('balance')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=os.environ.get("DEMO_DB", "prepaid_demo"))
    parser.add_argument("--http-port", type=int, default=int(os.environ.get("DEMO_PORT", 8069)))
    parser.add_argument(
        "--broker-port", type=int, default=int(os.environ.get("DEMO_MQTT_PORT", 18830))
    )
    parser.add_argument(
        "--sim-port", type=int, default=int(os.environ.get("DEMO_SIM_PORT", 9100)),
        help="port of the first simulated RS-485 bus (12 consecutive ports)",
    )  # fmt: skip
    parser.add_argument("--addons-path", default="")
    parser.add_argument(
        "--lang", default=os.environ.get("DEMO_LANG", ""),
        help=f"build a new database in this language ({', '.join(LOCALES)}; default: "
        "$DEMO_LANG, else English)",
    )  # fmt: skip
    parser.add_argument("--reset", action="store_true", help="drop the database first")
    parser.add_argument(
        "--update", action="store_true",
        help="upgrade the add-ons (done anyway when their code changed)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    lang = "" if args.lang in ("", "en", "en_US") else args.lang
    if lang not in ("", *LOCALES):
        parser.error(f"--lang / DEMO_LANG: {args.lang} is not one of en_US, {', '.join(LOCALES)}")
    stack = Stack(
        db=args.db,
        http_port=args.http_port,
        broker_port=args.broker_port,
        sim_base_port=args.sim_port,
        addons_path=args.addons_path,
        fresh=args.reset,
        update=args.update,
        lang=lang,
    )
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        stack.start()  # Ctrl-C here: KeyboardInterrupt, what started is stopped
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        print(banner(stack), flush=True)
        if sys.stdin.isatty():
            threading.Thread(target=keypad_console, args=(stack,), daemon=True).start()
        while not stopping:
            dead = stack.dead()
            if dead:
                print(f"!!  {', '.join(dead)} stopped: see {stack.local}", file=sys.stderr)
                return 1
            time.sleep(1)
        return 0
    except (StackError, OSError, RuntimeError, requests.RequestException) as exc:
        print(f"!!  {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
