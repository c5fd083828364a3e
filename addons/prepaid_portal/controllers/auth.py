import logging

from odoo import http
from odoo.exceptions import AccessDenied, UserError
from odoo.http import request

_logger = logging.getLogger(__name__)

#: session key of the verification in progress (T2)
SESSION_VERIFICATION = "prepaid_portal_verification_id"
MIN_PASSWORD_LENGTH = 8


class PrepaidPhoneAuth(http.Controller):
    """T2: sign up with a phone number proven by an SMS code, then log in with the phone
    number and a password.  The phone number (E.164) is the user's login."""

    def _render(self, template, values):
        response = request.render(template, values)
        response.headers["Cache-Control"] = "no-cache"
        return response

    @http.route(
        "/web/phone/signup",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        methods=["GET", "POST"],
    )
    def prepaid_phone_signup(self, phone=None, name=None, **kw):
        """Step 1: the phone number (and a name); a code is sent by SMS.  A number that has
        an account gets a "sign in instead" SMS: the answer here is the same either way."""
        values = {
            "phone": phone or "",
            "name": name or "",
            "phone_placeholder": self._phone_placeholder(),
        }
        if request.httprequest.method == "POST":
            Verification = request.env["prepaid.portal.verification"].sudo()
            try:
                if not (name or "").strip():
                    raise UserError(request.env._("Tell us your name."))
                number = Verification._normalize_phone(phone)
                verification = Verification._send_code(number, ip=self._ip())
            except UserError as exc:
                values["error"] = exc.args[0]
            else:
                request.session[SESSION_VERIFICATION] = verification.id
                request.session["prepaid_portal_signup_name"] = name.strip()[:128]
                return request.redirect("/web/phone/verify")
        return self._render("prepaid_portal.phone_signup", values)

    @staticmethod
    def _phone_placeholder():
        """An example number in the company's country (its calling code, the digits zero),
        e.g. ``+86 000 0000 0000``; none when the company has no country."""
        code = request.env.company.country_id.phone_code
        return f"+{code} 000 0000 0000" if code else ""

    @staticmethod
    def _ip():
        return request.httprequest.remote_addr

    @http.route(
        "/web/phone/verify",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        methods=["GET", "POST"],
    )
    def prepaid_phone_verify(self, code=None, password=None, confirm=None, **kw):
        """Step 2: the code received and a password; the account is created and logged in."""
        verification = (
            request.env["prepaid.portal.verification"]
            .sudo()
            .browse(request.session.get(SESSION_VERIFICATION))
            .exists()
        )
        if not verification:
            return request.redirect("/web/phone/signup")
        values = {"phone": verification.phone}
        if request.httprequest.method == "POST":
            error = None
            if not password or len(password) < MIN_PASSWORD_LENGTH:
                error = request.env._(
                    "Choose a password of at least %(n)s characters.", n=MIN_PASSWORD_LENGTH
                )
            elif password != confirm:
                error = request.env._("The passwords differ.")
            else:
                error = self._code_error(verification._verify_code(code, ip=self._ip()))
            if error:
                values["error"] = error
                return self._render("prepaid_portal.phone_verify", values)
            name = request.session.get("prepaid_portal_signup_name") or verification.phone
            try:
                verification._signup(name, password, ip=self._ip())
            except UserError as exc:
                values["error"] = exc.args[0]
                return self._render("prepaid_portal.phone_verify", values)
            request.session.pop(SESSION_VERIFICATION, None)
            request.session.pop("prepaid_portal_signup_name", None)
            credential = {"login": verification.phone, "password": password, "type": "password"}
            request.session.authenticate(request.env, credential)
            return request.redirect("/my/meters")
        return self._render("prepaid_portal.phone_verify", values)

    @staticmethod
    def _code_error(status):
        """The message shown for the result of a code check (None when it is right)."""
        if status == "ok":
            return None
        if status == "locked":
            return request.env._("Too many wrong codes: try again later.")
        if status == "blocked":
            return request.env._("Too many wrong codes: ask for a new one.")
        return request.env._("This code is wrong or expired.")

    @http.route(
        "/web/phone/login",
        type="http",
        auth="public",
        website=True,
        sitemap=False,
        methods=["GET", "POST"],
    )
    def prepaid_phone_login(self, phone=None, password=None, redirect=None, **kw):
        """Log in with a phone number as typed (normalized to the E.164 login)."""
        values = {"phone": phone or "", "redirect": redirect or ""}
        if request.httprequest.method == "POST":
            try:
                number = request.env["prepaid.portal.verification"].sudo()._normalize_phone(phone)
                credential = {"login": number, "password": password or "", "type": "password"}
                request.session.authenticate(request.env, credential)
            except (UserError, AccessDenied):
                values["error"] = request.env._("Wrong phone number or password.")
            else:
                local = redirect and redirect.startswith("/") and not redirect.startswith("//")
                return request.redirect(redirect if local else "/my/meters")
        return self._render("prepaid_portal.phone_login", values)
