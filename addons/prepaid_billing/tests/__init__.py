from . import (
    test_account,
    test_accounting,
    test_alarm,
    test_concurrency,
    test_deduction,
    test_deduction_kill,
    test_receipt,
    test_recharge,
    test_report_centre,
    test_tariff,
    test_token_receipt,
)
