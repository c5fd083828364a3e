# the mixin first: models below inherit it
from . import prepaid_secret_mixin

# isort: split
from . import (
    meter_gateway_command,
    meter_gateway_command_activity,
    meter_gateway_command_batch,
    meter_gateway_dead_letter,
    meter_gateway_message,
    meter_gateway_register_map,
    prepaid_gateway,
    prepaid_gateway_bus,
    prepaid_gateway_bus_dlms,
    prepaid_gateway_bus_dlt645,
    prepaid_gateway_bus_modbus,
    prepaid_gateway_connection_test,
    prepaid_gateway_demo,
    prepaid_gateway_device_api,
    prepaid_gateway_poll,
    prepaid_gateway_time_sync,
    prepaid_meter,
    prepaid_meter_credit,
    prepaid_meter_dlms,
    prepaid_meter_event,
    prepaid_meter_model,
    prepaid_meter_model_dlms,
    prepaid_meter_reading_daily,
    prepaid_meter_token,
    res_company,
)
