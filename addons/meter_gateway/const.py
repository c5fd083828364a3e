"""Constants of the meter gateway: command kinds, states and their rules."""

COMMAND_STATES = [
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("confirmed", "Confirmed"),
    ("failed", "Failed"),
    ("superseded", "Superseded"),
    ("expired", "Expired"),
    ("cancelled", "Cancelled"),
    ("handed", "Handed Over"),
]
#: states a command can still change from
ACTIVE_STATES = ("queued", "sent")
FINAL_STATES = ("confirmed", "failed", "superseded", "expired", "cancelled")
#: a token no gateway sends: typed on the meter's keypad or written to its card by people
#: (keypad and card credits, management tokens); it stays in the meter's command list
HANDED_STATE = "handed"

#: kind -> (label, purpose, default lifetime in minutes)
#: a newer command of the same meter and purpose supersedes the older active ones, except for
#: purposes in NEVER_SUPERSEDED (each credit delivery carries value: R6)
COMMAND_KINDS = {
    "relay_on": ("Relay On", "relay", 60),
    "relay_off": ("Relay Off", "relay", 60),
    "protect_on": ("Protect On", "protect", 24 * 60),
    "protect_off": ("Protect Off", "protect", 24 * 60),
    "price": ("Price Issuance", "price", 7 * 24 * 60),
    "thresholds": ("Alarm Thresholds", "thresholds", 7 * 24 * 60),
    "time_sync": ("Time Sync", "time_sync", 60),
    "zeroing": ("Zeroing", "zeroing", 24 * 60),
    "credit": ("Credit Delivery", "credit", 30 * 24 * 60),
    "read_now": ("Read Now", "read_now", 10),
    "management": ("Management Token", "management", 30 * 24 * 60),
}
NEVER_SUPERSEDED = frozenset({"credit", "management"})
RELAY_KIND_STATE = {"relay_on": "on", "relay_off": "off"}
#: PostgreSQL advisory lock of a gateway's poll: (this key, gateway id)
POLL_LOCK_KEY = 0x50524750  # "PRGP"

COMMAND_ORIGINS = [
    ("manual", "Manager"),
    ("billing", "Billing"),
    ("reconcile", "Reconciliation"),
    ("device_api", "Device API"),
    ("schedule", "Schedule"),
    ("drift", "Clock Drift"),
]

#: minutes between two corrective commands for one meter (R9)
DEFAULT_RECONCILE_COOLDOWN_MINUTES = 15
#: confirmed corrections of one meter within a cooldown before it waits too (a meter that
#: keeps reverting: a fault or tampering, not worth a command a minute)
MAX_CONFIRMED_CORRECTIONS = 3
#: attempts before a command fails
DEFAULT_MAX_ATTEMPTS = 3

#: how a meter's tokens are made (B13, G6): the project's own format or STS (IEC 62055-41)
TOKEN_FORMATS = [("own", "Own Format"), ("sts", "STS (IEC 62055-41)")]
#: STS token identifier base dates: 1993 identifiers ran out in November 2024
STS_BASE_DATES = [("1993", "1993-01-01"), ("2014", "2014-01-01")]
#: what a management token does (own format: clear credit and clear tamper only)
MANAGEMENT_TOKENS = [
    ("max_power", "Set Maximum Power Limit"),
    ("clear_credit", "Clear Credit"),
    ("clear_tamper", "Clear Tamper Condition"),
    ("key_change", "Key Change"),
]
