from . import prepaid_meter_replace, prepaid_site_workbook
