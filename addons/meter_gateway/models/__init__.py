from . import (
    meter_gateway_command,
    meter_gateway_message,
    prepaid_gateway,
    prepaid_gateway_bus,
    prepaid_gateway_bus_dlt645,
    prepaid_gateway_bus_modbus,
    prepaid_gateway_time_sync,
    prepaid_meter,
    prepaid_meter_event,
    prepaid_meter_model,
    prepaid_meter_reading_daily,
    res_company,
)
