from odoo import api, models


class PrepaidTariffPart(models.AbstractModel):
    """A part of a tariff (version, ladder step, time-of-use period, season): creating or
    changing it changes the prices that meters pricing locally must hold (B1)."""

    _name = "prepaid.tariff.part"
    _description = "Part of a Tariff"

    def _part_tariffs(self):
        raise NotImplementedError

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._part_tariffs()._touch_meters()
        return records

    def write(self, vals):
        res = super().write(vals)
        self._part_tariffs()._touch_meters()
        return res
