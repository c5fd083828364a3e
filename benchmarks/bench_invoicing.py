"""B9 benchmark: accounting of prepaid accounts on a billing day.

On ``--accounts`` open accounts (one meter each) of a company with prepaid accounting:
a desk recharge each (a posted customer payment), one day of consumption charged, then the
scheduled action *invoice consumption on billing days* (one invoice per account, posted and
reconciled with the recharge) and the agreement report over all of them.  Prints
recharges/s, invoices/s and the report's time.  Everything is rolled back at the end.

Needs Odoo 19 and PostgreSQL (the project's scripts start the private cluster):
    bash -c 'source scripts/common.sh && pg_start && python3 benchmarks/bench_invoicing.py'
The benchmark database (``prepaid_bench_accounting``) is created on first use and kept.
"""

import argparse
import os
import time
from datetime import date, datetime, timedelta

from odoo_bench import open_registry

import odoo
from odoo import Command, api

T0 = datetime(2031, 3, 30, 8, 0)
BILLING_DAY = date(2031, 4, 1)


def setup(env, count):
    company = env.company
    tax = env["account.tax"].create(
        {
            "name": "bench VAT 15% included",
            "amount": 15.0,
            "type_tax_use": "sale",
            "price_include_override": "tax_included",
            "company_id": company.id,
        }
    )
    product = env["product.product"].create(
        {"name": "bench electricity", "type": "service", "taxes_id": [Command.set(tax.ids)]}
    )
    env["prepaid.consumption.product"].search([("company_id", "=", company.id)]).unlink()
    env["prepaid.consumption.product"].create(
        {"company_id": company.id, "utility": "electricity", "product_id": product.id}
    )
    company.prepaid_accounting = True
    tariff = env["prepaid.tariff"].create(
        {
            "name": "bench flat",
            "timezone": "UTC",
            "version_ids": [
                Command.create(
                    {
                        "valid_from": datetime(2030, 1, 1),
                        "code": "v1",
                        "step_ids": [Command.create({"sequence": 1, "price_flat": 0.55})],
                    }
                )
            ],
        }
    )
    site = env["prepaid.site"].create({"name": "bench accounting site"})
    building = env["prepaid.building"].create({"name": "bench block", "site_id": site.id})
    units = env["prepaid.unit"].create(
        [{"name": f"bench-acc-{i}", "building_id": building.id} for i in range(count)]
    )
    model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
    meters = env["prepaid.meter"].create(
        [
            {
                "name": f"bench-acc-{i}",
                "address": f"{900000000000 + i:012d}",
                "model_id": model.id,
                "unit_id": unit.id,
                "state": "in_service",
            }
            for i, unit in enumerate(units)
        ]
    )
    tenants = env["res.partner"].create([{"name": f"bench tenant {i}"} for i in range(count)])
    tenancies = env["prepaid.tenancy"].create(
        [
            {"partner_id": tenant.id, "unit_id": unit.id, "date_start": "2031-01-01"}
            for tenant, unit in zip(tenants, units, strict=True)
        ]
    )
    tenancies.action_open()
    accounts = tenancies.account_ids
    accounts.write({"tariff_id": tariff.id, "invoiced_until": "2031-03-01"})
    return accounts, meters


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--db", default="prepaid_bench_accounting")
    args = parser.parse_args()

    registry = open_registry(args.db, "prepaid_billing")
    with registry.cursor() as cr:
        env = api.Environment(cr, odoo.SUPERUSER_ID, {})
        accounts, meters = setup(env, args.accounts)

        start = time.perf_counter()
        for account in accounts:
            account._recharge("100")
        recharge = time.perf_counter() - start

        rows = [
            {"meter_id": meter.id, "read_at": at, "forward_total": total}
            for meter in meters
            for at, total in ((T0, 1000), (T0 + timedelta(hours=10), 1012.34))
        ]
        env["prepaid.meter.reading"]._ingest(rows)
        env["prepaid.account"]._run_deductions(meter_ids=meters.ids)

        start = time.perf_counter()
        invoices = env["prepaid.account"]._cron_invoice_consumption(today=BILLING_DAY)
        invoicing = time.perf_counter() - start
        assert len(invoices) == len(accounts), (len(invoices), len(accounts))
        assert set(invoices.mapped("payment_state")) == {"paid"}

        start = time.perf_counter()
        rows = env["prepaid.agreement.report"].search_read(
            [("account_id", "in", accounts.ids)], ["difference"]
        )
        report = time.perf_counter() - start
        assert len(rows) == len(accounts) and not any(row["difference"] for row in rows)
        cr.rollback()
        load = os.getloadavg()[0]
        print(
            f"{len(accounts):,} accounts: desk recharges (posted payments) "
            f"{len(accounts) / recharge:,.1f}/s; billing-day invoicing (posted, reconciled) "
            f"{len(invoices) / invoicing:,.1f} invoices/s ({invoicing:.1f} s); agreement "
            f"report over them {report * 1000:.0f} ms; load average {load:.1f} (rolled back)",
            flush=True,
        )


if __name__ == "__main__":
    main()
