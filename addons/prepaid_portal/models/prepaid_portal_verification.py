import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import CODE_DIGITS, SIGNUP_GATE, SIGNUP_LIMITS

_logger = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")


class PrepaidPortalVerification(models.Model):
    """T2: a verification code sent by SMS to prove a phone number at sign-up.

    Only a keyed hash of the code is stored (compared in constant time); a code expires,
    allows a few attempts and is used once.  Sending is limited per number, per IP address
    and in total (SMS pumping); failed attempts per number and per IP address lock them out
    for a while; every step is logged (``prepaid.portal.auth.log``).  A number that has an
    account already receives a "sign in instead" SMS and the caller sees exactly what a new
    number sees: the answers never tell whether a number has an account."""

    _name = "prepaid.portal.verification"
    _description = "Phone Verification Code"
    _order = "id desc"

    phone = fields.Char(required=True, index=True, readonly=True, help="E.164 number.")
    code_hash = fields.Char(required=True, readonly=True)
    expires_at = fields.Datetime(required=True, readonly=True)
    attempt_count = fields.Integer(readonly=True)
    account_exists = fields.Boolean(
        readonly=True, help="The number had an account: a sign-in notice was sent, no code."
    )
    state = fields.Selection(
        [("sent", "Sent"), ("verified", "Verified"), ("used", "Used"), ("blocked", "Blocked")],
        default="sent",
        required=True,
        readonly=True,
    )

    # === PHONE NUMBERS === #
    @api.model
    def _normalize_phone(self, number, country=None):
        """``number`` in E.164 form (the login of phone accounts), or raise.

        Spaces, dots, dashes and brackets are ignored; ``00`` becomes ``+``; a national
        number (leading 0 or none) takes the country code of ``country`` (the company's)."""
        digits = re.sub(r"[\s.\-()/]", "", number or "")
        if digits.startswith("00"):
            digits = "+" + digits[2:]
        if not digits.startswith("+"):
            country = country or self.env.company.country_id
            if not country or not country.phone_code:
                raise UserError(self.env._("Give the number with its country code (+...)."))
            digits = f"+{country.phone_code}{digits.lstrip('0')}"
        if not PHONE_RE.match(digits):
            raise UserError(self.env._("This is not a phone number."))
        return digits

    @api.model
    def _hash_code(self, phone, code):
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        return hmac.new(secret.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    @api.model
    def _limits(self):
        """The sign-up limits (Settings), each a positive integer, else its default."""
        params = self.env["ir.config_parameter"].sudo()
        limits = {}
        for key, default in SIGNUP_LIMITS.items():
            try:
                value = int(params.get_param(key, default))
            except (TypeError, ValueError):
                value = default
            limits[key.removeprefix("prepaid_portal.signup_")] = value if value > 0 else default
        return limits

    def _lock_signup(self):
        """Serialise sending and checking codes: the limits count the log, so two requests
        at once must not both pass the last free slot.  Both update one row: under
        REPEATABLE READ the later one fails to serialize and its request runs again, then
        counts what the first one logged (an advisory lock would not: the snapshot is
        older than the wait)."""
        self.env.cr.execute(
            "UPDATE ir_config_parameter SET value = value WHERE key = %s", [SIGNUP_GATE]
        )
        if not self.env.cr.rowcount:
            self.env["ir.config_parameter"].sudo().set_param(SIGNUP_GATE, "1")

    # === SEND / CHECK === #
    @api.model
    def _send_code(self, phone, ip=None):
        """Send a new code to ``phone`` (E.164), or a sign-in notice if the number has an
        account already; the previous codes stop working.  Raise UserError past a limit
        (the same error for every number)."""
        Log = self.env["prepaid.portal.auth.log"]
        limits = self._limits()
        self._lock_signup()
        refusal = Log._send_refusal(phone, ip, limits)
        if refusal:
            Log._record("send_refused", phone, ip, refusal)
            raise UserError(self.env._("Too many codes were requested; try again later."))
        self.search([("phone", "=", phone), ("state", "=", "sent")]).write({"state": "blocked"})
        exists = bool(
            self.env["res.users"]
            .sudo()
            .with_context(active_test=False)
            .search_count([("login", "=", phone)], limit=1)
        )
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        minutes = limits["code_ttl_minutes"]
        record = self.create(
            {
                "phone": phone,
                "code_hash": self._hash_code(phone, code),
                "expires_at": fields.Datetime.now() + timedelta(minutes=minutes),
                "account_exists": exists,
            }
        )
        company = self.env.company.name
        if exists:
            body = self.env._(
                "You already have an account with %(company)s: sign in with this number and "
                "your password. If you did not ask for this, ignore this message.",
                company=company,
            )
        else:
            body = self.env._(
                "%(code)s is your verification code for %(company)s. It expires in "
                "%(minutes)s minutes.",
                code=code,
                company=company,
                minutes=minutes,
            )
        sms = self.env["sms.sms"].sudo().create({"number": phone, "body": body})
        sms._send(raise_exception=True)
        Log._record("notice_sent" if exists else "code_sent", phone, ip)
        return record

    def _verify_code(self, code, ip=None):
        """Check ``code``: ``"ok"`` (the number is verified), ``"wrong"`` (wrong, expired
        or used), ``"blocked"`` (too many attempts on this code) or ``"locked"`` (too many
        failures for this number or IP address lately: refused even if right).  Logged."""
        self.ensure_one()
        Log = self.env["prepaid.portal.auth.log"]
        limits = self._limits()
        self._lock_signup()
        lockout = Log._lockout(self.phone, ip, limits)
        if lockout:
            Log._record("locked", self.phone, ip, lockout)
            return "locked"
        if self.state != "sent" or self.expires_at < fields.Datetime.now():
            Log._record("code_expired", self.phone, ip, self.state)
            return "blocked" if self.state == "blocked" else "wrong"
        given = self._hash_code(self.phone, (code or "").strip()[:32])
        if hmac.compare_digest(self.code_hash, given) and not self.account_exists:
            self.state = "verified"
            Log._record("code_ok", self.phone, ip)
            return "ok"
        self.attempt_count += 1
        if self.attempt_count >= limits["attempts_per_code"]:
            self.state = "blocked"
        Log._record("code_wrong", self.phone, ip, self.env._("attempt %s", self.attempt_count))
        return "blocked" if self.state == "blocked" else "wrong"

    @api.model
    def _cron_purge(self):
        """Codes older than two days go; the audit log is kept longer."""
        self.search([("create_date", "<", fields.Datetime.now() - timedelta(days=2))]).unlink()
        self.env["prepaid.portal.auth.log"]._cron_purge()

    # === SIGN-UP === #
    def _signup(self, name, password, ip=None):
        """Create the portal user of a verified phone number (login: the number in E.164).

        The tenant partner with that phone number is reused when there is exactly one (its
        meters then appear in the portal); otherwise a new contact is created."""
        self.ensure_one()
        if self.state != "verified":
            raise UserError(self.env._("Verify your phone number first."))
        users = self.env["res.users"].sudo().with_context(active_test=False)
        if users.search_count([("login", "=", self.phone)]):
            raise UserError(self.env._("An account with this phone number already exists."))
        partner = self._tenant_partner()
        if not partner:
            partner = self.env["res.partner"].sudo().create({"name": name, "phone": self.phone})
        portal = self.env.ref("base.group_portal")
        user = users.with_context(no_reset_password=True).create(
            {
                "name": partner.name or name,
                "login": self.phone,
                "password": password,
                "partner_id": partner.id,
                "group_ids": [fields.Command.set(portal.ids)],
            }
        )
        self.state = "used"
        self.env["prepaid.portal.auth.log"].with_user(user)._record("signup", self.phone, ip)
        _logger.info("Portal user %s created by phone sign-up", user.id)
        return user

    def _tenant_partner(self):
        """The one tenant (of an open tenancy, without a user yet) whose phone is this
        number, if any."""
        # phones are stored as typed: narrow down on the last digits, then compare exactly
        candidates = self.env["res.partner"].sudo().search([("phone", "ilike", self.phone[-4:])])
        candidates = candidates.filtered(lambda p: self._same_phone(p.phone) and not p.user_ids)
        if not candidates:
            return candidates
        tenants = (
            self.env["prepaid.tenancy"]
            .sudo()
            .search([("state", "=", "open"), ("partner_id", "in", candidates.ids)])
            .partner_id
        )
        return tenants if len(tenants) == 1 else tenants.browse()

    def _same_phone(self, number):
        try:
            return self._normalize_phone(number) == self.phone
        except UserError:
            return False
