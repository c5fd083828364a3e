"""Shared set-up of the benchmarks that need Odoo: a kept benchmark database on the
project's PostgreSQL (started by ``scripts/common.sh``'s ``pg_start``) and its registry."""

import contextlib
import os
import socket
import subprocess
import sys
import time

import odoo.release
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


def project_addons():
    addons = os.path.join(ROOT, "addons")
    return sorted(
        name
        for name in os.listdir(addons)
        if os.path.isfile(os.path.join(addons, name, "__manifest__.py"))
    )


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
            # -i installs the module; -u brings every add-on of the project that the
            # database has to the code (new versions, migrations)
            *("-i", module, "-u", ",".join(project_addons())),
            *("--stop-after-init", "--log-level=warn"),
        ],
        check=True,
    )
    config.parse_config(base)
    return Registry(db)


@contextlib.contextmanager
def http_server(db, port=8075, workers=0, cron_workers=0, options=()):
    """An Odoo HTTP server on ``db`` (a subprocess; ``cron_workers`` cron workers, none by
    default), stopped at the end; ``options``: more command-line options."""
    host, pg_port = os.environ.get("PGHOST"), os.environ.get("PGPORT", "5432")
    # odoo-bin (not ``-m odoo``): prefork spawns its gevent process from sys.argv[0]
    odoo_bin = os.path.join(os.path.dirname(odoo.release.__file__), os.pardir, "odoo-bin")
    command = [
        *(sys.executable, odoo_bin, "-c", f"{ROOT}/odoo.conf"),
        f"--addons-path={addons_path()}",
        *(f"--db_host={host}", f"--db_port={pg_port}", "--db_user=odoo", "-d", db),
        *(f"--db-filter=^{db}$", f"--http-port={port}", f"--workers={workers}"),
        *(f"--max-cron-threads={cron_workers}", "--log-level=warn", "--limit-time-real=1200"),
        *options,
    ]
    process = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError("the Odoo server exited")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the Odoo server did not listen within 120 s") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_gateway(env, name, gateway_type, meters, address_prefix, api_key=None, meter_name=None):
    """A gateway of the benchmark database with ``meters`` meters in service, addresses
    ``<address_prefix><n>`` (12 digits), named ``<meter_name>-<n>`` (the gateway's name
    by default), created in SQL on first use; returns the gateway."""
    gateway = env["prepaid.gateway"].search([("name", "=", name)], limit=1)
    if not gateway:
        gateway = env["prepaid.gateway"].create({"name": name, "gateway_type": gateway_type})
    if api_key:
        gateway._set_api_key(api_key)
    have = env["prepaid.meter"].search_count([("gateway_id", "=", gateway.id)])
    if have < meters:
        print(f"creating {meters - have} meters on {name} ...", flush=True)
        site = env["prepaid.site"].search([("name", "=", "Bench site")], limit=1)
        site = site or env["prepaid.site"].create({"name": "Bench site"})
        building = env["prepaid.building"].create({"name": name, "site_id": site.id})
        unit = env["prepaid.unit"].create({"name": name, "building_id": building.id})
        model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        width = 12 - len(address_prefix)
        # each meter with its latest-state record (prepaid.meter delegates to it)
        env.cr.execute(
            """
            WITH latest AS (
                INSERT INTO prepaid_meter_latest (connection_state, actual_relay_state,
                                                  relay_mismatch)
                SELECT 'never', 'unknown', false FROM generate_series(%s, %s)
                RETURNING id)
            INSERT INTO prepaid_meter (name, address, model_id, unit_id, building_id,
                site_id, company_id, gateway_id, state, ct_ratio, pt_ratio, multiplier,
                desired_relay_state, status, active, latest_id, billing_mode,
                utility, access_token, create_uid, write_uid, create_date, write_date)
            SELECT %s || '-' || n, %s || lpad(n::text, %s, '0'), %s, %s, %s, %s, %s, %s,
                   'in_service', 1, 1, 1, 'on', 'normal', true, l.id, 'server',
                   'electricity', md5(random()::text), 1, 1, now(), now()
              FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM latest) l
              JOIN generate_series(%s, %s) WITH ORDINALITY AS g(n, rn) ON g.rn = l.rn
            """,
            [
                *(have + 1, meters),
                *(meter_name or name, address_prefix, width, model.id, unit.id, building.id),
                site.id,
                *(env.company.id, gateway.id, have + 1, meters),
            ],
        )
        # the states are keyed by meter too (what the bulk path joins on)
        env.cr.execute(
            "UPDATE prepaid_meter_latest l SET meter_id = m.id FROM prepaid_meter m "
            "WHERE m.latest_id = l.id AND l.meter_id IS NULL"
        )
    env.cr.commit()
    return gateway


def gateway_readings(cr, gateway_id):
    """How many readings the store holds of the meters of a gateway."""
    cr.execute(
        "SELECT count(*) FROM prepaid_meter_reading_store r JOIN prepaid_meter m "
        "ON m.id = r.meter_id WHERE m.gateway_id = %s",
        [gateway_id],
    )
    return cr.fetchone()[0]


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def load_note():
    """The machine's load, printed beside the figures (the machine is shared)."""
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} cores"
