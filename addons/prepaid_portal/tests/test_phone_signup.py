"""T2: sign-up by phone number with an SMS code, then login by phone number and password;
the limits against SMS pumping and code guessing, the lockout, the audit log, and answers
that never tell whether a number has an account."""

import re
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.http import Request
from odoo.tests import HttpCase, new_test_user, tagged

from .common import PrepaidPortalMixin

PASSWORD = "s3cret-pass"


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
        cls.Log = cls.env["prepaid.portal.auth.log"]

    def setUp(self):
        super().setUp()
        self.sms = self._mock_sms_gateway()

    def _code(self):
        return re.search(r"\b(\d{6})\b", self.sms[-1]["body"]).group(1)

    @staticmethod
    def _wrong(code):
        return "000000" if code != "000000" else "111111"

    def _post(self, url, **data):
        return self.url_open(
            url, data={**data, "csrf_token": Request.csrf_token(self)}, allow_redirects=False
        )

    def _set_limit(self, name, value):
        self.env["ir.config_parameter"].sudo().set_param(f"prepaid_portal.signup_{name}", value)

    def _refused(self, phone, ip=None):
        """Ask for a code that must be refused (kept out of assertRaises: its savepoint
        would undo the log entry); return the message."""
        try:
            self.Verification._send_code(phone, ip=ip)
        except UserError as exc:
            return exc.args[0]
        self.fail(f"a code was sent to {phone}")

    def _log(self, event, phone=None):
        domain = [("event", "=", event)]
        if phone:
            domain.append(("phone_hash", "=", self.Log._phone_hash(phone)))
        return self.Log.search(domain)

    def _age_log(self, minutes):
        """Move every log entry ``minutes`` into the past (time passing)."""
        self.Log.flush_model()
        self.env.cr.execute(
            "UPDATE prepaid_portal_auth_log SET create_date = create_date - %s",
            [timedelta(minutes=minutes)],
        )
        self.Log.invalidate_model()

    # === CODES === #
    def test_normalize_phone(self):
        normalize = self.Verification._normalize_phone
        self.assertEqual(normalize("+1 (555) 0209"), "+15550209")
        self.assertEqual(normalize("001-555-0209"), "+15550209")
        for bad in ("", "hello", "+12", "+0123456789"):
            with self.assertRaises(UserError):
                normalize(bad)

    def test_code_is_hashed_and_limited_per_code(self):
        verification = self.Verification._send_code("+15550209")
        code = self._code()
        self.assertNotIn(code, verification.code_hash)
        self.assertEqual(len(verification.code_hash), 64)
        for _i in range(4):
            self.assertEqual(verification._verify_code(self._wrong(code)), "wrong")
        self.assertEqual(verification._verify_code(self._wrong(code)), "blocked")
        self.assertEqual(verification.state, "blocked")
        self.assertEqual(verification._verify_code(code), "blocked", "even the right code")

    def test_code_expires(self):
        verification = self.Verification._send_code("+15550209")
        verification.expires_at = fields.Datetime.now() - timedelta(seconds=1)
        self.assertEqual(verification._verify_code(self._code()), "wrong")
        self.assertEqual(len(self._log("code_expired", "+15550209")), 1)
        # the validity is a setting
        self._set_limit("code_ttl_minutes", "3")
        fresh = self.Verification._send_code("+15550209")
        self.assertLessEqual(
            fresh.expires_at, fields.Datetime.now() + timedelta(minutes=3, seconds=1)
        )
        self.assertIn("3 minutes", self.sms[-1]["body"])
        self.assertEqual(fresh._verify_code(self._code()), "ok")

    # === SENDING LIMITS (SMS PUMPING) === #
    def test_codes_per_number(self):
        for _i in range(5):
            self.Verification._send_code("+15550299", ip="10.0.0.1")
        self.assertIn("Too many codes", self._refused("+15550299", ip="10.0.0.2"))
        self.assertEqual(len(self.sms), 5)
        self.assertEqual(len(self._log("send_refused", "+15550299")), 1)
        # a new code voids the previous ones
        sent = self.Verification.search([("phone", "=", "+15550299"), ("state", "=", "sent")])
        self.assertEqual(len(sent), 1)
        # an hour later, the number may receive codes again
        self._age_log(61)
        self.Verification._send_code("+15550299", ip="10.0.0.2")
        self.assertEqual(len(self.sms), 6)

    def test_codes_per_ip_over_http(self):
        self._set_limit("codes_per_ip_hour", "3")
        self.authenticate(None, None)
        for i in range(3):
            response = self._post("/web/phone/signup", name="Pump", phone=f"+1555031{i}")
            self.assertIn("/web/phone/verify", response.headers["Location"])
        refused = self._post("/web/phone/signup", name="Pump", phone="+15550319")
        self.assertEqual(refused.status_code, 200)
        self.assertIn("Too many codes", refused.text)
        self.assertEqual(len(self.sms), 3)
        entry = self._log("send_refused", "+15550319")
        self.assertEqual(entry.ip_address, "127.0.0.1")
        self.assertIn("IP", entry.note)
        # another address is not held back by this one
        self.Verification._send_code("+15550319", ip="10.9.9.9")
        self.assertEqual(len(self.sms), 4)

    def test_codes_in_total(self):
        self._set_limit("codes_total_hour", "2")
        self.Verification._send_code("+15550401", ip="10.0.0.1")
        self.Verification._send_code("+15550402", ip="10.0.0.2")
        self._refused("+15550403", ip="10.0.0.3")
        self.assertEqual(len(self.sms), 2)
        self.assertIn("total", self._log("send_refused", "+15550403").note)

    def test_bad_setting_falls_back_to_default(self):
        self._set_limit("codes_per_number_hour", "lots")
        self._set_limit("codes_per_ip_hour", "-1")
        limits = self.Verification._limits()
        self.assertEqual(limits["codes_per_number_hour"], 5)
        self.assertEqual(limits["codes_per_ip_hour"], 10)

    def test_limits_are_settings(self):
        settings = self.env["res.config.settings"].create(
            {"prepaid_signup_codes_per_ip_hour": 7, "prepaid_signup_lockout_minutes": 45}
        )
        settings.execute()
        limits = self.Verification._limits()
        self.assertEqual((limits["codes_per_ip_hour"], limits["lockout_minutes"]), (7, 45))

    # === ATTEMPTS AND LOCKOUT === #
    def test_lockout_per_number_is_time_bounded(self):
        """Too many failures for a number lock it out: even the right code is refused,
        until the lockout time has passed."""
        self._set_limit("failures_per_number", "3")
        self._set_limit("attempts_per_code", "10")
        phone = "+15550501"
        verification = self.Verification._send_code(phone, ip="10.1.0.1")
        code = self._code()
        for i in range(3):  # from three addresses: the number is what counts here
            self.assertEqual(
                verification._verify_code(self._wrong(code), ip=f"10.1.0.{i}"), "wrong"
            )
        self.assertEqual(verification._verify_code(code, ip="10.1.1.1"), "locked")
        self.assertEqual(len(self._log("locked", phone)), 1)
        self.assertEqual(verification.state, "sent", "the code itself is not used up")
        self._age_log(29)
        self.assertEqual(verification._verify_code(code, ip="10.1.1.1"), "locked")
        self._age_log(2)  # 31 minutes after the failures: the lock has lifted
        self.assertEqual(verification._verify_code(code, ip="10.1.1.1"), "ok")

    def test_locked_number_gets_no_more_codes(self):
        self._set_limit("failures_per_number", "2")
        phone = "+15550502"
        verification = self.Verification._send_code(phone)
        verification._verify_code(self._wrong(self._code()))
        verification._verify_code(self._wrong(self._code()))
        self._refused(phone, ip="10.7.7.7")
        self.assertEqual(len(self.sms), 1)
        self.assertIn("locked out", self._log("send_refused", phone).note)

    def test_lockout_per_ip_over_http(self):
        """One address guessing codes for several numbers is locked out for all of them."""
        self._set_limit("failures_per_ip", "3")
        self.authenticate(None, None)
        for i in range(3):
            self._post("/web/phone/signup", name="Guess", phone=f"+1555060{i}")
            wrong = self._post(
                "/web/phone/verify",
                code=self._wrong(self._code()),
                password=PASSWORD,
                confirm=PASSWORD,
            )
            self.assertIn("This code is wrong", wrong.text)
        # the address may neither ask for another code nor use the last one it received
        refused = self._post("/web/phone/signup", name="Guess", phone="+15550609")
        self.assertIn("Too many codes", refused.text)
        self.assertEqual(len(self.sms), 3)
        locked = self._post(
            "/web/phone/verify", code=self._code(), password=PASSWORD, confirm=PASSWORD
        )
        self.assertEqual(locked.status_code, 200)
        self.assertIn("try again later", locked.text)
        self.assertFalse(self.env["res.users"].search([("login", "=", "+15550602")]))
        self.assertEqual(self._log("locked", "+15550602").ip_address, "127.0.0.1")
        self.assertIn("IP", self._log("send_refused", "+15550609").note)
        # another address is not locked out
        verification = self.Verification.search([("phone", "=", "+15550602")], limit=1)
        self.assertEqual(verification._verify_code(self._code(), ip="10.3.3.3"), "ok")

    # === THE WHOLE FLOW AND ITS LOG === #
    def test_signup_then_phone_login(self):
        self.authenticate(None, None)
        response = self._post("/web/phone/signup", name="Carla", phone="+1 555 0209")
        self.assertIn("/web/phone/verify", response.headers["Location"])
        self.assertEqual(self.sms[-1]["number"], "+15550209")
        wrong = self._post(
            "/web/phone/verify", code=self._wrong(self._code()), password=PASSWORD, confirm=PASSWORD
        )
        self.assertIn("This code is wrong", wrong.text)
        done = self._post(
            "/web/phone/verify", code=self._code(), password=PASSWORD, confirm=PASSWORD
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
        logged = self._post("/web/phone/login", phone="(+1) 555-0209", password=PASSWORD)
        self.assertIn("/my/meters", logged.headers["Location"])
        self.assertIn("Power P-9", self.url_open("/my/meters").text)

    def test_audit_log(self):
        self.authenticate(None, None)
        self._post("/web/phone/signup", name="Dora", phone="+15550777")
        self._post(
            "/web/phone/verify", code=self._wrong(self._code()), password=PASSWORD, confirm=PASSWORD
        )
        self._post("/web/phone/verify", code=self._code(), password=PASSWORD, confirm=PASSWORD)
        entries = self.Log.search([("phone_hash", "=", self.Log._phone_hash("+15550777"))])
        self.assertEqual(
            entries.sorted("id").mapped("event"), ["code_sent", "code_wrong", "code_ok", "signup"]
        )
        self.assertEqual(set(entries.mapped("ip_address")), {"127.0.0.1"})
        self.assertEqual(set(entries.mapped("phone_masked")), {"+15****77"})
        for entry in entries:
            self.assertNotIn("5550777", entry.phone_hash + entry.phone_masked + (entry.note or ""))
        user = self.env["res.users"].search([("login", "=", "+15550777")])
        self.assertEqual(entries.filtered(lambda e: e.event == "signup").user_id, user)
        # managers read the log (list view), tenants and operators do not
        manager = new_test_user(
            self.env, login="signup_manager", groups="prepaid_meter.group_prepaid_manager"
        )
        self.assertEqual(self.Log.with_user(manager).search([]) & entries, entries)
        self.env["prepaid.portal.auth.log"].with_user(manager).get_views([(False, "list")])
        for other in (
            user,
            new_test_user(self.env, login="op", groups="prepaid_meter.group_prepaid_user"),
        ):
            with self.assertRaises(AccessError):
                self.Log.with_user(other).search([])

    # === NON-ENUMERATION === #
    def _signup_answers(self, phone):
        """The answers a visitor gets for ``phone``: the sign-up redirect, the verify page,
        a wrong code; with the number itself blanked out."""
        self.authenticate(None, None)
        signup = self._post("/web/phone/signup", name="Someone", phone=phone)
        page = self.url_open("/web/phone/verify")
        wrong = self._post("/web/phone/verify", code="123456", password=PASSWORD, confirm=PASSWORD)

        def clean(text):
            text = text.replace(phone, "NUMBER")
            text = re.sub(r'name="csrf_token" value="[^"]+"', "", text)
            return re.sub(r'csrf_token: "[^"]+"', "", text)

        return [
            (signup.status_code, signup.headers.get("Location")),
            (page.status_code, clean(page.text)),
            (wrong.status_code, clean(wrong.text)),
        ]

    def test_answers_do_not_tell_whether_a_number_has_an_account(self):
        self.user_a.login = "+15550201"
        existing = self._signup_answers("+15550201")
        notice = self.sms[-1]
        new = self._signup_answers("+15550288")
        self.assertEqual(existing, new)
        self.assertEqual(existing[0][1].split("/web/")[-1], "phone/verify")
        # the holder of the existing account is told by SMS to sign in, with no code
        self.assertEqual(notice["number"], "+15550201")
        self.assertIn("already have an account", notice["body"])
        self.assertFalse(re.search(r"\b\d{6}\b", notice["body"]))
        self.assertEqual(len(self._log("notice_sent", "+15550201")), 1)
        # and no code, guessed or not, ever verifies it
        verification = self.Verification.search([("phone", "=", "+15550201")], limit=1)
        self.assertTrue(verification.account_exists)
        self.assertEqual(self.user_a.login, "+15550201")

    def test_limits_apply_alike_to_existing_numbers(self):
        self.user_a.login = "+15550201"
        for _i in range(5):
            self.Verification._send_code("+15550201")
        existing = self._refused("+15550201")
        for _i in range(5):
            self.Verification._send_code("+15550288")
        self.assertEqual(existing, self._refused("+15550288"))
