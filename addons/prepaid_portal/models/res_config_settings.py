from odoo import fields, models

from ..const import SIGNUP_LIMITS


def _limit(key, string, help_text):
    return fields.Integer(
        string=string,
        config_parameter=key,
        default=SIGNUP_LIMITS[key],
        help=help_text,
    )


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_qr_anonymous = fields.Boolean(related="company_id.prepaid_qr_anonymous", readonly=False)
    prepaid_recharge_min = fields.Float(related="company_id.prepaid_recharge_min", readonly=False)
    prepaid_recharge_max = fields.Float(related="company_id.prepaid_recharge_max", readonly=False)
    prepaid_recharge_presets = fields.Char(
        related="company_id.prepaid_recharge_presets", readonly=False
    )

    # === PHONE SIGN-UP LIMITS (T2) === #
    prepaid_signup_code_ttl_minutes = _limit(
        "prepaid_portal.signup_code_ttl_minutes",
        "Code Validity (minutes)",
        "A sign-up code expires after this many minutes.",
    )
    prepaid_signup_codes_per_number_hour = _limit(
        "prepaid_portal.signup_codes_per_number_hour",
        "SMS per Number per Hour",
        "Codes (or sign-in notices) sent to one phone number in an hour at most.",
    )
    prepaid_signup_codes_per_ip_hour = _limit(
        "prepaid_portal.signup_codes_per_ip_hour",
        "SMS per IP Address per Hour",
        "Codes requested from one IP address in an hour at most.",
    )
    prepaid_signup_codes_total_hour = _limit(
        "prepaid_portal.signup_codes_total_hour",
        "SMS per Hour in Total",
        "Sign-up SMS sent in an hour at most, all numbers together (against SMS pumping).",
    )
    prepaid_signup_attempts_per_code = _limit(
        "prepaid_portal.signup_attempts_per_code",
        "Attempts per Code",
        "Wrong entries after which a code stops working.",
    )
    prepaid_signup_failures_per_number = _limit(
        "prepaid_portal.signup_failures_per_number",
        "Failures per Number",
        "Wrong codes for one number within the lockout time that lock the number out.",
    )
    prepaid_signup_failures_per_ip = _limit(
        "prepaid_portal.signup_failures_per_ip",
        "Failures per IP Address",
        "Wrong codes from one IP address within the lockout time that lock it out.",
    )
    prepaid_signup_lockout_minutes = _limit(
        "prepaid_portal.signup_lockout_minutes",
        "Lockout (minutes)",
        "How long failures count, and so how long a lockout lasts.",
    )
