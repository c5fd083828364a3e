import { registry } from "@web/core/registry";

/** T1 + T4: a QR code opens the meter page, the tenant recharges 20 with the demo provider
 * and sees the new balance and the receipt link. */
registry.category("web_tour.tours").add("prepaid_portal_qr_recharge", {
    steps: () => [
        {
            content: "The QR landing shows the meter's credit",
            trigger: ".o_prepaid_balance:contains('30.00')",
        },
        {
            content: "Choose the preset amount 20",
            trigger: "button.o_prepaid_preset:contains('20.00')",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Odoo's payment form for 20",
            trigger: ".o_prepaid_recharge_amount:contains('20.00')",
        },
        {
            content: "The tenant's saved card is not offered, nor saving this one",
            trigger: "#o_payment_form:not(:has(input[data-payment-option-type='token'])):not(:has([name='o_payment_tokenize_checkbox']))",
        },
        {
            content: "Enter the demo card number",
            trigger: "input[name='customer_input']",
            run: "edit 4242424242424242",
        },
        {
            content: "Pay",
            trigger: "button[name='o_payment_submit_button']",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Back on the meter page, credited once",
            trigger: ".o_prepaid_balance:contains('50.00')",
        },
        {
            content: "The recharge is credited, with its receipt",
            trigger: ".o_prepaid_recharge_row:contains('Credited') .o_prepaid_receipt_link",
        },
    ],
});

/** T3 + T5: a logged-in tenant goes from the portal home to their meter and its history. */
registry.category("web_tour.tours").add("prepaid_portal_my_meters_history", {
    steps: () => [
        {
            content: "The portal home offers My Meters",
            trigger: "a[title='My Meters']",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Open the first meter",
            trigger: ".o_prepaid_meter_list a:contains('Power P-1')",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Its page shows the last reading",
            trigger: ".o_prepaid_last_reading:contains('kWh')",
        },
        {
            content: "Open the history",
            trigger: "a.o_prepaid_history_link",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Monthly consumption bars",
            trigger: ".o_prepaid_chart .o_prepaid_bar[title^='Feb 2026']",
        },
        {
            content: "Payments are listed",
            trigger: ".o_prepaid_payments li:contains('Recharge')",
        },
        {
            content: "Switch to years",
            trigger: "a.o_prepaid_period_year",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "Yearly consumption bars",
            trigger: ".o_prepaid_chart .o_prepaid_bar_label:contains('2025')",
        },
    ],
});

/** T2 + T3 on a phone-sized screen: log in with the phone number, open the meter, ask for
 * a reading; nothing is wider than the screen. */
function checkNoSidewaysScroll() {
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width + 1) {
        throw new Error(`The page is wider (${document.documentElement.scrollWidth}px) than the phone (${width}px)`);
    }
}

registry.category("web_tour.tours").add("prepaid_portal_phone", {
    steps: () => [
        {
            content: "Phone number as typed",
            trigger: "form.o_prepaid_phone_login input[name='phone']",
            run: "edit +1 555 0201",
        },
        {
            content: "Password",
            trigger: "form.o_prepaid_phone_login input[name='password']",
            run: "edit tenant_a_pw",
        },
        {
            content: "Log in",
            trigger: "form.o_prepaid_phone_login button[type='submit']",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "My meters, as cards",
            trigger: ".o_prepaid_meter_list a:contains('Power P-2')",
            run() {
                checkNoSidewaysScroll();
                this.anchor.click();
            },
            expectUnloadPage: true,
        },
        {
            content: "The meter page fits the phone",
            trigger: ".o_prepaid_balance",
            run: checkNoSidewaysScroll,
        },
        {
            content: "Read now",
            trigger: "button.o_prepaid_read_now",
            run: "click",
            expectUnloadPage: true,
        },
        {
            content: "The reading is requested",
            trigger: ".o_prepaid_read_requested",
            run: checkNoSidewaysScroll,
        },
    ],
});
