from . import (
    prepaid_account_recharge,
    prepaid_account_refund,
    prepaid_meter_batch,
    prepaid_meter_replace,
    prepaid_receipt_print,
)
