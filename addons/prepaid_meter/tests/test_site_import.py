"""M9: a site workbook of 2,000 rows queued by the wizard and imported in the background in
batches; a run stopped before its commit and run again creates every record once; rows
refused by the models' rules are listed while the other rows are imported."""

import base64

from odoo.tests import tagged

from prepaid_core.onboarding import write_workbook

from .common import PrepaidMeterCommon

BUILDINGS = 4
GATEWAYS = 3
BUSES = 8  # per gateway
UNITS = 657  # a meter and a tenant each: 1 + 4 + 24 + 3 * 657 = 2,000 rows
BATCH = 300


class Stopped(Exception):
    """The run's process ends before its transaction commits."""


def site_rows(units=UNITS):
    """``{sheet: [values by column key]}``: a site of ``units`` units, each with a meter and
    a tenant, spread over the buses of three collectors (at most 32 meters a bus)."""
    rows = {
        "Sites": [{"code": "BG", "name": "Background Park"}],
        "Buildings": [{"site": "BG", "name": f"B{b}"} for b in range(BUILDINGS)],
        "Gateways": [
            {"site": "BG", "name": f"BG-GW{g}", "gateway_type": "tcp_collector",
             "bus": str(b + 1), "port": str(9001 + b)}
            for g in range(GATEWAYS)
            for b in range(BUSES)
        ],
        "Units": [], "Meters": [], "Tenants": [],
    }  # fmt: skip
    for n in range(units):
        place = {"site": "BG", "building": f"B{n % BUILDINGS}", "unit": f"U{n:04d}"}
        gateway, bus = divmod(n // 28, BUSES)
        rows["Units"].append({**place, "name": place["unit"]})
        rows["Meters"].append(
            {**place, "name": f"BG-M{n:04d}", "address": f"{n + 1:012d}",
             "model": "DDSY-5(60)A", "gateway": f"BG-GW{gateway}", "bus": str(bus + 1)}
        )  # fmt: skip
        rows["Tenants"].append(
            {**place, "name": f"BG tenant {n}", "phone": f"+86 137 {n:08d}",
             "date_start": "2026-01-01"}
        )  # fmt: skip
    return rows


@tagged("post_install", "-at_install")
class TestSiteImport(PrepaidMeterCommon):
    def _queue(self, rows, user=None):
        env = self.env(user=user) if user else self.env
        wizard = env["prepaid.site.workbook"].create(
            {"file": base64.b64encode(write_workbook(rows)), "filename": "big site.xlsx"}
        )
        action = wizard.action_import()
        self.assertEqual(action["res_model"], "prepaid.site.import")
        return self.env["prepaid.site.import"].browse(action["res_id"])

    def _counts(self):
        site = self.env["prepaid.site"].search([("code", "=", "BG")])
        units = self.env["prepaid.unit"].search([("site_id", "=", site.id)]) if site else []
        return {
            "sites": len(site),
            "buildings": self.env["prepaid.building"].search_count([("site_id.code", "=", "BG")]),
            "buses": self.env["prepaid.gateway.bus"].search_count(
                [("gateway_id.name", "=like", "BG-GW%")]
            ),
            "units": len(units),
            "meters": self.env["prepaid.meter"].search_count([("name", "=like", "BG-M%")]),
            "tenancies": self.env["prepaid.tenancy"].search_count(
                [("unit_id.site_id.code", "=", "BG")]
            ),
            "tenants": self.env["res.partner"].search_count([("name", "=like", "BG tenant %")]),
        }

    def _full(self, units=UNITS):
        return {
            "sites": 1,
            "buildings": BUILDINGS,
            "buses": GATEWAYS * BUSES,
            "units": units,
            "meters": units,
            "tenancies": units,
            "tenants": units,
        }

    def test_large_workbook_imported_in_the_background(self):
        cron = self.env.ref("prepaid_meter.ir_cron_prepaid_site_import")
        triggers = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        job = self._queue(site_rows())
        # queued, nothing created by the request
        self.assertEqual((job.state, job.rows_total, job.rows_done), ("queued", 2000, 0))
        self.assertEqual(job.progress, 0.0)
        self.assertEqual(job.attachment_id.res_id, job.id)
        self.assertEqual(job.user_id, self.env.user)
        self.assertEqual(self._counts()["units"], 0)
        self.assertGreater(
            self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)]), triggers
        )
        # a batch never mixes sheets: the site, the buildings, then units 300 at a time
        self.assertFalse(job._import_batches(batch_size=BATCH, max_batches=4))
        self.assertEqual((job.state, job.rows_done), ("running", 1 + 4 + 2 * BATCH))
        self.assertEqual(job.progress, 30.25)
        self.assertEqual(self._counts()["units"], 2 * BATCH)
        self.assertTrue(job._import_batches(batch_size=BATCH))
        self.assertEqual((job.state, job.rows_done, job.progress), ("done", 2000, 100.0))
        self.assertFalse(job.error_ids)
        self.assertEqual(self._counts(), self._full())
        unit = self.env["prepaid.unit"].search(
            [("site_id.code", "=", "BG"), ("name", "=", "U0100")]
        )
        self.assertEqual(unit.meter_ids.bus_id.display_name, "BG-GW0 / COM4")
        self.assertEqual(unit.tenancy_ids.partner_id.phone, "+86 137 00000100")
        (message,) = job.message_ids.filtered(lambda m: "rows read" in m.body)
        self.assertIn("2000 rows read, 0 refused", message.body)
        self.assertIn(self.env.user.partner_id, message.partner_ids)

    def test_scheduled_action_imports_the_queue(self):
        """The scheduled action as the scheduler runs it: each batch committed with its
        progress, the job done."""
        self.env["ir.config_parameter"].set_param("prepaid_meter.site_import_batch_rows", "100")
        job = self._queue(site_rows(units=200))  # 1 + 4 + 24 + 600 rows
        cron = self.env.ref("prepaid_meter.ir_cron_prepaid_site_import")
        # the scheduler's cursors wrap the test's: its commits stay in the test
        with self.enter_registry_test_mode():
            cron.method_direct_trigger()
        self.assertEqual((job.state, job.rows_done, job.rows_total), ("done", 629, 629))
        self.assertEqual(self._counts(), self._full(units=200))
        progress = self.env["ir.cron.progress"].search([("cron_id", "=", cron.id)], limit=1)
        self.assertEqual((progress.done, progress.remaining), (629, 0))
        self.assertTrue(job.date_started and job.date_finished)

    def test_stopped_run_resumes_without_duplicates(self):
        job = self._queue(site_rows())
        # committed: the site, the buildings and 300 units
        job._import_batches(batch_size=BATCH, max_batches=3)
        committed = self._counts()
        self.assertEqual((job.rows_done, committed["units"]), (305, BATCH))
        # the next run creates the other units, the buses and 300 meters with their
        # addresses taken on the buses, and is stopped before its transaction commits
        with self.assertRaises(Stopped), self.env.cr.savepoint():
            job._import_batches(batch_size=BATCH, max_batches=4)
            self.assertEqual(job.rows_done, 305 + 357 + 24 + BATCH)
            self.assertEqual(self._counts()["meters"], BATCH)
            raise Stopped
        self.env.invalidate_all()
        self.assertEqual(job.rows_done, 305)
        self.assertEqual(self._counts(), committed)
        # run again, in batches of another size: every record exactly once
        self.assertTrue(job._import_batches(batch_size=BATCH + 77))
        self.assertEqual(self._counts(), self._full())
        self.assertEqual(job.rows_done, 2000)
        self.assertFalse(job.error_ids)
        # a further run finds nothing left to do
        self.assertTrue(job._import_batches(batch_size=BATCH))
        self.assertEqual(self._counts(), self._full())

    def test_checked_at_once_nothing_queued(self):
        """References, numbers, dates and choices are checked before anything is queued:
        one wrong cell and nothing is imported, every error listed."""
        rows = site_rows()
        rows["Meters"][500]["model"] = "NO-SUCH-MODEL"
        rows["Meters"][501]["gateway"] = "NO-SUCH-GW"
        rows["Tenants"][600]["date_start"] = "someday"
        rows["Units"][7]["building"] = "B9"
        rows["Gateways"][3]["protocol"] = "smoke signals"
        wizard = self.env["prepaid.site.workbook"].create(
            {"file": base64.b64encode(write_workbook(rows)), "filename": "big site.xlsx"}
        )
        action = wizard.action_import()
        self.assertEqual(action["res_model"], "prepaid.site.workbook")
        self.assertEqual(wizard.state, "failed")
        self.assertEqual(
            {(e.sheet, e.row, e.column) for e in wizard.error_ids},
            {
                ("Meters", 502, "Model"),
                ("Meters", 503, "Gateway"),
                ("Meters", 9, "Unit"),
                ("Tenants", 602, "Start"),
                ("Tenants", 9, "Unit"),
                ("Units", 9, "Building"),
                ("Gateways", 5, "Protocol"),
            },
        )
        messages = set(wizard.error_ids.mapped("message"))
        self.assertIn("no building B9 on site BG", messages)
        self.assertIn("unknown meter model NO-SUCH-MODEL", messages)
        self.assertIn("no unit U0007 in building B3", messages)
        self.assertFalse(self.env["prepaid.site.import"].search([]))
        self.assertEqual(self._counts()["sites"], 0)

    def test_refused_rows_listed_and_the_others_imported(self):
        """Rows only the models' rules refuse (an address taken on its bus, an address
        that is not 12 digits) are listed; the other rows are imported."""
        rows = site_rows()
        rows["Meters"][10]["address"] = rows["Meters"][9]["address"]
        rows["Meters"][500]["address"] = "12345"
        job = self._queue(rows)
        self.assertTrue(job._import_batches(batch_size=BATCH))
        self.assertEqual(job.state, "done")
        self.assertEqual(
            {(e.sheet, e.row, e.column) for e in job.error_ids},
            {("Meters", 12, "Address"), ("Meters", 502, "Address")},
        )
        counts = self._counts()
        self.assertEqual(counts["meters"], UNITS - 2)
        self.assertEqual(counts["tenancies"], UNITS)
        self.assertEqual(job.activity_ids.user_id, self.env.user)
        self.assertTrue(job.message_ids.filtered(lambda m: "2 refused" in m.body))

    def test_small_workbook_still_imported_at_once(self):
        self.env["ir.config_parameter"].set_param(
            "prepaid_meter.site_import_background_rows", "100"
        )
        rows = site_rows(units=25)  # 1 + 4 + 24 + 75 = 104 rows: in the background
        self.assertEqual(self._queue(rows).rows_total, 104)
        self.env["ir.config_parameter"].set_param(
            "prepaid_meter.site_import_background_rows", "104"
        )
        wizard = self.env["prepaid.site.workbook"].create(
            {"file": base64.b64encode(write_workbook(rows)), "filename": "site.xlsx"}
        )
        action = wizard.action_import()
        self.assertEqual(action["res_model"], "prepaid.site.workbook")
        self.assertEqual(wizard.state, "done", wizard.error_ids.mapped("message"))
        self.assertEqual(self._counts(), self._full(units=25))

    def test_imports_kept_per_company(self):
        """A prepaid manager (who may create contacts, for the tenants) queues a workbook
        and the job creates as them; a manager of another company sees neither the import
        nor its refused rows."""
        manager = self._user(
            "import_manager", "prepaid_meter.group_prepaid_manager,base.group_partner_manager"
        )
        rows = site_rows(units=200)
        rows["Meters"][0]["address"] = "12345"
        job = self._queue(rows, user=manager)
        self.assertEqual((job.user_id, job.company_id), (manager, self.env.company))
        self.assertTrue(job._import_batches(batch_size=BATCH))
        self.assertEqual(len(job.error_ids), 1)
        self.assertEqual(job.error_ids.create_uid, manager)
        self.assertEqual(self._counts()["meters"], 199)
        self.assertEqual(
            self.env["prepaid.meter"].search([("name", "=", "BG-M0001")]).create_uid, manager
        )
        other = self.env["res.company"].create({"name": "Other Prepaid Co"})
        stranger = self._user(
            "import_other_manager", "prepaid_meter.group_prepaid_manager", company=other
        )
        self.assertTrue(self.env["prepaid.site.import"].with_user(manager).search([]))
        Job = self.env["prepaid.site.import"].with_user(stranger)
        self.assertFalse(Job.search([("id", "=", job.id)]))
        self.assertFalse(self.env["prepaid.site.import.error"].with_user(stranger).search_count([]))
