import json

from odoo import api, fields, models


class PrepaidMeterReadingRejection(models.Model):
    """X1: a reading that could not be stored, kept with its reason for an operator."""

    _name = "prepaid.meter.reading.rejection"
    _description = "Rejected Meter Reading"
    _order = "id desc"

    meter_id = fields.Many2one("prepaid.meter", index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", index=True, default=lambda self: self.env.company)
    address = fields.Char()
    source = fields.Char()
    reason = fields.Char(required=True)
    payload = fields.Text(help="The reading as it was received.")

    @api.model
    def _record(self, rejections, rows, source=None):
        meters = self.env["prepaid.meter"].sudo()
        vals_list = []
        for rejection in rejections:
            row = rows[rejection["index"]] if 0 <= rejection["index"] < len(rows) else {}
            meter = meters.browse(rejection.get("meter_id") or []).exists()
            vals_list.append(
                {
                    "meter_id": meter.id,
                    "company_id": meter.company_id.id or self.env.company.id,
                    "address": row.get("address") or meter.address,
                    "source": row.get("source") or source,
                    "reason": rejection["reason"],
                    "payload": json.dumps(row, default=str, sort_keys=True),
                }
            )
        return self.sudo().create(vals_list)
