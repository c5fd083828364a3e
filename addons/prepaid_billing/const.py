"""Constants of the billing add-on, drawn from the pure engine (prepaid_core)."""

from prepaid_core import alarm, balance, tariff

LINE_KINDS = [(kind, balance.KIND_LABELS[kind]) for kind in balance.LINE_KINDS]
BANDS = [(band, tariff.BAND_LABELS[band].capitalize()) for band in tariff.BANDS]
UTILITIES = [(tariff.ELECTRICITY, "Electricity"), (tariff.WATER, "Water")]
CYCLES = [(tariff.MONTHLY, "Monthly"), (tariff.ANNUAL, "Annual")]
ALARM_LEVELS = [(level, alarm.LEVEL_LABELS[level]) for level in alarm.LEVELS]
PAYMENT_METHODS = [
    ("cash", "Cash"),
    ("bank", "Bank Transfer"),
    ("card", "Card"),
    ("online", "Online"),
]
FORCED_RELAY = [("on", "Forced On"), ("off", "Forced Off")]

#: PostgreSQL advisory locks of the deduction run, one per shard: (this key, shard number)
#: (R11: one run at a time on each shard)
DEDUCTION_LOCK_KEY = 0x50524550  # "PREP"
#: system parameter: how many shards the deduction run splits the accounts into (account id
#: modulo this count); each cron worker running the deduction takes the shards still free
DEDUCTION_SHARDS_PARAM = "prepaid_billing.deduction_shards"
DEDUCTION_SHARDS_DEFAULT = 4
#: meters priced per transaction of the deduction run
DEDUCTION_BATCH_SIZE = 2000
#: notices read (and locked) at a time by their sending action
NOTICE_BATCH_SIZE = 200
#: pages of the meters' and accounts' tables filled to this percentage: each deduction run
#: rewrites every charged meter's cursor and account's balance, and the free half of a
#: page keeps the new row version on it (a HOT update, no index written again)
HOT_UPDATE_FILLFACTOR = 50
#: the tenant's notices of the postpaid overdue policy: supply cut, supply back once paid
POSTPAID_OVERDUE, POSTPAID_PAID = "postpaid_overdue", "postpaid_paid"
