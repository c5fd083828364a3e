from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import PrepaidMeterCommon

BACKEND_MODELS = [
    "prepaid.site",
    "prepaid.building",
    "prepaid.floor",
    "prepaid.unit",
    "prepaid.meter.model",
    "prepaid.gateway",
    "prepaid.gateway.bus",
    "prepaid.meter",
    "prepaid.tenancy",
    "prepaid.meter.reading",
    "prepaid.meter.reading.daily",
    "prepaid.meter.reading.rejection",
    "prepaid.meter.event",
]


@tagged("post_install", "-at_install")
class TestSecurity(PrepaidMeterCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.operator = cls._user("op", "prepaid_meter.group_prepaid_user")
        cls.manager = cls._user("mgr", "prepaid_meter.group_prepaid_manager")
        cls.accountant = cls._user("acc", "prepaid_meter.group_prepaid_accountant")
        cls.company2 = cls.env["res.company"].create({"name": "Other Landlord"})
        cls.operator2 = cls._user("op2", "prepaid_meter.group_prepaid_user", cls.company2)
        cls.portal = cls._user("tenant", "base.group_portal")
        site2 = cls.env["prepaid.site"].create(
            {"name": "Other Park", "company_id": cls.company2.id}
        )
        building2 = cls.env["prepaid.building"].create({"name": "X", "site_id": site2.id})
        cls.unit_other = cls.env["prepaid.unit"].create(
            {"name": "X-1", "building_id": building2.id}
        )
        cls.meter_other = cls.env["prepaid.meter"].create(
            {
                "name": "Other meter",
                "model_id": cls.ddsy.id,
                "unit_id": cls.unit_other.id,
                "address": "000000000999",
            }
        )
        cls.env["prepaid.meter.reading"]._ingest(
            [{"meter_id": cls.meter_other.id, "read_at": cls.t0, "forward_total": 1}]
        )

    def test_operator_works_in_own_company(self):
        meters = self.env["prepaid.meter"].with_user(self.operator)
        self.assertIn(self.meter, meters.search([]))
        self.assertNotIn(self.meter_other, meters.search([]))
        tenancy = (
            self.env["prepaid.tenancy"]
            .with_user(self.operator)
            .create({"partner_id": self.tenant.id, "unit_id": self.unit.id})
        )
        tenancy.action_open()
        self.assertEqual(tenancy.state, "open")
        meter = meters.create({"name": "New", "model_id": self.ddsy.id, "unit_id": self.unit2.id})
        self.assertEqual(meter.company_id, self.company)

    def test_operator_cannot_configure(self):
        with self.assertRaises(AccessError):
            self.env["prepaid.site"].with_user(self.operator).create({"name": "Nope"})
        with self.assertRaises(AccessError):
            self.env["prepaid.meter.model"].with_user(self.operator).create(
                {"name": "Nope", "code": "NOPE"}
            )
        with self.assertRaises(AccessError):
            self.meter.with_user(self.operator).unlink()

    def test_operator_of_other_company_sees_nothing_here(self):
        for model in ("prepaid.meter", "prepaid.site", "prepaid.unit", "prepaid.meter.reading"):
            records = self.env[model].with_user(self.operator2).search([])
            self.assertFalse(records.filtered(lambda r: r.company_id == self.company), model)
        with self.assertRaises(AccessError):
            self.meter.with_user(self.operator2).read(["name"])
        with self.assertRaises(AccessError):
            self.meter.with_user(self.operator2).write({"name": "hijack"})

    def test_other_company_readings_never_resolved(self):
        """A gateway acting for company 1 cannot post readings onto company 2's meter."""
        result = (
            self.env["prepaid.meter.reading"]
            .with_user(self.operator)
            ._ingest([{"meter_id": self.meter_other.id, "read_at": self.t0, "forward_total": 9}])
        )
        self.assertEqual(result["stored"], 0)
        self.assertIn("Unknown meter", result["rejected"][0]["reason"])

    def test_accountant_reads_only(self):
        meter = self.meter.with_user(self.accountant)
        self.assertEqual(meter.name, "Power T-101")
        with self.assertRaises(AccessError):
            meter.write({"name": "x"})
        with self.assertRaises(AccessError):
            self.env["prepaid.tenancy"].with_user(self.accountant).create(
                {"partner_id": self.tenant.id, "unit_id": self.unit.id}
            )

    def test_portal_user_sees_nothing_of_backend_models(self):
        """A portal user who rents nothing reaches no record of the backend models: refused,
        or (where the portal add-on lets tenants read their own) nothing found."""
        for model in BACKEND_MODELS:
            try:
                found = self.env[model].with_user(self.portal).search([], limit=1)
            except AccessError:
                continue
            self.assertFalse(found, model)
        with self.assertRaises(AccessError):
            self.meter.with_user(self.portal).read(["name", "access_token"])

    def test_only_manager_moves_baseline(self):
        self._ingest(self.meter, (0, 100), (30, 10))
        flagged = self._readings(self.meter)[1]
        with self.assertRaises(UserError):
            flagged.with_user(self.operator).action_accept_baseline()
        flagged.with_user(self.manager).action_accept_baseline()
        self.assertEqual(self.meter.baseline_total, 10)
        event = self.meter.event_ids.filtered(lambda e: e.event_type == "baseline")
        self.assertEqual(event.user_id, self.manager)
        self.assertEqual(event.source, "operator")
