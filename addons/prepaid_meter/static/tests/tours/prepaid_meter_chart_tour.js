import { registry } from "@web/core/registry";

/** M10: a manager opens a meter's form: the Consumption tab draws its chart by day, and
 * by month on a click. */
registry.category("web_tour.tours").add("prepaid_meter_consumption_chart", {
    steps: () => [
        {
            content: "The Consumption tab is the meter form's first tab",
            trigger: ".o_notebook .nav-link:contains('Consumption')",
            run: "click",
        },
        {
            content: "The chart is drawn by day",
            trigger: ".o_prepaid_consumption_chart .o_prepaid_chart_day.btn-primary",
        },
        {
            content: "Chart.js drew it on the canvas",
            trigger: ".o_prepaid_consumption_chart canvas[style*='width']",
        },
        {
            content: "Switch to months",
            trigger: ".o_prepaid_consumption_chart .o_prepaid_chart_month",
            run: "click",
        },
        {
            content: "The chart is drawn by month",
            trigger: ".o_prepaid_consumption_chart .o_prepaid_chart_month.btn-primary",
        },
    ],
});
