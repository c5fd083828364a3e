from odoo import api, models


class PrepaidMeterReading(models.Model):
    """T3: a reading that arrives serves the meter's pending "read now" requests."""

    _inherit = "prepaid.meter.reading"

    @api.model
    def _after_ingest(self, meter_ids):
        res = super()._after_ingest(meter_ids)
        # few requests are pending at a time (partial index): look them up, not the batch
        pending = self.env["prepaid.meter.read.request"].sudo().search([("state", "=", "pending")])
        served = pending.filtered(lambda r: r.meter_id.id in meter_ids)
        if served:
            served._mark_served(note=self.env._("A new reading arrived."))
        return res
