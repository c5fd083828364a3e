import { registry } from "@web/core/registry";

/** M5/M8: a manager opens Readings on the review queue, selects the flagged readings and
 * marks them reviewed; the queue is then empty. */
registry.category("web_tour.tours").add("prepaid_meter_review_queue", {
    steps: () => [
        {
            content: "The menu opens on the readings to review",
            trigger: ".o_searchview .o_facet_value:contains('To Review')",
        },
        {
            content: "A rollback is listed with its flag, the meter's first reading is not",
            trigger: ".o_list_view .o_data_row td[name='flags']:contains('rollback')",
        },
        {
            content: "Select every reading of the queue",
            trigger: ".o_list_view thead .o_list_record_selector input",
            run: "click",
        },
        {
            content: "Mark them reviewed",
            trigger: ".o_control_panel button[name='action_mark_reviewed']",
            run: "click",
        },
        {
            content: "The queue is empty",
            trigger: ".o_view_nocontent:contains('No readings to review')",
        },
    ],
});
