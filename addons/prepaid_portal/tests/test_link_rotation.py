"""T1/T7: the QR code and share links of a meter are renewed when it changes hands (tenancy
ended or opened, meter moved or replaced) or when a manager resets them; an old link then
answers exactly like a link that never existed."""

from datetime import date, timedelta

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import PrepaidPortalMixin

NEVER_VALID = "00000000-0000-4000-8000-000000000000"


@tagged("post_install", "-at_install")
class TestLinkRotation(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.company.prepaid_qr_anonymous = True
        cls.tenant_n = cls.env["res.partner"].create({"name": "Next Tenant N"})

    def _get(self, url):
        return self.url_open(url, allow_redirects=False)

    def _answers(self, meter, token):
        """What each link with ``token`` answers, in a fresh anonymous session."""
        self.authenticate(None, None)
        qr = self._get(f"/my/meter/qr/{token}")
        self.authenticate(None, None)
        share = self._get(f"/my/meters/{meter.id}?access_token={token}")
        return [
            (qr.status_code, qr.headers.get("Location")),
            (share.status_code, share.headers.get("Location")),
        ]

    def _change_tenant(self, meter):
        tenancy = meter.current_tenancy_id
        tenancy.date_end = date.today() - timedelta(days=1)
        tenancy.account_id.action_close() if tenancy.account_id else tenancy.action_close()
        new = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant_n.id, "unit_id": meter.unit_id.id}
        )
        new.action_open()
        new.account_id.sudo()._recharge("77", memo="desk")
        return new

    def test_former_tenants_link_shows_nothing_of_the_next(self):
        meter = self.meter_b
        old = meter.access_token
        self.assertEqual(self._answers(meter, old)[0][0], 303, "the link works before")
        self._change_tenant(meter)
        self.assertEqual(meter.tenant_id, self.tenant_n)
        new = meter.access_token
        self.assertNotEqual(new, old)
        self.assertEqual(self._answers(meter, old), self._answers(meter, NEVER_VALID))
        # the new link opens the meter and shows the new tenant's credit
        self.authenticate(None, None)
        page = self.url_open(meter.qr_url.replace(meter.get_base_url(), ""))
        self.assertEqual(page.status_code, 200)
        self.assertIn("77.00", page.text)
        self.assertIn(new, meter.qr_url)

    def test_session_of_former_tenant_loses_access(self):
        """A browser that proved the old link keeps nothing: the session remembered that
        token, not the meter."""
        meter = self.meter_b
        self.authenticate(None, None)
        self.assertEqual(self._get(f"/my/meter/qr/{meter.access_token}").status_code, 303)
        self.assertEqual(self._get(f"/my/meters/{meter.id}").status_code, 200)
        self._change_tenant(meter)
        for url in (
            f"/my/meters/{meter.id}",
            f"/my/meters/{meter.id}/history",
            f"/my/meters/{meter.id}/recharge?amount=20",
        ):
            response = self._get(url)
            self.assertEqual(response.status_code, 303, url)
            self.assertTrue(response.headers["Location"].endswith("/my"), url)
            self.assertNotIn("77.00", response.text)

    def test_share_wizard_link_rotates(self):
        meter = self.meter_b
        old_link = self._share_link(meter)
        self._change_tenant(meter)
        new_link = self._share_link(meter)
        self.assertNotEqual(old_link, new_link)
        old_token = old_link.split("access_token=")[1].split("&")[0]
        self.authenticate(None, None)
        old = self.url_open(old_link)
        self.authenticate(None, None)
        never = self.url_open(old_link.replace(old_token, NEVER_VALID))
        self.assertEqual(
            (old.status_code, old.url.replace(old_token, NEVER_VALID)),
            (never.status_code, never.url),
        )
        self.assertIn("/web/login", old.url)
        self.assertNotIn("77.00", old.text)
        self.authenticate(None, None)
        page = self.url_open(new_link)
        self.assertEqual(page.status_code, 200)
        self.assertIn("77.00", page.text)

    def _share_link(self, meter):
        wizard = (
            self.env["portal.share"]
            .with_context(active_model="prepaid.meter", active_id=meter.id)
            .create({})
        )
        return wizard.share_link.replace(self.base_url(), "")

    def test_tenancy_close_alone_rotates(self):
        meter = self.meter_b
        old = meter.access_token
        meter.current_tenancy_id.action_close()
        self.assertNotEqual(meter.access_token, old)
        self.assertIn("renewed", meter.message_ids[:1].body)

    def test_meter_moved_or_replaced(self):
        meter = self.meter_a2
        old = meter.access_token
        meter.unit_id = self.unit_b
        self.assertNotEqual(meter.access_token, old)
        moved = meter.access_token
        meter.name = "Renamed"  # other changes keep the link
        self.assertEqual(meter.access_token, moved)
        replaced = self.meter_a1
        old_token = replaced.access_token
        spare = self.env["prepaid.meter"].create({"name": "Spare", "model_id": self.ddsy.id})
        spare_token = spare.access_token
        wizard = (
            self.env["prepaid.meter.replace"]
            .with_context(active_id=replaced.id, active_model="prepaid.meter")
            .create({"new_meter_id": spare.id, "final_reading": 0.0})
        )
        wizard.action_replace()
        self.assertEqual(replaced.state, "removed")
        self.assertEqual(replaced.replaced_by_id, spare)
        self.assertNotEqual(replaced.access_token, old_token)
        self.assertNotIn(spare.access_token, (old_token, spare_token))
        self.assertEqual(self._answers(replaced, old_token), self._answers(replaced, NEVER_VALID))

    def test_manager_resets_the_link(self):
        meter = self.meter_a1
        old = meter.access_token
        manager = new_test_user(
            self.env, login="meter_manager", groups="prepaid_meter.group_prepaid_manager"
        )
        meter.with_user(manager).action_reset_access_token()
        self.assertNotEqual(meter.access_token, old)
        self.assertIn("meter_manager", meter.message_ids[:1].body)
        self.assertEqual(self._answers(meter, old), self._answers(meter, NEVER_VALID))
        operator = new_test_user(
            self.env, login="meter_operator", groups="prepaid_meter.group_prepaid_user"
        )
        with self.assertRaises(AccessError):
            meter.with_user(operator).action_reset_access_token()
        view = self.env.ref("prepaid_meter.prepaid_meter_view_form")
        self.assertIn('name="action_reset_access_token"', view.arch)
