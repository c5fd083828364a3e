# prepaid.meter.latest first: prepaid.meter delegates to it (_inherits)
from . import prepaid_meter_latest  # noqa: I001
from . import (
    ir_cron,
    prepaid_building,
    prepaid_floor,
    prepaid_gateway,
    prepaid_gateway_bus,
    prepaid_meter,
    prepaid_meter_chart,
    prepaid_meter_credit,
    prepaid_meter_event,
    prepaid_meter_model,
    prepaid_meter_reading,
    prepaid_meter_reading_daily,
    prepaid_meter_reading_rejection,
    prepaid_site,
    prepaid_site_import,
    prepaid_tenancy,
    prepaid_unit,
)
from . import prepaid_import_template
