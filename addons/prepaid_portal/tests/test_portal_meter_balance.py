"""B13: the balance a meter that keeps its own reported, shown to its tenant on the meter
page beside the account's credit, and to the desk on the meter's form and list."""

from datetime import datetime, timedelta

from lxml import etree

from odoo.tests import Form, HttpCase, tagged

from .common import PrepaidPortalMixin

T0 = datetime(2026, 3, 2)


@tagged("post_install", "-at_install")
class TestPortalMeterBalance(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.user_a.tz = "UTC"
        cls.account_a1.sudo()._recharge("30", memo="desk")
        (cls.meter_a1 | cls.meter_a2).write({"billing_mode": "meter"})
        cls._ingest(cls.meter_a1, (0, 100.0, {"meter_balance": 23.45}))
        cls._ingest(cls.meter_a1, (60, 101.0, {}))
        cls._ingest(cls.meter_a2, (0, 100.0, {}))

    @classmethod
    def _ingest(cls, meter, *points):
        """(minutes after T0, forward total, extra columns) readings of ``meter``."""
        cls.env["prepaid.meter.reading"]._ingest(
            [
                {
                    "meter_id": meter.id,
                    "read_at": T0 + timedelta(minutes=minutes),
                    "forward_total": total,
                    **extra,
                }
                for minutes, total, extra in points
            ]
        )

    def _page(self, meter):
        response = self.url_open(f"/my/meters/{meter.id}", allow_redirects=False)
        self.assertEqual(response.status_code, 200)
        return etree.fromstring(response.text, etree.HTMLParser())

    def test_meter_page_shows_the_newest_reported_balance(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self._page(self.meter_a1)
        (shown,) = page.xpath("//div[contains(@class, 'o_prepaid_meter_balance')]")
        text = " ".join("".join(shown.itertext()).split())
        # the newest reading carried none: the one before it tells the meter's balance
        self.assertIn("Balance on the meter:", text)
        self.assertIn("23.45", text)
        self.assertIn("(reported at 03/02/2026 12:00:00 AM)", text)
        # beside the server's figure, not instead of it
        (credit,) = page.xpath("//div[contains(@class, 'o_prepaid_balance')]")
        self.assertIn("30.00", "".join(credit.itertext()))

    def test_meter_page_hides_it_when_the_meter_never_reported_one(self):
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self._page(self.meter_a2)
        self.assertTrue(page.xpath("//div[contains(@class, 'o_prepaid_last_reading')]"))
        self.assertFalse(page.xpath("//div[contains(@class, 'o_prepaid_meter_balance')]"))

    def test_a_server_balance_meter_shows_no_meter_balance(self):
        self.meter_a2.billing_mode = "server"
        self._ingest(self.meter_a2, (60, 101.0, {"meter_balance": 5.0}))
        self.authenticate("tenant_a", "tenant_a_pw")
        page = self._page(self.meter_a2)
        self.assertFalse(page.xpath("//div[contains(@class, 'o_prepaid_meter_balance')]"))

    def test_meter_form_and_list_show_the_meter_balance(self):
        self.env.invalidate_all()
        form = Form(self.meter_a1)
        self.assertEqual(form.last_meter_balance, 23.45)
        self.assertEqual(form.account_balance, 30.0)
        self.assertEqual(
            form.meter_balance_reported_at, "2026-03-02 00:00:00"
        )  # not the newer reading's time
        self.assertFalse(Form(self.meter_a2).meter_balance_reported_at)
        views = self.env["prepaid.meter"].get_views([(False, "form"), (False, "list")])["views"]
        billing = etree.fromstring(views["form"]["arch"]).xpath("//page[@name='billing']")[0]
        names = {field.get("name") for field in billing.iter("field")}
        self.assertLessEqual(
            {
                "account_balance",
                "last_meter_balance",
                "meter_balance_reported_at",
                "meter_balance_expected",
                "meter_balance_difference",
                "meter_balance_state",
            },
            names,
        )
        (column,) = etree.fromstring(views["list"]["arch"]).xpath(
            "//field[@name='last_meter_balance']"
        )
        self.assertEqual((column.get("string"), column.get("optional")), ("Meter Balance", "hide"))
