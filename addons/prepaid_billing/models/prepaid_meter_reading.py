from odoo import api, models


class PrepaidMeterReading(models.Model):
    """B8: readings feed the overload trip (power above the meter's limit)."""

    _inherit = "prepaid.meter.reading"

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        self._after_ingest(set(records.meter_id.ids))
        return records

    @api.model
    def _after_ingest(self, meter_ids):
        res = super()._after_ingest(meter_ids)
        self.env["prepaid.meter"].browse(meter_ids)._check_overload()
        return res
