"""Shared set-up of the benchmarks that need Odoo: a kept benchmark database on the
project's PostgreSQL (started by ``scripts/common.sh``'s ``pg_start``) and its registry."""

import os
import subprocess
import sys

from odoo.modules.registry import Registry
from odoo.tools import config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def addons_path():
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT}/scripts/common.sh && addons_path"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def open_registry(db, module):
    """The registry of ``db``, created with ``module`` installed on first use and updated
    to the current code on later ones."""
    host, port = os.environ.get("PGHOST"), os.environ.get("PGPORT", "5432")
    if not host:
        sys.exit("Start PostgreSQL first: source scripts/common.sh && pg_start")
    base = ["-c", f"{ROOT}/odoo.conf", f"--addons-path={addons_path()}"]
    base += [f"--db_host={host}", f"--db_port={port}", "--db_user=odoo", "-d", db]
    exists = subprocess.run(
        ["psql", "-d", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{db}'"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    # create it, or bring a kept one up to the code (schema changes, migrations)
    print(f"{'updating' if exists == '1' else 'creating'} {db} with {module} ...", flush=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "odoo", *base),
            *("-u" if exists == "1" else "-i", module, "--stop-after-init", "--log-level=warn"),
        ],
        check=True,
    )
    config.parse_config(base)
    return Registry(db)
