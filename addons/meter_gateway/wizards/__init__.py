from . import (
    meter_gateway_command_wizard,
    meter_gateway_connection_test,
    meter_gateway_management_token_wizard,
    meter_gateway_register_map_transfer,
)
