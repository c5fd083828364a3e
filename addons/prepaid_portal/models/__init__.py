from . import (
    payment_transaction,
    prepaid_account,
    prepaid_alert_subscription,
    prepaid_meter,
    prepaid_meter_read_request,
    prepaid_meter_reading,
    prepaid_online_recharge,
    prepaid_portal_auth_log,
    prepaid_portal_verification,
    res_company,
    res_config_settings,
)
