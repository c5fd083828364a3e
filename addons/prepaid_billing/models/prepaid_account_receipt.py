from datetime import datetime, time

from odoo import models


class PrepaidAccount(models.Model):
    """B10: what the account opening receipt shows."""

    _inherit = "prepaid.account"

    def _opening_readings(self):
        """{meter id: first reading total since the tenancy began} (None: not read yet)."""
        self.ensure_one()
        since = datetime.combine(self.tenancy_id.date_start, time.min)
        readings = self.env["prepaid.meter.reading"].sudo()
        result = {}
        for meter in self.meter_ids:
            first = readings.search(
                [("meter_id", "=", meter.id), ("read_at", ">=", since)], order="read_at", limit=1
            )
            result[meter.id] = first.total if first else None
        return result
