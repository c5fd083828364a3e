import base64
import io
from datetime import date

import openpyxl

from odoo.tests import tagged
from odoo.tools import file_open

from prepaid_core.onboarding import example_workbook

from .common import PrepaidMeterCommon

#: the templates of one site, in the order Odoo's import must take them
TEMPLATES = (
    "prepaid.site",
    "prepaid.building",
    "prepaid.unit",
    "prepaid.gateway",
    "prepaid.meter",
    "prepaid.tenancy",
)


@tagged("post_install", "-at_install")
class TestOnboarding(PrepaidMeterCommon):
    """M9: a site imported through Odoo's import from the templates, and from one workbook."""

    def _odoo_import(self, model, csv_text):
        """Odoo's own import of a CSV file (what the import screen runs)."""
        header = csv_text.splitlines()[0].split(",")
        wizard = self.env["base_import.import"].create(
            {"res_model": model, "file": csv_text.encode(), "file_type": "text/csv"}
        )
        return wizard.execute_import(
            header,
            header,
            {
                "has_headers": True,
                "quoting": '"',
                "separator": ",",
                "date_format": "%Y-%m-%d",
                "name_create_enabled_fields": {"partner_id": True},
            },
        )

    def _template(self, model):
        (template,) = self.env[model].get_import_templates()
        with file_open(template["template"].lstrip("/"), "r") as handle:
            return handle.read()

    def test_templates_round_trip(self):
        for model in TEMPLATES:
            result = self._odoo_import(model, self._template(model))
            self.assertFalse(result["messages"], model)
            self.assertTrue(result["ids"], model)
        meters = self.env["prepaid.meter"].search([("site_id.code", "=", "RP")])
        self.assertEqual(len(meters), 3)
        meter = meters.filtered(lambda m: m.address == "000000000101")
        self.assertEqual(meter.model_id, self.ddsy)
        self.assertEqual(meter.bus_id.name, "Collector A / COM1")
        self.assertEqual(meter.gateway_id.bus_ids.mapped("protocol"), ["dlt645_2007", "modbus_rtu"])
        tenancy = self.env["prepaid.tenancy"].search([("unit_id", "=", meter.unit_id.id)])
        self.assertEqual(tenancy.partner_id.name, "Li Wei")
        self.assertEqual(tenancy.date_start, date(2026, 1, 1))

    def _meter_csv(self, *rows):
        lines = ["name,address,model_id,unit_id/.id,gateway_id/.id,bus_id/.id"]
        for name, address, model in rows:
            lines.append(
                f"{name},{address},{model},{self.unit.id},{self.gateway.id},{self.bus2.id}"
            )
        return "\n".join(lines) + "\n"

    def test_bad_row_named_nothing_imported(self):
        """An unknown model on the third row: that row and the field are named and the
        two good rows are not imported either."""
        result = self._odoo_import(
            "prepaid.meter",
            self._meter_csv(
                ("Good 1", "000000000801", "DDSY-5(60)A"),
                ("Good 2", "000000000802", self.ddsy.name),
                ("Bad 3", "000000000803", "NO-SUCH-MODEL"),
            ),
        )
        self.assertFalse(result["ids"])
        # the unknown name, then the missing required value: both on that row and field
        for message in result["messages"]:
            self.assertEqual(message["field"], "model_id")
            self.assertEqual(message["rows"], {"from": 2, "to": 2})  # third data row
        self.assertIn("NO-SUCH-MODEL", result["messages"][0]["message"])
        self.assertFalse(self.env["prepaid.meter"].search([("name", "in", ("Good 1", "Good 2"))]))

    def test_duplicate_address_and_full_bus_refused(self):
        rows = [(f"Bus {n}", f"0000000009{n:02d}", "DDSY-5(60)A") for n in range(1, 34)]
        result = self._odoo_import("prepaid.meter", self._meter_csv(*rows))
        self.assertFalse(result["ids"])
        # the 33rd row is named (Odoo first reports the refused batch at its first row)
        self.assertEqual(result["messages"][-1]["rows"], {"from": 32, "to": 32})
        self.assertIn("at most 32", result["messages"][-1]["message"])
        result = self._odoo_import(
            "prepaid.meter",
            self._meter_csv(
                ("Dup 1", "000000000901", "DDSY-5(60)A"), ("Dup 2", "000000000901", "DDSY-5(60)A")
            ),
        )
        self.assertFalse(result["ids"])
        self.assertEqual(result["messages"][-1]["rows"], {"from": 1, "to": 1})
        self.assertIn("unique on its gateway bus", result["messages"][-1]["message"])
        self.assertFalse(self.env["prepaid.meter"].search([("name", "=like", "Bus %")]))
        self.assertFalse(self.env["prepaid.meter"].search([("name", "=like", "Dup %")]))

    def test_unit_without_building(self):
        result = self._odoo_import("prepaid.unit", "name,unit_type\nU-1,shop\n")
        self.assertFalse(result["ids"])
        self.assertEqual(result["messages"][0]["field"], "building_id")

    # === SITE WORKBOOK === #
    def _workbook(self, data):
        return self.env["prepaid.site.workbook"].create(
            {"file": base64.b64encode(data), "filename": "site.xlsx"}
        )

    def test_example_workbook_imported(self):
        wizard = self._workbook(example_workbook())
        wizard.action_import()
        self.assertEqual(wizard.state, "done", wizard.error_ids.mapped("message"))
        self.assertIn("2 rows of sheet Gateways", wizard.summary)
        site = self.env["prepaid.site"].search([("code", "=", "RP")])
        self.assertEqual(site.building_count, 2)
        self.assertEqual(site.unit_count, 3)
        self.assertEqual(site.meter_count, 3)
        gateway = self.env["prepaid.gateway"].search([("name", "=", "Collector A")])
        self.assertEqual(gateway.bus_ids.mapped("number"), [1, 2])
        unit = self.env["prepaid.unit"].search([("site_id", "=", site.id), ("name", "=", "A-101")])
        self.assertEqual(unit.floor_id.name, "1F")
        self.assertEqual(unit.tenant_id.name, "Li Wei")
        self.assertEqual(unit.meter_ids.state, "in_service")  # the tenancy was opened
        self.assertEqual(unit.meter_ids.bus_id.number, 1)

    def _broken_example(self):
        """The example with five errors in three sheets."""
        book = openpyxl.load_workbook(io.BytesIO(example_workbook()))
        book["Units"].append(["RP", "", "A-999"])  # unit without building
        book["Meters"]["G2"] = "NO-SUCH-MODEL"  # row 2, Model
        book["Meters"]["F4"] = "000000000102"  # row 4, Address: the address of row 3
        for n in range(1, 33):  # rows 5-36: bus 1 then carries row 3's meter and 32 more
            book["Meters"].append(
                [
                    "RP",
                    "Block A",
                    "",
                    f"Extra {n}",
                    "",
                    f"0000000010{n:02d}",
                    "DDSY-5(60)A",
                    "Collector A",
                    "1",
                ]
            )
        book["Tenants"]["G3"] = "someday"  # row 3, Start
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    def test_broken_workbook_refused_whole(self):
        sites = self.env["prepaid.site"].search_count([])
        partners = self.env["res.partner"].search_count([])
        wizard = self._workbook(self._broken_example())
        wizard.action_import()
        self.assertEqual(wizard.state, "failed")
        found = {(e.sheet, e.row, e.column) for e in wizard.error_ids}
        self.assertLessEqual(
            {
                ("Units", 5, "Building"),
                ("Meters", 2, "Model"),
                ("Meters", 4, "Address"),
                ("Meters", 36, "Bus"),
                ("Tenants", 3, "Start"),
            },
            found,
        )
        self.assertEqual(len(found), 5, wizard.error_ids.mapped("message"))
        self.assertEqual(self.env["prepaid.site"].search_count([]), sites)
        self.assertEqual(self.env["res.partner"].search_count([]), partners)
        self.assertFalse(self.env["prepaid.gateway"].search([("name", "=", "Collector A")]))

    def test_not_a_workbook(self):
        wizard = self._workbook(b"name,address\n")
        wizard.action_import()
        self.assertEqual(wizard.state, "failed")
        self.assertEqual(wizard.error_ids.message, "not an Excel workbook (.xlsx)")
