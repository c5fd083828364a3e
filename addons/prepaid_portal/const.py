"""Constants of the tenant portal."""

#: recharge amounts offered as buttons when the company sets none
DEFAULT_PRESET_AMOUNTS = "10,20,50,100"
DEFAULT_RECHARGE_MIN = 5.0
DEFAULT_RECHARGE_MAX = 1000.0

#: session key holding the meters whose QR or share token this browser proved (T1)
SESSION_METER_TOKENS = "prepaid_portal_meter_ids"

#: SMS verification codes (T2)
CODE_DIGITS = 6
CODE_TTL_MINUTES = 10
CODE_MAX_ATTEMPTS = 5
#: codes sent to one phone number per hour at most
CODE_MAX_PER_HOUR = 5

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
