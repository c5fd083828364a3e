{
    "name": "Prepaid Portal",
    "summary": "Tenant self-service: QR landing, my meters, online recharge, history, alerts",
    "version": "19.0.1.0.0",
    "category": "Services/Prepaid Energy",
    "website": "https://github.com/prepaid-energy/prepaid-energy",
    "author": "Prepaid Energy contributors",
    "license": "LGPL-3",
    "depends": ["prepaid_billing", "payment", "portal", "account_payment", "sms"],
    "data": [
        "security/ir.model.access.csv",
        "security/prepaid_portal_rules.xml",
        "data/ir_cron_data.xml",
        "views/prepaid_online_recharge_views.xml",
        "views/prepaid_alert_subscription_views.xml",
        "views/prepaid_meter_read_request_views.xml",
        "views/prepaid_meter_views.xml",
        "views/prepaid_portal_auth_log_views.xml",
        "views/res_config_settings_views.xml",
        "views/prepaid_portal_menus.xml",
        "views/portal_templates.xml",
        "views/portal_forecast_templates.xml",
        "views/portal_auth_templates.xml",
    ],
    "demo": [
        "demo/prepaid_portal_demo.xml",
    ],
    "assets": {
        "web.assets_frontend": [
            "prepaid_portal/static/src/scss/prepaid_portal.scss",
        ],
        "web.assets_tests": [
            "prepaid_portal/static/src/js/tours/*.js",
        ],
    },
    "installable": True,
}
