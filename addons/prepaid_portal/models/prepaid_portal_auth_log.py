import hashlib
import hmac
from datetime import timedelta

from odoo import api, fields, models

from ..const import AUTH_LOG_DAYS, AUTH_LOG_EVENTS

#: events that sent an SMS (counted by the sending limits)
SENT = ("code_sent", "notice_sent")
#: events that count towards a lockout
FAILED = ("code_wrong", "code_expired")


class PrepaidPortalAuthLog(models.Model):
    """T2: the audit log of phone sign-up: who (IP address, user), what (event), which
    number (masked, and a keyed hash to count per number), the result.

    The sign-up limits count these rows: codes sent per number, per IP address and in total
    in the last hour; failed attempts per number and per IP address in the lockout window."""

    _name = "prepaid.portal.auth.log"
    _description = "Phone Sign-up Log"
    _order = "id desc"

    create_date = fields.Datetime(string="When", readonly=True, index=True)
    event = fields.Selection(AUTH_LOG_EVENTS, required=True, readonly=True, index=True)
    ip_address = fields.Char(string="IP Address", readonly=True, index=True)
    phone_masked = fields.Char(string="Number", readonly=True)
    phone_hash = fields.Char(readonly=True, index=True, help="Keyed hash of the number.")
    user_id = fields.Many2one("res.users", readonly=True, ondelete="set null")
    note = fields.Char(string="Result", readonly=True)
    company_id = fields.Many2one(
        "res.company", default=lambda self: self.env.company, readonly=True, index=True
    )

    @api.model
    def _phone_hash(self, phone):
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        return hmac.new(secret.encode(), f"auth-log:{phone}".encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _mask(phone):
        if not phone:
            return False
        return phone[:3] + "*" * max(len(phone) - 5, 0) + phone[-2:]

    @api.model
    def _record(self, event, phone=None, ip=None, note=None):
        """Add one entry (sudo: visitors write it, managers read it)."""
        user = self.env.user
        return self.sudo().create(
            {
                "event": event,
                "ip_address": ip or False,
                "phone_masked": self._mask(phone),
                "phone_hash": self._phone_hash(phone) if phone else False,
                "user_id": False if user._is_public() else user.id,
                "note": note or False,
            }
        )

    @api.model
    def _count(self, events, since, phone=None, ip=None):
        domain = [("event", "in", events), ("create_date", ">=", since)]
        if phone:
            domain.append(("phone_hash", "=", self._phone_hash(phone)))
        if ip:
            domain.append(("ip_address", "=", ip))
        return self.sudo().search_count(domain)

    @api.model
    def _send_refusal(self, phone, ip, limits):
        """Why no SMS may be sent now to ``phone`` for ``ip`` (a note), or None."""
        hour_ago = fields.Datetime.now() - timedelta(hours=1)
        if self._count(SENT, hour_ago, phone=phone) >= limits["codes_per_number_hour"]:
            return self.env._("codes per number")
        if ip and self._count(SENT, hour_ago, ip=ip) >= limits["codes_per_ip_hour"]:
            return self.env._("codes per IP address")
        if self._count(SENT, hour_ago) >= limits["codes_total_hour"]:
            return self.env._("codes in total")
        return self._lockout(phone, ip, limits)

    @api.model
    def _lockout(self, phone, ip, limits):
        """Why ``phone`` or ``ip`` is locked out now (too many failed attempts within the
        lockout window: the lock lifts by itself), or None."""
        since = fields.Datetime.now() - timedelta(minutes=limits["lockout_minutes"])
        if self._count(FAILED, since, phone=phone) >= limits["failures_per_number"]:
            return self.env._("locked out: failures per number")
        if ip and self._count(FAILED, since, ip=ip) >= limits["failures_per_ip"]:
            return self.env._("locked out: failures per IP address")
        return None

    @api.model
    def _cron_purge(self):
        limit = fields.Datetime.now() - timedelta(days=AUTH_LOG_DAYS)
        self.sudo().search([("create_date", "<", limit)]).unlink()
