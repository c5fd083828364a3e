from . import (
    prepaid_account,
    prepaid_account_line,
    prepaid_meter,
    prepaid_meter_event,
    prepaid_meter_reading,
    prepaid_tariff,
    prepaid_tariff_part,
    prepaid_tariff_season,
    prepaid_tariff_segment,
    prepaid_tariff_step,
    prepaid_tariff_version,
    prepaid_tenancy,
)
