from odoo import api, models


class PrepaidMeterReading(models.Model):
    """B8: readings feed the overload trip (power above the meter's limit); B3: new readings
    are charged as soon as they are stored (the deduction action is triggered at once, its
    schedule stays as a safety net).  Readings stored in bulk and by ``create`` alike reach
    :meth:`_after_ingest`."""

    _inherit = "prepaid.meter.reading"

    @api.model
    def _after_ingest(self, meter_ids):
        res = super()._after_ingest(meter_ids)
        meters = self.env["prepaid.meter"].browse(meter_ids)
        meters._check_overload()
        if meter_ids:
            # run by the scheduler after this transaction commits (one run charges every
            # batch stored meanwhile; the run holds its own lock, R11)
            # (every deduction worker: each charges the shards still free)
            for cron in self.env["prepaid.account"]._deduction_crons():
                if not self._deduction_pending(cron):
                    cron._trigger()
        return res

    @api.model
    def _deduction_pending(self, cron):
        """A run is already asked for (a busy gateway stores many batches a minute)."""
        return bool(
            self.env["ir.cron.trigger"].sudo().search_count([("cron_id", "=", cron.id)], limit=1)
        )
