"""T2: sign-up by phone number with an SMS code, then login by phone number and password."""

import re
from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.http import Request
from odoo.tests import HttpCase, tagged

from ..const import CODE_MAX_ATTEMPTS
from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestPhoneSignup(PrepaidPortalMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.unit_c = cls.env["prepaid.unit"].create({"name": "P-9", "building_id": cls.building.id})
        cls.meter_c = cls.env["prepaid.meter"].create(
            {"name": "Power P-9", "model_id": cls.ddsy.id, "unit_id": cls.unit_c.id}
        )
        cls.tenant_c = cls.env["res.partner"].create({"name": "Tenant C", "phone": "+1 555 0209"})
        tenancy = cls.env["prepaid.tenancy"].create(
            {"partner_id": cls.tenant_c.id, "unit_id": cls.unit_c.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        cls.Verification = cls.env["prepaid.portal.verification"]

    def setUp(self):
        super().setUp()
        self.sms = self._mock_sms_gateway()

    def _code(self):
        return re.search(r"\b(\d{6})\b", self.sms[-1]["body"]).group(1)

    def _post(self, url, **data):
        return self.url_open(
            url, data={**data, "csrf_token": Request.csrf_token(self)}, allow_redirects=False
        )

    def test_normalize_phone(self):
        normalize = self.Verification._normalize_phone
        self.assertEqual(normalize("+1 (555) 0209"), "+15550209")
        self.assertEqual(normalize("001-555-0209"), "+15550209")
        for bad in ("", "hello", "+12", "+0123456789"):
            with self.assertRaises(UserError):
                normalize(bad)

    def test_code_is_hashed_and_limited(self):
        verification = self.Verification._send_code("+15550209")
        code = self._code()
        self.assertNotIn(code, verification.code_hash)
        self.assertEqual(len(verification.code_hash), 64)
        for _i in range(CODE_MAX_ATTEMPTS):
            self.assertFalse(verification._check_code("000000" if code != "000000" else "1"))
        self.assertEqual(verification.state, "blocked")
        self.assertFalse(verification._check_code(code), "blocked after too many attempts")

    def test_code_expires(self):
        verification = self.Verification._send_code("+15550209")
        verification.expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertFalse(verification._check_code(self._code()))

    def test_codes_per_hour(self):
        for _i in range(5):
            self.Verification._send_code("+15550299")
        with self.assertRaises(UserError):
            self.Verification._send_code("+15550299")
        # a new code voids the previous ones
        self.assertEqual(
            self.Verification.search([("phone", "=", "+15550299"), ("state", "=", "sent")]).mapped(
                "phone"
            ),
            ["+15550299"],
        )

    def test_signup_then_phone_login(self):
        self.authenticate(None, None)
        response = self._post("/web/phone/signup", name="Carla", phone="+1 555 0209")
        self.assertIn("/web/phone/verify", response.headers["Location"])
        self.assertEqual(self.sms[-1]["number"], "+15550209")
        wrong = self._post(
            "/web/phone/verify",
            code="999999" if self._code() != "999999" else "111111",
            password="s3cret-pass",
            confirm="s3cret-pass",
        )
        self.assertIn("This code is wrong", wrong.text)
        done = self._post(
            "/web/phone/verify", code=self._code(), password="s3cret-pass", confirm="s3cret-pass"
        )
        self.assertIn("/my/meters", done.headers["Location"])
        user = self.env["res.users"].search([("login", "=", "+15550209")])
        self.assertEqual(user.partner_id, self.tenant_c, "linked to the tenant of that phone")
        self.assertTrue(user._is_portal())
        page = self.url_open("/my/meters")
        self.assertIn("Power P-9", page.text)
        # then, in a new session, log in with the number as typed
        self.authenticate(None, None)
        refused = self._post("/web/phone/login", phone="+1 555 0209", password="wrong-pass")
        self.assertIn("Wrong phone number or password", refused.text)
        logged = self._post("/web/phone/login", phone="(+1) 555-0209", password="s3cret-pass")
        self.assertIn("/my/meters", logged.headers["Location"])
        self.assertIn("Power P-9", self.url_open("/my/meters").text)

    def test_signup_refused_for_existing_number(self):
        self.authenticate(None, None)
        self.user_a.login = "+15550201"
        response = self._post("/web/phone/signup", name="A again", phone="+15550201")
        self.assertIn("has an account already", response.text)
        self.assertFalse(self.sms)
