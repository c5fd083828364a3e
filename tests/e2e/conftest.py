"""The end-to-end test runs the demo's own stack (scripts/demo_stack.py): PostgreSQL (the
one PGHOST names), Mosquitto, Odoo 19 with the suite and its demo data on a fresh database,
the simulator fleet and the gateway runners."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import demo_stack  # noqa: E402


def _port(name, default):
    return int(os.environ.get(name, default))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A fresh demo site, stopped and its database dropped afterwards.

    E2E_DB_PREFIX, E2E_HTTP_PORT, E2E_MQTT_PORT, E2E_SIM_PORT choose the names and ports
    (the defaults suit one run at a time on a machine)."""
    # a `timeout` (SIGTERM) stops the site like Ctrl-C does: its processes run in sessions
    # of their own and would outlive the test otherwise
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    prefix = os.environ.get("E2E_DB_PREFIX", "prepaid_e2e")
    site = demo_stack.Stack(
        db=f"{prefix}_{int(time.time())}_{os.getpid()}",
        http_port=_port("E2E_HTTP_PORT", 8179),
        broker_port=_port("E2E_MQTT_PORT", 18839),
        sim_base_port=_port("E2E_SIM_PORT", 27100),
        local=(local := tmp_path_factory.mktemp("site")),
        fresh=True,
        quiet=False,
        workers=2,  # prefork mode, as in production (the chaos test kills a worker)
        record=local / "record.jsonl",
    )
    try:
        site.start()
        yield site
    finally:
        site.stop()
        if os.environ.get("E2E_KEEP_DB") != "1":
            subprocess.run(["dropdb", "--if-exists", site.db], capture_output=True, check=False)
