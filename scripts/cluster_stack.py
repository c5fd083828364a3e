#!/usr/bin/env python3
"""The suite past one machine, brought up on this one (X2): ``scripts/cluster.sh`` runs this.

    python3 scripts/cluster_stack.py up      # in the foreground; Ctrl-C stops it all

A PostgreSQL primary and a streaming replica (``pg_basebackup -R`` on a physical
replication slot), two Odoo nodes in prefork mode sharing the database and one
``data_dir``, their read-only requests sent to the replica (``db_replica_host``), HAProxy in
front (health checks on ``/web/health``), one Mosquitto and two gateway runners per 4G
gateway sharing its meters (an MQTT 5 shared subscription), and the demo's simulator fleet.
Everything lives under ``.local/cluster/`` and listens on 127.0.0.1 only. It is the demo's
:class:`demo_stack.Stack` with more of each part; the cluster test (``tests/e2e``) drives
the same :class:`Cluster`. See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_stack

ROOT = demo_stack.ROOT
#: the PostgreSQL role of the cluster's servers (Odoo refuses ``postgres``)
PG_USER = "odoo"
#: a physical replication slot: the primary keeps the WAL the replica has not received
REPLICATION_SLOT = "cluster_replica"
#: the server settings of scripts/common.sh (PG_OPTIONS), with less shared memory: two
#: servers on one small machine
PG_SMALLER = "-c shared_buffers=256MB"


def pg_bin() -> Path:
    """PostgreSQL's server programs: ``$PG_BIN``, else the newest under /usr/lib/postgresql."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts)
    if not found:
        raise demo_stack.StackError("PostgreSQL server binaries not found (apt install postgresql)")
    return found[-1].parent


def common_setting(name: str) -> str:
    """A variable of scripts/common.sh (the project's one place for such settings)."""
    return subprocess.run(
        ["bash", "-c", f'source "$1" >/dev/null && printf %s "${name}"', "-", "scripts/common.sh"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


@dataclass
class Postgres:
    """One PostgreSQL server of the cluster (the primary or the replica), run by the owner
    of its data directory: ``postgres`` when started as root, as scripts/common.sh does."""

    name: str
    port: int
    home: Path  # holds data/, run/ (its socket) and server.log

    @property
    def data(self) -> Path:
        return self.home / "data"

    def run(self, tool: str, *args: str, check: bool = True, **kwargs):
        cmd = [str(pg_bin() / tool), *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(
            cmd, check=check, stdin=subprocess.DEVNULL, capture_output=True, **kwargs
        )

    def prepare(self) -> None:
        (self.home / "run").mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.home, self.home / "run"):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def initdb(self) -> bool:
        """A new primary (True), unless it exists."""
        self.prepare()
        if (self.data / "PG_VERSION").exists():
            return False
        self.run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8")  # fmt: skip
        return True

    def basebackup(self, primary: Postgres) -> bool:
        """A new replica of ``primary`` (True), unless it exists: ``pg_basebackup -R`` writes
        its standby settings, ``-C -S`` creates its replication slot on the primary."""
        self.prepare()
        if (self.data / "PG_VERSION").exists():
            return False
        primary.sql(f"SELECT pg_drop_replication_slot('{REPLICATION_SLOT}') FROM "
                    f"pg_replication_slots WHERE slot_name = '{REPLICATION_SLOT}'")  # fmt: skip
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", PG_USER,
                 "-D", str(self.data), "-R", "-X", "stream", "-C", "-S", REPLICATION_SLOT,
                 )  # fmt: skip
        return True

    def options(self) -> str:
        return (
            f"-p {self.port} -k {self.home / 'run'} -c listen_addresses=127.0.0.1 "
            f"{os.environ.get('PG_OPTIONS') or common_setting('PG_OPTIONS')} {PG_SMALLER}"
        )

    def start(self, timeout: float = 60) -> None:
        """Start it (once the processes of a killed one are gone)."""
        if self.running():
            return
        deadline = time.monotonic() + timeout
        while True:
            log = self.home / "server.log"
            done = self.run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
                            "-o", self.options(), "start", check=False)  # fmt: skip
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise demo_stack.StackError(
                    f"PostgreSQL {self.name} did not start: see {self.home / 'server.log'}"
                )
            time.sleep(1)

    def running(self) -> bool:
        return self.run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self) -> None:
        if (self.data / "PG_VERSION").exists() and self.running():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the server and all its processes: the machine it runs on is gone."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for each in [pid, *map(int, children)]:
            try:
                os.kill(each, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sql(self, query: str, db: str = "postgres") -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", db, "-tAc",
             query],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip


def haproxy_config(port: int, nodes: list[int]) -> str:
    """HAProxy in front of the Odoo nodes: the HTTP port of each (health-checked on
    /web/health), the websocket to each node's gevent port; a request a dead node did not
    answer is sent to the other one."""
    http = "\n".join(
        f"    server node{i} 127.0.0.1:{p} check inter 1s fall 2 rise 2"
        for i, p in enumerate(nodes, 1)
    )
    websocket = "\n".join(
        f"    server node{i} 127.0.0.1:{p + 1} check port {p} inter 1s fall 2 rise 2"
        for i, p in enumerate(nodes, 1)
    )
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 3s
    timeout client 600s
    timeout server 600s
    retries 3
    option redispatch
    option forwardfor
frontend odoo
    bind 127.0.0.1:{port}
    use_backend websocket if {{ path_beg /websocket }}
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /web/health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
{http}
backend websocket
    balance roundrobin
    option httpchk
    http-check send meth GET uri /web/health ver HTTP/1.1 hdr Host localhost
{websocket}
"""


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Cluster(demo_stack.Stack):
    """The demo's site on a cluster (see the module docstring). ``http_port`` is HTTP on
    the load balancer; the nodes, the broker and the simulator take the ports after it."""

    pg_port: int = 56100  # the primary's; the replica's is the next one
    nodes: int = 2
    servers: dict = field(default_factory=dict)
    saved_env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.workers = self.workers or 2
        self.servers = {
            "primary": Postgres("primary", self.pg_port, self.local / "pg-primary"),
            "replica": Postgres("replica", self.pg_port + 1, self.local / "pg-replica"),
        }

    @classmethod
    def from_environment(cls, **kwargs) -> Cluster:
        """Ports from CLUSTER_BASE_PORT (HTTP: load balancer, nodes, broker, simulator) and
        CLUSTER_PG_PORT (PostgreSQL); the database from CLUSTER_DB."""
        base = _port("CLUSTER_BASE_PORT", 7100)
        return cls(
            db=os.environ.get("CLUSTER_DB", "prepaid_cluster"),
            http_port=base,
            broker_port=base + 10,
            sim_base_port=base + 20,
            pg_port=_port("CLUSTER_PG_PORT", 56100),
            local=Path(os.environ.get("CLUSTER_DIR", ROOT / ".local" / "cluster")),
            **kwargs,
        )

    @property
    def primary(self) -> Postgres:
        return self.servers["primary"]

    @property
    def replica(self) -> Postgres:
        return self.servers["replica"]

    def node_names(self) -> list[str]:
        return [f"odoo-{n}" for n in range(1, self.nodes + 1)]

    def node_port(self, name: str) -> int:
        return self.http_port + 2 * int(name.rsplit("-", 1)[1])  # and the next: its websocket

    # --- PostgreSQL --- #
    def start_postgres(self) -> None:
        """The primary, then its replica (made from it the first time)."""
        created = self.primary.initdb()
        self.primary.start()
        if created:
            self.say(f"PostgreSQL primary created in {self.primary.home}")
        if self.replica.basebackup(self.primary):
            self.say(f"Replica made with pg_basebackup in {self.replica.home}")
        self.replica.start()
        self.say(f"PostgreSQL primary on 127.0.0.1:{self.primary.port}, replica on "
                 f"{self.replica.port} (streaming, slot {REPLICATION_SLOT})")  # fmt: skip
        for name, value in self.pg_env().items():
            self.saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def pg_env(self) -> dict:
        """What psql, createdb and Odoo's own connection settings read: the primary."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.primary.port), "PGUSER": PG_USER}

    def odoo_cmd(self, command: str = "") -> list[str]:
        return [
            *super().odoo_cmd(command),
            f"--data-dir={self.local / 'data'}",  # filestore and sessions, of every node
            "--db_replica_host=127.0.0.1",
            f"--db_replica_port={self.replica.port}",
        ]

    def worker_options(self, port: int = 0) -> list[str]:
        return [*super().worker_options(port), "--proxy-mode"]

    # --- Odoo nodes and the load balancer --- #
    def start_nodes(self) -> None:
        for name in self.node_names():
            self.start_odoo(name=name, port=self.node_port(name))
        config = self.local / "haproxy.cfg"
        ports = [self.node_port(name) for name in self.node_names()]
        config.write_text(haproxy_config(self.http_port, ports))
        self._spawn("haproxy", ["haproxy", "-db", "-f", str(config)], self.local / "haproxy.log")
        self.wait_for(f"{self.url}/web/health", "HAProxy")
        self.say(f"HAProxy on {self.url} in front of {len(ports)} Odoo nodes {ports}")

    def wait_for(self, url: str, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise demo_stack.StackError(f"{what} did not answer on {url}")

    def kill_node(self, name: str) -> None:
        """SIGKILL a node, its workers with it: the machine it runs on is gone."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def restart_node(self, name: str) -> None:
        deadline = time.monotonic() + 30
        while not demo_stack.port_free(self.node_port(name)) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.start_odoo(name=name, port=self.node_port(name))

    # --- runners --- #
    def runner_names(self) -> list[str]:
        return [f"runner-{g['id']}-{m}" for g in self.gateways for m in ("a", "b")]

    def start_runners(self) -> None:
        for gateway in self.gateways:
            for member in ("a", "b"):
                self.start_runner(gateway, member)
        self.say(f"{2 * len(self.gateways)} gateway runners, two sharing each 4G gateway")

    def runner_member(self, name: str) -> tuple[dict, str]:
        """``(gateway, member)`` of the runner ``name`` (to start it again)."""
        _, gateway_id, member = name.split("-")
        [gateway] = [g for g in self.gateways if g["id"] == int(gateway_id)]
        return gateway, member

    # --- all --- #
    def start(self) -> None:
        self.local.mkdir(parents=True, exist_ok=True)
        ports = [self.http_port, self.broker_port, self.sim_base_port]
        ports += [self.node_port(name) + i for name in self.node_names() for i in (0, 1)]
        taken = [port for port in ports if not demo_stack.port_free(port)]
        if taken:
            raise demo_stack.StackError(f"ports taken: {taken} (set CLUSTER_BASE_PORT)")
        self.start_postgres()
        created = self.ensure_database()
        self.start_broker()
        self.start_nodes()
        self.configure()
        if created:
            self.start_recharges()
        self.start_runners()
        self.start_simulator()
        self.write_state()

    def write_state(self) -> None:
        """What ``cluster.sh status`` shows."""
        state = {
            "db": self.db,
            "url": self.url,
            "nodes": {name: self.node_port(name) for name in self.node_names()},
            "postgres": {name: server.port for name, server in self.servers.items()},
            "broker": self.broker_port,
            "processes": {name: p.pid for name, p in self.processes.items()},
        }
        (self.local / "state.json").write_text(json.dumps(state, indent=2))

    def close(self) -> None:
        """Everything stopped (:meth:`stop`, which leaves the database servers up to be
        read), then the database servers."""
        self.stop()
        for server in (self.replica, self.primary):
            server.stop()
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        (self.local / "state.json").unlink(missing_ok=True)


def status(local: Path) -> int:
    """Each part of a running cluster: up or not."""
    path = local / "state.json"
    if not path.exists():
        print("cluster: not running")
        return 1
    state = json.loads(path.read_text())
    down = 0
    for name, pid in state["processes"].items():
        alive = Path(f"/proc/{pid}").exists()
        down += not alive
        print(f"{name:14} {'up' if alive else 'DOWN'} (pid {pid})")
    for name, port in state["nodes"].items():
        print(f"{name:14} http://127.0.0.1:{port}/web/health: {_health(port)}")
    print(f"{'load balancer':14} {state['url']}/web/health: {_health(state['url'])}")
    for name, port in state["postgres"].items():
        ready = subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                               capture_output=True, check=False).returncode == 0  # fmt: skip
        down += not ready
        print(f"{'pg ' + name:14} 127.0.0.1:{port} {'accepting' if ready else 'DOWN'}")
    return 1 if down else 0


def _health(where) -> str:
    url = where if isinstance(where, str) else f"http://127.0.0.1:{where}"
    try:
        return str(requests.get(f"{url}/web/health", timeout=5).status_code)
    except requests.RequestException as exc:
        return f"DOWN ({type(exc).__name__})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "status"))
    parser.add_argument("--reset", action="store_true", help="drop the database first")
    args = parser.parse_args(argv)
    cluster = Cluster.from_environment(fresh=args.reset, record=None)
    if args.command == "status":
        return status(cluster.local)
    stopping = []

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # while it starts: what started is stopped
    try:
        cluster.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, _frame: stopping.append(signum))
        cluster.say(f"Cluster up: {cluster.url} (admin / admin); stop: scripts/cluster.sh down")
        while not stopping and not cluster.dead():
            time.sleep(1)
        if not stopping:
            print(f"!!  {', '.join(cluster.dead())} stopped: see {cluster.local}", file=sys.stderr)
        return 0 if stopping else 1
    except (demo_stack.StackError, OSError, RuntimeError, requests.RequestException) as exc:
        print(f"!!  {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
