from . import prepaid_meter_replace
