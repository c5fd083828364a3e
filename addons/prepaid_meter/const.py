"""Constants shared by the prepaid_meter models, views and the add-ons built on them."""

#: how a meter talks; meter_gateway plugs a driver in for each (selection_add + guard)
PROTOCOLS = [
    ("dlt645_2007", "DL/T645-2007 (RS-485)"),
    ("dlt645_1997", "DL/T645-1997 (RS-485)"),
    ("modbus_rtu", "Modbus-RTU (RS-485)"),
    ("dlms_hdlc", "DLMS/COSEM HDLC (RS-485)"),
    ("dlms_wrapper", "DLMS/COSEM over TCP"),
    ("mqtt_json", "4G / MQTT"),
    ("ble", "Bluetooth"),
]

#: B13: who keeps the balance a meter draws on
BILLING_MODES = [
    ("server", "Server Billing"),
    ("meter", "Meter Billing"),
]

#: B13: how a credit sold for a meter-balance meter reaches it
CREDIT_CHANNELS = [
    ("device", "Meter Connection"),
    ("keypad", "Keypad Token"),
    ("card", "IC Card"),
]

CREDIT_STATES = [
    ("to_issue", "To Issue"),
    ("issued", "Issued"),
    ("applied", "Applied"),
    ("cancelled", "Cancelled"),
]

RELAY_STATES = [("on", "On"), ("off", "Off")]
ACTUAL_RELAY_STATES = [*RELAY_STATES, ("unknown", "Unknown")]

READING_SOURCES = [
    ("poll", "Poll"),
    ("push", "Push"),
    ("manual", "Manual"),
    ("ble", "Bluetooth"),
    ("import", "Import"),
]

EVENT_TYPES = [
    ("relay_on", "Relay On"),
    ("relay_off", "Relay Off"),
    ("desired_on", "Supply Requested On"),
    ("desired_off", "Supply Requested Off"),
    ("zeroing", "Zeroing"),
    ("fault", "Fault"),
    ("tamper_cover", "Tamper: Cover Opened"),
    ("tamper_magnet", "Tamper: Magnetic Field"),
    ("power_fail", "Power Failure"),
    ("power_restore", "Power Restored"),
    ("overload", "Overload Trip"),
    ("overload_reset", "Overload Reset"),
    ("connection_lost", "Connection Lost"),
    ("connection_restored", "Connection Restored"),
    ("replaced", "Meter Replaced"),
    ("baseline", "Baseline Accepted"),
    ("protect_on", "Protect Mode On"),
    ("protect_off", "Protect Mode Off"),
]

#: minutes without contact after which a meter counts as lost (3 missed 30-minute polls)
DEFAULT_LOST_AFTER_MINUTES = 95
#: raw interval readings are kept this many days; daily frozen records are kept for ever
DEFAULT_READING_RETENTION_DAYS = 400
