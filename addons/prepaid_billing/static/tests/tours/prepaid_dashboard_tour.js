import { registry } from "@web/core/registry";

/** M10: a manager opens the dashboard: sales, arrears and statuses are shown, the charts
 * drawn, and a status opens its meters. */
registry.category("web_tour.tours").add("prepaid_dashboard", {
    steps: () => [
        {
            content: "Today's sales: the desk recharges of the test",
            trigger: ".o_prepaid_kpi_sales_today:contains('80.00')",
        },
        {
            content: "Arrears: one account below zero",
            trigger: ".o_prepaid_kpi_arrears:contains('1 accounts')",
        },
        {
            content: "The energy chart is drawn",
            trigger: ".o_prepaid_dashboard canvas[style*='width']",
        },
        {
            content: "The largest consumer is listed",
            trigger: ".o_prepaid_top_consumers td:contains('Power T-101')",
        },
        {
            content: "Open the meters in arrears",
            trigger: ".o_prepaid_status_arrears",
            run: "click",
        },
        {
            content: "Their list opens",
            trigger: ".o_list_view .o_data_row td:contains('Power T-101')",
        },
    ],
});
