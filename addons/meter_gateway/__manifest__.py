{
    "name": "Meter Gateway",
    "summary": "Meter commands with reconciliation, DL/T645 polling and a device API",
    "version": "19.0.1.2.0",
    "category": "Services/Prepaid Energy",
    "website": "https://github.com/prepaid-energy/prepaid-energy",
    "author": "Prepaid Energy contributors",
    "license": "LGPL-3",
    "depends": ["prepaid_meter"],
    # prepaid_core's bus drivers, Modbus codec and device keys, loaded with the models
    "external_dependencies": {
        "python": ["prepaid-core", "cryptography", "gurux-dlms", "pymodbus", "pyserial"]
    },
    "data": [
        "security/ir.model.access.csv",
        "security/meter_gateway_rules.xml",
        "data/ir_cron_data.xml",
        "data/meter_gateway_register_map_data.xml",
        "data/prepaid_meter_model_dlms_data.xml",
        "views/meter_gateway_command_views.xml",
        "views/meter_gateway_command_batch_views.xml",
        "views/meter_gateway_dead_letter_views.xml",
        "views/prepaid_gateway_views.xml",
        "views/meter_gateway_management_token_wizard_views.xml",
        "views/prepaid_meter_views.xml",
        "views/prepaid_meter_reading_daily_views.xml",
        "views/meter_gateway_command_wizard_views.xml",
        "views/meter_gateway_register_map_views.xml",
        "views/meter_gateway_connection_test_views.xml",
        "views/meter_gateway_menus.xml",
    ],
    "demo": [
        "demo/meter_gateway_demo.xml",
    ],
    "installable": True,
}
