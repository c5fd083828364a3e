from . import (
    meter_gateway_command,
    meter_gateway_message,
    prepaid_gateway,
    prepaid_gateway_bus,
    prepaid_gateway_bus_dlt645,
    prepaid_meter,
)
