import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import CODE_DIGITS, CODE_MAX_ATTEMPTS, CODE_MAX_PER_HOUR, CODE_TTL_MINUTES

_logger = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")


class PrepaidPortalVerification(models.Model):
    """T2: a verification code sent by SMS to prove a phone number at sign-up.

    Only a keyed hash of the code is stored; a code expires, allows a few attempts and is
    used once; a number receives a few codes an hour at most."""

    _name = "prepaid.portal.verification"
    _description = "Phone Verification Code"
    _order = "id desc"

    phone = fields.Char(required=True, index=True, readonly=True, help="E.164 number.")
    code_hash = fields.Char(required=True, readonly=True)
    expires_at = fields.Datetime(required=True, readonly=True)
    attempt_count = fields.Integer(readonly=True)
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

    # === SEND / CHECK === #
    @api.model
    def _send_code(self, phone):
        """Send a new code to ``phone`` (E.164); the previous ones stop working."""
        since = fields.Datetime.now() - timedelta(hours=1)
        recent = self.search_count([("phone", "=", phone), ("create_date", ">=", since)])
        if recent >= CODE_MAX_PER_HOUR:
            raise UserError(
                self.env._("Too many codes were sent to this number; try again in an hour.")
            )
        self.search([("phone", "=", phone), ("state", "=", "sent")]).write({"state": "blocked"})
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        record = self.create(
            {
                "phone": phone,
                "code_hash": self._hash_code(phone, code),
                "expires_at": fields.Datetime.now() + timedelta(minutes=CODE_TTL_MINUTES),
            }
        )
        body = self.env._(
            "%(code)s is your verification code for %(company)s. It expires in %(minutes)s "
            "minutes.",
            code=code,
            company=self.env.company.name,
            minutes=CODE_TTL_MINUTES,
        )
        sms = self.env["sms.sms"].sudo().create({"number": phone, "body": body})
        sms._send(raise_exception=True)
        return record

    def _check_code(self, code):
        """True if ``code`` is this record's and still valid; counts failed attempts."""
        self.ensure_one()
        if self.state != "sent" or self.expires_at < fields.Datetime.now():
            return False
        if hmac.compare_digest(self.code_hash, self._hash_code(self.phone, (code or "").strip())):
            self.state = "verified"
            return True
        self.attempt_count += 1
        if self.attempt_count >= CODE_MAX_ATTEMPTS:
            self.state = "blocked"
        return False

    @api.model
    def _cron_purge(self):
        self.search([("create_date", "<", fields.Datetime.now() - timedelta(days=2))]).unlink()

    # === SIGN-UP === #
    def _signup(self, name, password):
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
