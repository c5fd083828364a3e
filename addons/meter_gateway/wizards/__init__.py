from . import meter_gateway_command_wizard
