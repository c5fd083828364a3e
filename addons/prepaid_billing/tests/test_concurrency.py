"""B2/B3/B9 under real concurrency: two database connections on committed data (as two Odoo
workers or a worker and the scheduler would) never charge, credit or invoice twice, and
every balance stays equal to the sum of its ledger.

- two invoicing runs for the same billing day at once: one invoice per account;
- two deduction runs and a desk recharge at once (R11): each reading charged once, the
  recharge credited once;
- a deduction run and the invoicing at once: whichever commits first, each charge is
  invoiced once (now or on the next billing day), never twice, never lost;
- two notice-sending runs, one begun before the other committed: each notice sent once,
  and the later run passes over what the other sent instead of failing."""

from contextlib import closing
from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.concurrency import (
    ConcurrencyCase,
    forget,
    purge,
    purge_meters,
)

from prepaid_core.alarm import Notice

from ..const import DEDUCTION_SHARDS_PARAM

T0 = datetime(2026, 3, 30, 8, 0)
BILLING_DAY = date(2026, 4, 1)
ACCOUNTS = 2
COST = Decimal("6")  # 12 kWh at 0.5 per account


@tagged("post_install", "-at_install")
class TestBillingConcurrency(ConcurrencyCase):
    def _create(self, env):
        company = env.ref("base.main_company")
        self.created["accounting"] = company.prepaid_accounting
        company.prepaid_accounting = False  # the desk recharges: the ledger alone
        Product = env["prepaid.consumption.product"]
        if not Product.search_count(
            [("company_id", "=", company.id), ("utility", "=", "electricity")]
        ):
            tax = env["account.tax"].create(
                {
                    "name": "Concurrency VAT 15% included",
                    "amount": 15.0,
                    "type_tax_use": "sale",
                    "price_include_override": "tax_included",
                    "company_id": company.id,
                }
            )
            product = env["product.product"].create(
                {
                    "name": "Concurrency electricity",
                    "type": "service",
                    "taxes_id": [Command.set(tax.ids)],
                }
            )
            line = Product.create(
                {"company_id": company.id, "utility": "electricity", "product_id": product.id}
            )
            self.created.update(tax=tax.id, product=product.id, consumption_product=line.id)
        tariff = env["prepaid.tariff"].create(
            {
                "name": "Concurrency flat",
                "timezone": "UTC",
                "billing_day": 1,
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2020, 1, 1),
                            "code": "v1",
                            "step_ids": [Command.create({"sequence": 1, "price_flat": 0.5})],
                        }
                    )
                ],
            }
        )
        site = env["prepaid.site"].create({"name": "Billing Concurrency Park", "code": "BCC"})
        building = env["prepaid.building"].create({"name": "BC", "site_id": site.id})
        model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        meters, partners, rows = env["prepaid.meter"], env["res.partner"], []
        for index in range(ACCOUNTS):
            unit = env["prepaid.unit"].create({"name": f"BC-{index}", "building_id": building.id})
            # a tenant each: a partner's second invoice of a transaction raises its customer
            # rank after the commit, in a cursor that looks the registry up, which the test
            # runner holds (the thread would wait for the end of the tests)
            partner = env["res.partner"].create({"name": f"Billing Concurrency Tenant {index}"})
            partners |= partner
            meter = env["prepaid.meter"].create(
                {
                    "name": f"Power BC-{index}",
                    "model_id": model.id,
                    "unit_id": unit.id,
                    "state": "in_service",
                }
            )
            tenancy = env["prepaid.tenancy"].create(
                {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2026-01-01"}
            )
            tenancy.action_open()
            tenancy.account_id.tariff_id = tariff
            tenancy.account_id._recharge("100")
            meters |= meter
            for hours, total in ((0, 1000), (10, 1010), (12, 1012)):
                rows.append(
                    {
                        "meter_id": meter.id,
                        "read_at": T0 + timedelta(hours=hours),
                        "forward_total": total,
                    }
                )
        result = env["prepaid.meter.reading"]._ingest(rows)
        self.assertFalse(result["rejected"])
        self.created.update(
            company=company.id,
            tariff=tariff.id,
            site=site.id,
            building=building.id,
            partners=partners.ids,
            meters=meters.ids,
            tenancies=meters.unit_id.tenancy_ids.ids,
            accounts=sorted(meters.account_id.ids),
        )

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        cr.execute(
            "SELECT id FROM account_move WHERE prepaid_account_id = ANY(%s)", [ids["accounts"]]
        )
        moves = [row[0] for row in cr.fetchall()]
        for model, res_ids in (
            ("prepaid.account", ids["accounts"]),
            ("prepaid.tenancy", ids["tenancies"]),
            ("prepaid.meter", ids["meters"]),
            ("account.move", moves),
            ("res.partner", ids["partners"]),
        ):
            forget(cr, model, res_ids)
        purge(cr, "account_move", moves)
        purge(cr, "prepaid_account", ids["accounts"])
        purge(cr, "prepaid_tenancy", ids["tenancies"])
        purge_meters(cr, ids["meters"])
        purge(cr, "prepaid_building", [ids["building"]])
        purge(cr, "prepaid_site", [ids["site"]])
        purge(cr, "prepaid_tariff", [ids["tariff"]])
        purge(cr, "res_partner", ids["partners"])
        if ids.get("consumption_product"):
            purge(cr, "prepaid_consumption_product", [ids["consumption_product"]])
            cr.execute(
                "SELECT product_tmpl_id FROM product_product WHERE id = %s", [ids["product"]]
            )
            templates = [row[0] for row in cr.fetchall()]
            purge(cr, "product_product", [ids["product"]])
            purge(cr, "product_template", templates)
            purge(cr, "account_tax", [ids["tax"]])
        cr.execute(
            "UPDATE res_company SET prepaid_accounting = %s WHERE id = %s",
            [ids["accounting"], ids["company"]],
        )

    # === WHAT IS COMPARED === #
    def _ledgers(self):
        """Per account: balance, sum of its ledger, and the sums of each kind of line."""
        return self._query(
            """
            SELECT a.balance::text,
                   (SELECT COALESCE(SUM(l.amount), 0)::text FROM prepaid_account_line l
                     WHERE l.account_id = a.id),
                   (SELECT json_object_agg(k.kind, k.total) FROM (
                        SELECT l.kind, json_build_array(count(*), SUM(l.amount)::text) AS total
                          FROM prepaid_account_line l WHERE l.account_id = a.id
                         GROUP BY l.kind) k)
              FROM prepaid_account a
             WHERE a.id = ANY(%s)
             ORDER BY a.id
            """,
            [self.created["accounts"]],
        )

    def _accounting_on(self):
        def accounting_on(env):
            env.ref("base.main_company").prepaid_accounting = True

        self._committed(accounting_on)

    def _invoicer(self, day):
        def invoice(env):
            env["prepaid.account"]._cron_invoice_consumption(
                today=day, account_ids=self.created["accounts"]
            )

        return invoice

    def _deduct(self, env):
        env["prepaid.account"]._run_deductions(meter_ids=self.created["meters"])

    # === THE TESTS === #
    def test_two_invoicing_runs_at_once_invoice_each_account_once(self):
        """B9: the scheduled invoicing and a second run (another worker, a retried cron) for
        the same billing day at the same moment: one invoice per account, the consumption
        lines linked to it, the ledger untouched."""
        self._committed(self._deduct)
        self._accounting_on()
        before = self._ledgers()
        invoice = self._invoicer(BILLING_DAY)
        self._race(invoice, invoice)
        invoices = self._query(
            """
            SELECT prepaid_account_id, count(*), SUM(amount_total)::text,
                   MIN(prepaid_invoiced_until), bool_and(state = 'posted')
              FROM account_move WHERE prepaid_account_id = ANY(%s)
             GROUP BY prepaid_account_id ORDER BY prepaid_account_id
            """,
            [self.created["accounts"]],
        )
        self.assertEqual(
            [(row[0], row[1], Decimal(row[2]), row[3], row[4]) for row in invoices],
            [(account, 1, COST, BILLING_DAY, True) for account in self.created["accounts"]],
        )
        linked = self._query(
            """
            SELECT l.account_id, count(*), count(DISTINCT l.invoice_id),
                   bool_and(m.prepaid_account_id = l.account_id)
              FROM prepaid_account_line l JOIN account_move m ON m.id = l.invoice_id
             WHERE l.account_id = ANY(%s) AND l.kind = 'deduction'
             GROUP BY l.account_id ORDER BY l.account_id
            """,
            [self.created["accounts"]],
        )
        self.assertEqual(
            [row[2:] for row in linked], [(1, True)] * ACCOUNTS, "one invoice per account"
        )
        self.assertEqual(
            self._query(
                "SELECT invoiced_until FROM prepaid_account WHERE id = ANY(%s)",
                [self.created["accounts"]],
            ),
            [(BILLING_DAY,)] * ACCOUNTS,
        )
        after = self._ledgers()
        self.assertEqual(after, before, "invoicing moves no balance")
        for balance, ledger, _kinds in after:
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(Decimal(balance), Decimal(100) - COST)

    def test_two_deduction_runs_and_a_recharge_at_once(self):
        """B3/B4/R11: two deduction runs (the scheduler and a manager's) and a desk recharge
        of every account start at the same moment: each reading is charged once, each
        recharge credited once, and every balance is the sum of its ledger."""

        def recharge(env):
            for account in env["prepaid.account"].browse(self.created["accounts"]):
                account._recharge("50")

        self._race(self._deduct, self._deduct, recharge)
        for balance, ledger, kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(Decimal(balance), Decimal(150) - COST)
            self.assertEqual(kinds["recharge"][0], 2)
            self.assertEqual(Decimal(kinds["recharge"][1]), Decimal(150))
            self.assertEqual(Decimal(kinds["deduction"][1]), -COST)
        self.assertEqual(
            self._query(
                "SELECT billing_charged_until FROM prepaid_meter WHERE id = ANY(%s)",
                [self.created["meters"]],
            ),
            [(T0 + timedelta(hours=12),)] * ACCOUNTS,
        )
        # nothing is left to charge
        self.assertEqual(
            self._committed(
                lambda env: env["prepaid.account"]._run_deductions(meter_ids=self.created["meters"])
            ),
            0,
        )

    def test_two_nodes_charge_shards_side_by_side(self):
        """R11 scaled out: the accounts split into two shards, two scheduled runs (the cron
        workers of two Odoo nodes, committing batch by batch) start at the same moment; each
        takes the shards still free, and together they charge every reading once."""
        before = self._committed(
            lambda env: env["ir.config_parameter"].get_param(DEDUCTION_SHARDS_PARAM)
        )
        self._set_shards(2)
        self.addCleanup(self._set_shards, before)  # False: the parameter removed
        self.assertEqual(len({account % 2 for account in self.created["accounts"]}), 2)
        counts = []

        def node(env):
            counts.append(
                env["prepaid.account"]._run_deductions(
                    meter_ids=self.created["meters"], batch_size=1, commit=True
                )
            )

        self._race(node, node)
        self.assertEqual(sum(counts), 2 * ACCOUNTS, "two intervals a meter, each charged once")
        for balance, ledger, kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(kinds["deduction"][0], 1, "one consumption line a day")
            self.assertEqual(Decimal(kinds["deduction"][1]), -COST)
        self.assertEqual(
            self._committed(
                lambda env: env["prepaid.account"]._run_deductions(meter_ids=self.created["meters"])
            ),
            0,
        )

    def _set_shards(self, count):
        def set_shards(env):
            env["ir.config_parameter"].set_param(DEDUCTION_SHARDS_PARAM, count)

        self._committed(set_shards)

    def test_deduction_and_invoicing_at_once(self):
        """B3/B9: the deduction charges readings of the billed period while the invoicing of
        that billing day runs: if the invoicing commits first the charges are a backlog
        billed on the next billing day, else they are in this invoice; either way each
        deduction line is invoiced once and the invoices total what was charged."""
        self._accounting_on()
        self._race(self._deduct, self._invoicer(BILLING_DAY))
        self._committed(self._invoicer(date(2026, 5, 1)))
        lines = self._query(
            """
            SELECT l.account_id, SUM(-l.amount)::text, count(*), count(l.invoice_id)
              FROM prepaid_account_line l
             WHERE l.account_id = ANY(%s) AND l.kind = 'deduction'
             GROUP BY l.account_id ORDER BY l.account_id
            """,
            [self.created["accounts"]],
        )
        self.assertEqual(
            [(row[0], Decimal(row[1]), row[2] == row[3]) for row in lines],
            [(account, COST, True) for account in self.created["accounts"]],
            "every charge linked to an invoice",
        )
        invoiced = self._query(
            """
            SELECT prepaid_account_id, count(*), SUM(amount_total)::text
              FROM account_move
             WHERE prepaid_account_id = ANY(%s) AND state = 'posted'
               AND move_type = 'out_invoice'
             GROUP BY prepaid_account_id ORDER BY prepaid_account_id
            """,
            [self.created["accounts"]],
        )
        self.assertEqual(
            [(row[0], row[1], Decimal(row[2])) for row in invoiced],
            [(account, 1, COST) for account in self.created["accounts"]],
            "one invoice per account, for all that was charged",
        )
        for balance, ledger, _kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")

    def test_two_sending_runs_send_each_notice_once(self):
        """B8, R11: two sending actions (two cron workers, two nodes). The second began
        before the first committed the notices it sent: it finds them queued in its
        snapshot, cannot lock them, and passes over them: each tenant told once, and
        neither run fails."""
        accounts = self.created["accounts"]
        self._committed(
            lambda env: env["prepaid.account.notice"]._queue(
                [
                    (account, Notice("alarm1", "alarm1#race", "Credit is low.", None))
                    for account in accounts
                ]
            )
        )
        with closing(self._connect()) as cr:
            later = self._env(cr)["prepaid.account.notice"]
            self.assertEqual(later._queued_count(), ACCOUNTS)  # its snapshot, taken now
            first = self._committed(lambda env: env["prepaid.account.notice"]._send_queued())
            second = later._send_queued()
            cr.commit()  # pylint: disable=invalid-commit
        self.assertEqual((first, second), (ACCOUNTS, 0))
        rows = self._query(
            """
            SELECT n.state, (SELECT count(*) FROM mail_message m
                              WHERE m.model = 'prepaid.account' AND m.res_id = n.account_id
                                AND m.message_type = 'comment')
              FROM prepaid_account_notice n WHERE n.account_id = ANY(%s)
            """,
            [accounts],
        )
        self.assertEqual(rows, [("sent", 1)] * ACCOUNTS, "sent, and posted once")

    def test_forecast_batch_started_again_when_its_accounts_change(self):
        """T8 on a fleet that never stops being charged: a recharge of one of the batch's
        accounts commits after the batch's snapshot; the batch is started again and the
        forecast stored, instead of the whole run failing."""
        Account = self.registry_obj["prepaid.account"]
        first = self.created["accounts"][0]
        spent_by_day, meanwhile = Account._forecast_spent_by_day, []

        def spent(accounts, today):
            result = spent_by_day(accounts, today)  # the batch's snapshot is taken
            if not meanwhile and first in accounts.ids:
                meanwhile.append(
                    self._committed(lambda env: env["prepaid.account"].browse(first)._recharge("5"))
                )
            return result

        def forecasts(env):
            accounts = env["prepaid.account"].browse(self.created["accounts"])
            accounts._run_forecasts(commit=True)
            return accounts.mapped(lambda account: bool(account.forecast_at))

        with patch.object(Account, "_forecast_spent_by_day", spent):
            stored = self._committed(forecasts)
        self.assertTrue(meanwhile, "a recharge committed during the batch")
        self.assertEqual(stored, [True] * ACCOUNTS)
        for balance, ledger, _kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")

    def test_deduction_batch_started_again_when_a_recharge_commits_meanwhile(self):
        """R11 on a busy site: desk recharges of the batch's accounts commit after the
        batch's snapshot, before it locks its accounts; the batch is undone and started
        again, every reading charged once and every recharge kept, instead of the run
        failing."""
        Account = self.registry_obj["prepaid.account"]
        accounts = self.created["accounts"]
        load_meters, meanwhile = Account._deduct_load_meters, []

        def recharge(env):
            for account in env["prepaid.account"].browse(accounts):
                account._recharge("5")

        def load(model, meter_ids):
            if not meanwhile:  # the batch's snapshot is taken: the desk commits
                meanwhile.append(self._committed(recharge))
            return load_meters(model, meter_ids)

        with patch.object(Account, "_deduct_load_meters", load):
            charged = self._committed(
                lambda env: env["prepaid.account"]._run_deductions(
                    meter_ids=self.created["meters"], commit=True
                )
            )
        self.assertTrue(meanwhile, "a recharge committed during the batch")
        self.assertEqual(charged, 2 * ACCOUNTS, "two intervals a meter, each charged once")
        for balance, ledger, kinds in self._ledgers():
            self.assertEqual(Decimal(balance), Decimal(ledger), "balance == sum of the ledger")
            self.assertEqual(kinds["deduction"][0], 1, "one consumption line a day")
            self.assertEqual(Decimal(kinds["deduction"][1]), -COST)
        recharged = self._query(
            "SELECT count(*) FROM prepaid_account_line WHERE account_id = ANY(%s) "
            "AND kind = 'recharge' AND amount = 5",
            [accounts],
        )
        self.assertEqual(recharged, [(ACCOUNTS,)])
