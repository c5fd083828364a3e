from . import (
    test_bus_link,
    test_command,
    test_concurrency,
    test_device_api,
    test_device_settings,
    test_poll,
    test_reconcile,
    test_requirements,
    test_runner,
    test_security,
    test_time_sync,
    test_vending_key,
)
