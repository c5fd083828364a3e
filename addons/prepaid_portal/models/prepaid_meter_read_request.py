from odoo import fields, models


class PrepaidMeterReadRequest(models.Model):
    """T3: a tenant asked for a fresh reading of a meter.  meter_gateway (or any gateway
    runner) serves the pending ones and marks them done with :meth:`_mark_served`."""

    _name = "prepaid.meter.read.request"
    _description = "Meter Read Request"
    _order = "requested_at desc, id desc"

    meter_id = fields.Many2one(
        "prepaid.meter", required=True, index=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="meter_id.company_id", store=True, index=True)
    partner_id = fields.Many2one("res.partner", string="Requested By", readonly=True)
    requested_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    state = fields.Selection(
        [("pending", "Pending"), ("served", "Served"), ("failed", "Failed")],
        default="pending",
        required=True,
        index=True,
    )
    served_at = fields.Datetime(readonly=True)
    note = fields.Char(help="What the gateway answered.")

    _pending_idx = models.Index("(meter_id) WHERE state = 'pending'")

    def _mark_served(self, ok=True, note=None):
        self.write(
            {
                "state": "served" if ok else "failed",
                "served_at": fields.Datetime.now(),
                "note": note or False,
            }
        )
