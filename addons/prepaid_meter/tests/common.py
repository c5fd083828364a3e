from datetime import datetime, timedelta

from odoo.tests import TransactionCase, new_test_user


class PrepaidMeterCommon(TransactionCase):
    """A small site of the main company, built once per test class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.site = cls.env["prepaid.site"].create({"name": "Test Park", "code": "TP"})
        cls.building = cls.env["prepaid.building"].create(
            {"name": "Block T", "site_id": cls.site.id}
        )
        cls.floor = cls.env["prepaid.floor"].create(
            {"name": "Ground", "building_id": cls.building.id}
        )
        cls.unit, cls.unit2 = cls.env["prepaid.unit"].create(
            [
                {"name": "T-101", "building_id": cls.building.id, "floor_id": cls.floor.id},
                {"name": "T-102", "building_id": cls.building.id, "floor_id": cls.floor.id},
            ]
        )
        cls.ddsy = cls.env.ref("prepaid_meter.meter_model_ddsy_5_60")
        cls.dtsy_ct = cls.env.ref("prepaid_meter.meter_model_dtsy_1_5_6")
        cls.water = cls.env.ref("prepaid_meter.meter_model_water_dn20")
        cls.gateway = cls.env["prepaid.gateway"].create(
            {"name": "Collector T", "site_id": cls.site.id, "gateway_type": "tcp_collector"}
        )
        cls.bus1, cls.bus2 = cls.env["prepaid.gateway.bus"].create(
            [
                {"gateway_id": cls.gateway.id, "number": 1, "port": 9001},
                {"gateway_id": cls.gateway.id, "number": 2, "port": 9002},
            ]
        )
        cls.meter = cls._create_meter("Power T-101", "000000000101", cls.unit)
        cls.tenant = cls.env["res.partner"].create({"name": "Tenant One", "phone": "+1 555 0101"})
        cls.t0 = datetime(2026, 3, 2, 0, 0)

    @classmethod
    def _create_meter(cls, name, address, unit=None, model=None, bus=None, state="in_service"):
        return cls.env["prepaid.meter"].create(
            {
                "name": name,
                "address": address,
                "model_id": (model or cls.ddsy).id,
                "unit_id": unit.id if unit else False,
                "gateway_id": cls.gateway.id,
                "bus_id": (bus or cls.bus1).id,
                "state": state,
            }
        )

    @classmethod
    def _user(cls, login, groups, company=None):
        company = company or cls.env.company
        return new_test_user(
            cls.env,
            login=login,
            groups=groups,
            company_id=company.id,
            company_ids=[company.id],
        )

    def _ingest(self, meter, *points, **extra):
        """Ingest (minutes after t0, forward total) points for a meter."""
        rows = [
            {
                "meter_id": meter.id,
                "read_at": self.t0 + timedelta(minutes=minutes),
                "forward_total": total,
                **extra,
            }
            for minutes, total in points
        ]
        return self.env["prepaid.meter.reading"]._ingest(rows)

    def _readings(self, meter):
        return self.env["prepaid.meter.reading"].search(
            [("meter_id", "=", meter.id)], order="read_at"
        )


def render_pdf(env, report_ref, res_ids):
    """The PDF of report ``report_ref`` (xmlid, report name or record) for ``res_ids``,
    rendered by wkhtmltopdf as users get it (tests get HTML unless forced), and its format.
    wkhtmltopdf is pointed at no server: a request back to the test's own server would wait
    for the cursor the test holds while it waits for wkhtmltopdf."""
    env["ir.config_parameter"].sudo().set_param("report.url", "http://127.0.0.1:1")
    reports = env["ir.actions.report"].with_context(force_report_rendering=True)
    return reports._render_qweb_pdf(report_ref, res_ids)
