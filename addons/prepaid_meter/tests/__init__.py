from . import (
    test_concurrency,
    test_ct_pt,
    test_meter,
    test_meter_credit,
    test_partition,
    test_reading,
    test_reading_fleet,
    test_reading_values,
    test_replace,
    test_security,
    test_tenancy,
    test_tours,
)
