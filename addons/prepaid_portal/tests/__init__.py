from . import (
    test_alerts,
    test_concurrency,
    test_link_rotation,
    test_payment_tokens,
    test_phone_signup,
    test_portal_access,
    test_portal_meter_balance,
    test_portal_tokens,
    test_provider_refund,
    test_read_request,
    test_recharge,
    test_tours,
)
