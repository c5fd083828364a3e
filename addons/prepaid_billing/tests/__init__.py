from . import (
    test_account,
    test_alarm,
    test_deduction,
    test_deduction_kill,
    test_recharge,
    test_tariff,
)
