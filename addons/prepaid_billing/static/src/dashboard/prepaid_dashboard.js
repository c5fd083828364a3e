import { Component, onMounted, onWillStart, onWillUnmount, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { getColor } from "@web/core/colors/colors";
import { cookie } from "@web/core/browser/cookie";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";

const { DateTime } = luxon;

/**
 * M10: the managers' dashboard. One read-only call (prepaid.dashboard.get_dashboard_data)
 * gives the figures of the active company; each card opens the records behind it.
 */
export class PrepaidDashboard extends Component {
    static template = "prepaid_billing.PrepaidDashboard";
    static components = { Layout };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({ data: null });
        this.energyRef = useRef("energy");
        this.channelsRef = useRef("channels");
        this.charts = [];
        onWillStart(async () => {
            await loadBundle("web.chartjs_lib");
            this.state.data = await this.orm.call("prepaid.dashboard", "get_dashboard_data", []);
        });
        onMounted(() => this.renderCharts());
        onWillUnmount(() => this.charts.forEach((chart) => chart.destroy()));
    }

    get data() {
        return this.state.data;
    }

    energyText(totals) {
        const parts = [];
        if (totals.electricity !== undefined) {
            parts.push(`${this.number(totals.electricity)} kWh`);
        }
        if (totals.water !== undefined) {
            parts.push(`${this.number(totals.water)} m³`);
        }
        return parts.join(" · ") || "0 kWh";
    }

    number(value) {
        return (value || 0).toLocaleString(undefined, { maximumFractionDigits: 1 });
    }

    renderCharts() {
        const scheme = cookie.get("color_scheme");
        const energy = this.data.energy.by_day;
        this.charts.push(
            new Chart(this.energyRef.el, {
                type: "bar",
                data: {
                    labels: energy.map((point) =>
                        DateTime.fromISO(point.x).toLocaleString({ month: "short", day: "numeric" })
                    ),
                    datasets: [
                        {
                            label: _t("Electricity (kWh)"),
                            data: energy.map((point) => point.y),
                            backgroundColor: getColor(1, scheme, "odoo"),
                        },
                    ],
                },
                options: { maintainAspectRatio: false, plugins: { legend: { display: false } } },
            })
        );
        const channels = this.data.channels;
        this.charts.push(
            new Chart(this.channelsRef.el, {
                type: "doughnut",
                data: {
                    labels: channels.map((channel) => channel.label),
                    datasets: [
                        {
                            data: channels.map((channel) => channel.amount),
                            backgroundColor: channels.map((_c, i) => getColor(i + 1, scheme, "odoo")),
                        },
                    ],
                },
                options: { maintainAspectRatio: false, plugins: { legend: { position: "right" } } },
            })
        );
    }

    open(resModel, name, domain, context = {}) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: resModel,
            name,
            domain,
            context,
            views: [
                [false, "list"],
                [false, "form"],
            ],
        });
    }

    openMeters(status) {
        this.open("prepaid.meter", status.label, [["status", "=", status.status]]);
    }

    openLostMeters() {
        this.open("prepaid.meter", _t("Lost Connection"), [
            ["connection_state", "=", "lost"],
            ["state", "=", "in_service"],
        ]);
    }

    openLostGateways() {
        this.open("prepaid.gateway", _t("Gateways Lost"), [["connection_state", "=", "lost"]]);
    }

    openArrears() {
        this.open("prepaid.account", _t("Accounts in Arrears"), [
            ["state", "=", "open"],
            ["billing_type", "=", "prepaid"],
            ["balance", "<", 0],
        ]);
    }

    openSales(first) {
        this.open("prepaid.account.line", _t("Recharges and Refunds"), [
            ["kind", "in", ["recharge", "refund"]],
            ["date", ">=", first],
        ]);
    }

    openMeter(meterId) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "prepaid.meter",
            res_id: meterId,
            views: [[false, "form"]],
        });
    }
}

registry.category("actions").add("prepaid_dashboard", PrepaidDashboard);
