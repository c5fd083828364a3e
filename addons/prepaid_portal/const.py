"""Constants of the tenant portal."""

#: recharge amounts offered as buttons when the company sets none
DEFAULT_PRESET_AMOUNTS = "10,20,50,100"
DEFAULT_RECHARGE_MIN = 5.0
DEFAULT_RECHARGE_MAX = 1000.0

#: session key holding the meters whose QR or share token this browser proved (T1)
SESSION_METER_TOKENS = "prepaid_portal_meter_ids"

#: SMS verification codes (T2)
CODE_DIGITS = 6
#: phone sign-up limits: ir.config_parameter key -> default (Settings -> Prepaid Energy)
SIGNUP_LIMITS = {
    "prepaid_portal.signup_code_ttl_minutes": 10,
    "prepaid_portal.signup_codes_per_number_hour": 5,
    "prepaid_portal.signup_codes_per_ip_hour": 10,
    "prepaid_portal.signup_codes_total_hour": 100,
    "prepaid_portal.signup_attempts_per_code": 5,
    "prepaid_portal.signup_failures_per_number": 10,
    "prepaid_portal.signup_failures_per_ip": 20,
    "prepaid_portal.signup_lockout_minutes": 30,
}
#: the row every sign-up request updates, so that concurrent ones serialize
SIGNUP_GATE = "prepaid_portal.signup_gate"
#: sign-up audit log entries are kept this many days
AUTH_LOG_DAYS = 90
AUTH_LOG_EVENTS = [
    ("code_sent", "Code Sent"),
    ("notice_sent", "Sign-in Notice Sent"),
    ("send_refused", "Sending Refused (limit)"),
    ("code_ok", "Code Accepted"),
    ("code_wrong", "Wrong Code"),
    ("code_expired", "Expired or Used Code"),
    ("locked", "Refused (locked out)"),
    ("signup", "Account Created"),
]

#: a "read now" request is not repeated for a meter within this many minutes (T3)
READ_REQUEST_COOLDOWN_MINUTES = 5

ONLINE_RECHARGE_STATES = [
    ("pending", "Awaiting Payment"),
    ("credited", "Credited"),
    ("debited", "Debited"),
    ("failed", "Not Credited (retry)"),
    ("conflict", "Conflict"),
    ("canceled", "Canceled"),
]
ONLINE_RECHARGE_KINDS = [("recharge", "Recharge"), ("refund", "Provider Refund")]
ALERT_CHANNELS = [("email", "Email"), ("sms", "SMS")]
