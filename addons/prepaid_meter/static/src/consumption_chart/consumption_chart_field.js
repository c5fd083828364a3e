import { Component, onWillStart, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { getColor, hexToRGBA } from "@web/core/colors/colors";
import { cookie } from "@web/core/browser/cookie";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

const { DateTime } = luxon;

/**
 * M10: a meter's (or an account's) charged consumption by day or by month as bars, with
 * the prepaid balance at the end of each period as a line on its own axis. The data is the
 * record's JSON field: {uom, day: [{x, y}], month: [...], balance: {day, month}, currency}.
 */
export class ConsumptionChartField extends Component {
    static template = "prepaid_meter.ConsumptionChartField";
    static props = { ...standardFieldProps };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        this.state = useState({ period: "day" });
        onWillStart(() => loadBundle("web.chartjs_lib"));
        useEffect(
            () => {
                this.renderChart();
                return () => this.chart?.destroy();
            },
            () => [this.props.record.data[this.props.name], this.state.period]
        );
    }

    get data() {
        return this.props.record.data[this.props.name] || {};
    }

    get periods() {
        return [
            { key: "day", label: _t("Days") },
            { key: "month", label: _t("Months") },
        ];
    }

    get isEmpty() {
        return !(this.data[this.state.period] || []).some((point) => point.y);
    }

    label(iso) {
        const date = DateTime.fromISO(iso);
        return this.state.period === "day"
            ? date.toLocaleString({ month: "short", day: "numeric" })
            : date.toLocaleString({ month: "short", year: "numeric" });
    }

    renderChart() {
        this.chart?.destroy();
        const period = this.state.period;
        const points = this.data[period] || [];
        const scheme = cookie.get("color_scheme");
        const barColor = getColor(1, scheme, "odoo");
        const lineColor = getColor(3, scheme, "odoo");
        const datasets = [
            {
                type: "bar",
                label: _t("Consumption (%s)", this.data.uom || ""),
                data: points.map((point) => point.y),
                backgroundColor: hexToRGBA(barColor, 0.8),
                yAxisID: "y",
                order: 2,
            },
        ];
        const balance = (this.data.balance || {})[period];
        if (balance) {
            datasets.push({
                type: "line",
                label: _t("Balance (%s)", this.data.currency || ""),
                data: balance.map((point) => point.y),
                borderColor: lineColor,
                backgroundColor: lineColor,
                borderWidth: 2,
                pointRadius: 0,
                yAxisID: "y1",
                order: 1,
            });
        }
        this.chart = new Chart(this.canvasRef.el, {
            data: { labels: points.map((point) => this.label(point.x)), datasets },
            options: {
                maintainAspectRatio: false,
                interaction: { mode: "index", intersect: false },
                plugins: { legend: { position: "bottom" } },
                scales: {
                    y: { beginAtZero: true, position: "left" },
                    y1: { display: Boolean(balance), position: "right", grid: { drawOnChartArea: false } },
                },
            },
        });
    }
}

export const consumptionChartField = {
    component: ConsumptionChartField,
    supportedTypes: ["json"],
};

registry.category("fields").add("prepaid_consumption_chart", consumptionChartField);
