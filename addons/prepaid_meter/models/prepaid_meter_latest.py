from odoo import api, fields, models

from prepaid_core.reading_batch.rows import relay_mismatch

from ..const import ACTUAL_RELAY_STATES


class PrepaidMeterLatest(models.Model):
    """M3/M5: what a meter last reported: its newest reading, baseline, contact and relay.

    Every reading of every meter rewrites this state (100,000 meters every 30 minutes), so it
    lives in its own narrow table: the bulk path (:meth:`prepaid.meter.reading._update_meters`)
    rewrites small rows, in place (HOT), instead of the meter's wide one.  ``prepaid.meter``
    delegates to it (``_inherits``): ``meter.last_total``, domains, group-bys and views work on
    the meter as if the fields were its own.  One record per meter, created with it.
    """

    _name = "prepaid.meter.latest"
    _description = "Meter Latest State"
    _log_access = False
    _rec_name = "id"

    meter_ids = fields.One2many("prepaid.meter", "latest_id", string="Meters")
    meter_id = fields.Many2one(
        "prepaid.meter",
        compute="_compute_meter_id",
        store=True,
        help="The meter this state is of: the bulk path updates the states of a batch's meters "
        "by this key, without joining the meters' wide table.",
    )

    # === NEWEST READING === #
    last_reading_at = fields.Datetime(readonly=True, copy=False, help="Newest reading.")
    last_total = fields.Float(
        digits=(16, 4), readonly=True, copy=False, help="Primary-side total of the newest reading."
    )
    baseline_total = fields.Float(
        digits=(16, 4),
        readonly=True,
        copy=False,
        help="Total of the latest accepted reading: the next reading is judged against it. "
        "A flagged reading (rollback, spike) does not move it.",
    )
    baseline_at = fields.Datetime(readonly=True, copy=False)
    last_forward_total = fields.Float(digits=(16, 4), readonly=True, copy=False)
    last_reverse_total = fields.Float(digits=(16, 4), readonly=True, copy=False)
    last_power = fields.Float(
        digits=(16, 4),
        readonly=True,
        copy=False,
        string="Last Power (kW)",
        help="Primary-side power of the newest reading (the meter's × CT ratio × PT ratio).",
    )
    last_meter_balance = fields.Float(
        digits=(16, 4), readonly=True, copy=False, help="Balance the meter itself reported."
    )

    # === CONTACT AND RELAY, AS THE DEVICE REPORTS THEM === #
    last_contact_at = fields.Datetime(readonly=True, copy=False)
    connection_state = fields.Selection(
        [("never", "Never Seen"), ("online", "Online"), ("lost", "Lost Connection")],
        default="never",
        required=True,
        readonly=True,
        copy=False,
    )
    actual_relay_state = fields.Selection(
        ACTUAL_RELAY_STATES, default="unknown", required=True, copy=False
    )
    actual_relay_at = fields.Datetime(copy=False, readonly=True)
    relay_mismatch = fields.Boolean(
        compute="_compute_relay_mismatch",
        store=True,
        help="The device's relay does not (yet) match what was asked of it.",
    )

    _meter_unique = models.Constraint("UNIQUE(meter_id)", "A meter has one latest state.")

    def init(self):
        # every reading rewrites these rows: room in each page keeps the updates HOT
        self.env.cr.execute(f"ALTER TABLE {self._table} SET (fillfactor = 50)")

    @api.depends("meter_ids")
    def _compute_meter_id(self):
        for latest in self:
            latest.meter_id = latest.meter_ids[:1]

    @api.depends(
        "actual_relay_state",
        "meter_ids.desired_relay_state",
        "meter_ids.state",
        "meter_ids.model_id.has_relay",
    )
    def _compute_relay_mismatch(self):
        for latest in self:
            meter = latest.meter_ids[:1]
            latest.relay_mismatch = bool(meter) and relay_mismatch(
                meter.state,
                meter.model_id.has_relay,
                meter.desired_relay_state,
                latest.actual_relay_state,
            )
