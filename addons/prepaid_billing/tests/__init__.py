from . import test_account, test_alarm, test_deduction, test_recharge, test_tariff
