from . import (
    test_command,
    test_device_api,
    test_poll,
    test_reconcile,
    test_requirements,
    test_runner,
    test_security,
)
