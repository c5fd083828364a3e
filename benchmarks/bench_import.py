"""M9 benchmark: a site of 10,000 meters with their tenants, imported three ways in one run.

One generated site (``--meters`` units, each with a meter and a tenant; 40 buildings;
collectors of 8 buses of at most 32 meters) is imported
1. from one site workbook by the *Import Site Workbook* wizard at once (every sheet checked,
   then created in one transaction; the background threshold raised above the file's rows),
2. from the same workbook in the background: the wizard's check and queueing, then the
   import job's batches (``prepaid.site.import``, here all in the run's transaction), and
3. by Odoo's plain import (``base_import.import.execute_import``, what the import screen
   runs) from the same rows as the templates' CSV files: sites, buildings, units, gateways
   with their buses, meters, tenancies (tenants created by name), one file after the other
   (``--no-plain`` leaves it out).
Each is timed (wall seconds, rows per second over the meters and tenancies) and rolled
back.  Not a test; exits 0.

    PGHOST=... PGPORT=... python3 benchmarks/bench_import.py [--meters N] [--db NAME]
"""

import argparse
import base64
import csv
import io
import time

from odoo_bench import open_registry

from odoo import api

from prepaid_core.onboarding import write_workbook

BACKGROUND_ROWS_PARAM = "prepaid_meter.site_import_background_rows"

BUILDINGS = 40
BUSES_PER_GATEWAY = 8
METERS_PER_BUS = 32
MODEL_CODE = "DDSY-5(60)A"


def site_rows(meters):
    """``{sheet: [row values by column key]}`` of the generated site."""
    per_gateway = BUSES_PER_GATEWAY * METERS_PER_BUS
    gateways = -(-meters // per_gateway)
    rows = {
        "Sites": [{"code": "BENCH", "name": "Bench Park"}],
        "Buildings": [{"site": "BENCH", "name": f"B{b:02d}"} for b in range(BUILDINGS)],
        "Gateways": [
            {"site": "BENCH", "name": f"GW{g:03d}", "gateway_type": "tcp_collector",
             "host": f"10.0.{g // 250}.{g % 250 + 1}", "bus": str(b + 1),
             "port": str(9001 + b), "protocol": "dlt645_2007"}
            for g in range(gateways)
            for b in range(BUSES_PER_GATEWAY)
        ],
        "Units": [],
        "Meters": [],
        "Tenants": [],
    }  # fmt: skip
    for n in range(meters):
        building, unit = f"B{n % BUILDINGS:02d}", f"U{n:05d}"
        place = {"site": "BENCH", "building": building, "unit": unit}
        gateway, bus = divmod(n // METERS_PER_BUS, BUSES_PER_GATEWAY)
        rows["Units"].append({"site": "BENCH", "building": building, "name": unit})
        rows["Meters"].append(
            {**place, "name": f"M{n:05d}", "serial": f"S{n:07d}", "address": f"{n + 1:012d}",
             "model": MODEL_CODE, "gateway": f"GW{gateway:03d}", "bus": str(bus + 1)}
        )  # fmt: skip
        rows["Tenants"].append(
            {**place, "name": f"Tenant {n:05d}", "phone": f"+86 139 {n:08d}",
             "date_start": "2026-01-01"}
        )  # fmt: skip
    return rows


def template_files(rows):
    """``[(model, header, lines)]``: the same site as the import templates' CSV files."""
    gateway_lines, seen = [], set()
    for row in rows["Gateways"]:
        first = row["name"] not in seen
        seen.add(row["name"])
        gateway_lines.append(
            [f"gw_{row['name']}" if first else "", row["name"] if first else "",
             row["gateway_type"] if first else "", row["host"] if first else "",
             "site_bench" if first else "", row["bus"], row["port"], row["protocol"]]
        )  # fmt: skip
    return [
        ("prepaid.site", ["id", "code", "name"], [["site_bench", "BENCH", "Bench Park"]]),
        ("prepaid.building", ["id", "name", "site_id/id"],
         [[f"bld_{r['name']}", r["name"], "site_bench"] for r in rows["Buildings"]]),
        ("prepaid.unit", ["id", "name", "building_id/id"],
         [[f"unit_{r['name']}", r["name"], f"bld_{r['building']}"] for r in rows["Units"]]),
        ("prepaid.gateway",
         ["id", "name", "gateway_type", "host", "site_id/id", "bus_ids/number", "bus_ids/port",
          "bus_ids/protocol"],
         gateway_lines),
        ("prepaid.meter",
         ["name", "serial", "address", "model_id", "unit_id/id", "gateway_id/id", "bus_id"],
         [[r["name"], r["serial"], r["address"], r["model"], f"unit_{r['unit']}",
           f"gw_{r['gateway']}", f"{r['gateway']} / COM{r['bus']}"] for r in rows["Meters"]]),
        ("prepaid.tenancy", ["partner_id", "unit_id/id", "date_start"],
         [[r["name"], f"unit_{r['unit']}", r["date_start"]] for r in rows["Tenants"]]),
    ]  # fmt: skip


def odoo_import(env, model, header, lines):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(lines)
    wizard = env["base_import.import"].create(
        {"res_model": model, "file": text.getvalue().encode(), "file_type": "text/csv"}
    )
    options = {
        "has_headers": True,
        "quoting": '"',
        "separator": ",",
        "date_format": "%Y-%m-%d",
        "name_create_enabled_fields": {"partner_id": True},
    }
    result = wizard.execute_import(header, header, options)
    errors = [m for m in result["messages"] if m["type"] == "error"]
    if errors:
        raise SystemExit(f"{model}: {errors[:3]}")
    return len(result["ids"])


def run_wizard(env, data):
    """The wizard's import at once (the workbook below the background threshold)."""
    env["ir.config_parameter"].set_param(BACKGROUND_ROWS_PARAM, 10**9)
    wizard = env["prepaid.site.workbook"].create({"file": base64.b64encode(data)})
    started = time.perf_counter()
    wizard.action_import()
    seconds = time.perf_counter() - started
    if wizard.state != "done":
        raise SystemExit(wizard.error_ids[:3].mapped(lambda e: (e.sheet, e.row, e.message)))
    return seconds


def run_background(env, data):
    """The wizard's check and queueing, then every batch of the import job."""
    env["ir.config_parameter"].set_param(BACKGROUND_ROWS_PARAM, 500)
    wizard = env["prepaid.site.workbook"].create({"file": base64.b64encode(data)})
    started = time.perf_counter()
    action = wizard.action_import()
    if action["res_model"] != "prepaid.site.import":
        raise SystemExit(wizard.error_ids[:3].mapped(lambda e: (e.sheet, e.row, e.message)))
    job = env["prepaid.site.import"].browse(action["res_id"])
    job._import_batches()
    seconds = time.perf_counter() - started
    if job.state != "done" or job.error_ids or job.rows_done != job.rows_total:
        raise SystemExit(job.error_ids[:3].mapped(lambda e: (e.sheet, e.row, e.message)))
    return seconds


def run_plain(env, files):
    started = time.perf_counter()
    for model, header, lines in files:
        odoo_import(env, model, header, lines)
    return time.perf_counter() - started


def report(name, seconds, meters):
    rows = 2 * meters  # a meter and a tenancy each
    print(f"{name:<34} {seconds:8.1f} s  {rows / seconds:8.0f} meter+tenant rows/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--db", default="prepaid_bench")
    parser.add_argument("--no-plain", action="store_true", help="leave Odoo's import out")
    args = parser.parse_args()
    registry = open_registry(args.db, "meter_gateway")
    rows = site_rows(args.meters)
    data = write_workbook(rows)
    print(f"{args.meters} meters, {len(rows['Gateways'])} buses, workbook {len(data) >> 10} KiB")
    with registry.cursor() as cr:
        env = api.Environment(cr, api.SUPERUSER_ID, {})
        report("site workbook wizard", run_wizard(env, data), args.meters)
        cr.rollback()
        env.invalidate_all()
        report("site workbook in the background", run_background(env, data), args.meters)
        cr.rollback()
        env.invalidate_all()
        if not args.no_plain:
            files = template_files(rows)
            report("Odoo import of the template files", run_plain(env, files), args.meters)
            cr.rollback()


if __name__ == "__main__":
    main()
