from . import (
    prepaid_agreement_report,
    prepaid_arrears_report,
    prepaid_income_report,
    prepaid_report_xlsx,
    prepaid_sales_report,
)
