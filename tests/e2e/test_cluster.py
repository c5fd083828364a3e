"""X2 past one box (``scripts/cluster_stack.py``): during a fleet's run on the cluster, an
Odoo node, a gateway runner and the read replica are killed (SIGKILL) and started again;
then, against the simulator's record, no reading lost or doubled, every balance equal to
its ledger and the charges those of a clean run (``site_chaos.check_site``), each node's
cron workers having charged shards; reads went to the primary while the replica was down
and back to the replica afterwards; readings kept being stored at the fleet's rate.

Short by default (CI); ``CLUSTER_SECONDS=300`` (each phase) gives the longer form."""

import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import cluster_stack
import pytest
import site_chaos

SECONDS = float(os.environ.get("CLUSTER_SECONDS", 40))


@pytest.fixture(scope="module")
def cluster():
    """A fresh cluster on its own ports (E2E_CLUSTER_PORT, E2E_CLUSTER_PG_PORT), closed and
    its directory removed afterwards (E2E_KEEP_DB=1 keeps it)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    prefix = os.environ.get("E2E_DB_PREFIX", "prepaid_e2e")
    local = cluster_stack.ROOT / ".local" / f"cluster-e2e-{os.getpid()}"
    site = cluster_stack.Cluster(
        db=f"{prefix}_cluster_{int(time.time())}",
        http_port=(base := int(os.environ.get("E2E_CLUSTER_PORT", 7150))),
        broker_port=base + 10,
        sim_base_port=base + 20,
        pg_port=int(os.environ.get("E2E_CLUSTER_PG_PORT", 56150)),
        local=local,
        fresh=True,
        record=local / "record.jsonl",
    )
    try:
        site.start()
        yield site
    finally:
        site.close()
        if os.environ.get("E2E_KEEP_DB") != "1":
            shutil.rmtree(local, ignore_errors=True)


class Reader:
    """A user of the web client reading meters through the load balancer (read-only
    requests: Odoo sends them to the replica), counting answers and errors by phase."""

    def __init__(self, site: cluster_stack.Cluster):
        self.session = site.admin()
        self.phase = "before"
        self.answers, self.errors = Counter(), Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(0.3):
            try:
                self.session.call(
                    "prepaid.meter", "search_read", [], fields=["name", "alarm_level"], limit=50
                )
                self.answers[self.phase] += 1
            except Exception:  # a request the dead node was answering: counted
                self.errors[self.phase] += 1

    def stop(self):
        self._stop.set()
        self._thread.join(30)


def replica_transactions(site) -> int:
    """Transactions the replica ran on the database (its statistics restart at a crash)."""
    return int(
        site.replica.sql(
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{site.db}'"
        )
        or 0
    )


def stored_per_second(site, start: datetime, end: datetime) -> float:
    """The 4G meters' readings stored whose time falls in [start, end), per second (they
    report at a steady rate; the polled buses come once a minute, a window's share varies)."""
    count = site.primary.sql(
        "SELECT count(*) FROM prepaid_meter_reading_store r JOIN prepaid_meter m "
        "ON m.id = r.meter_id WHERE m.address LIKE '9%' AND r.read_at >= "
        f"'{start:%Y-%m-%d %H:%M:%S}' AND r.read_at < '{end:%Y-%m-%d %H:%M:%S}'",
        db=site.db,
    )
    return int(count) / (end - start).total_seconds()


def deduction_jobs(site, name: str) -> int:
    """Deduction runs of a node's cron worker that charged something (its log)."""
    text = (site.local / f"{name}.log").read_text(errors="replace")
    done = re.findall(r"charge new readings.*fully done \(#loop \d+; done (\d+)", text)
    return sum(1 for count in done if int(count))


def run_phase(site, seconds: float) -> tuple[tuple[datetime, datetime], int]:
    """Let the fleet run ``seconds``: ``((start, end), transactions the replica ran)``."""
    start, before = now(), replica_transactions(site)
    time.sleep(seconds)
    return (start, now()), replica_transactions(site) - before


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def test_cluster_survives_a_node_a_runner_and_the_replica(cluster):
    site = cluster
    node, runner = site.node_names()[0], site.runner_names()[0]
    time.sleep(SECONDS / 2)  # warm-up: the first readings, the demo's first cuts
    reader = Reader(site)
    windows, replica = {}, {}
    try:
        windows["before"], replica["before"] = run_phase(site, SECONDS)
        # --- the faults: the replica's machine, an Odoo node, a runner --- #
        site.replica.kill()
        reader.phase = "down"
        site.kill_node(node)
        site.kill(runner)
        time.sleep(SECONDS)
        # --- back: the replica first, then the node (its workers read from it), the runner
        site.replica.start()
        site.restart_node(node)
        site.start_runner(*site.runner_member(runner))
        reader.phase = "after"
        windows["after"], replica["after"] = run_phase(site, SECONDS)
        streaming = site.primary.sql("SELECT state FROM pg_stat_replication")
    finally:
        reader.stop()
    fallback = (site.local / f"{site.node_names()[1]}.log").read_text(errors="replace")
    cutoff = datetime.now(UTC) - timedelta(seconds=1)
    report = site_chaos.check_site(site, cutoff)  # stops the site (not its databases)
    rates = {phase: stored_per_second(site, *window) for phase, window in windows.items()}
    jobs = {name: deduction_jobs(site, name) for name in site.node_names()}
    print(f"\nreads answered {dict(reader.answers)}, failed {dict(reader.errors)}")
    print(f"replica transactions {replica}; readings stored per second {rates}")
    print(f"deduction runs that charged, by node {jobs}")
    print(report.summary())
    # reads: on the replica, on the primary while it was down, on the replica again
    assert replica["before"] > 0 and replica["after"] > 0, replica
    assert reader.answers["down"] > 0 and reader.answers["after"] > 0, reader.answers
    assert "falling back to read-write cursor" in fallback
    assert reader.errors["after"] == 0, reader.errors
    assert streaming == "streaming"
    # the deduction ran on both nodes' cron workers, and charged each reading once
    assert all(jobs.values()), jobs
    # throughput: the fleet's readings stored at the rate they came before the faults
    assert rates["after"] >= 0.8 * rates["before"] > 0, rates
    assert report.readings["acknowledged"] > 0
    problems = report.problems([])
    if problems:
        pytest.fail("\n".join(problems))
