from datetime import timezone
from zoneinfo import ZoneInfo

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.base.models.res_partner import _tz_get
from odoo.addons.prepaid_meter.error_texts import error_text

from prepaid_core import tariff as engine

from ..const import CYCLES, UTILITIES

UTC = timezone.utc  # datetime.UTC is Python 3.11+

#: compiled tariffs, by (database, tariff id): (definition text, CompiledTariff)
_COMPILED = {}


class PrepaidTariff(models.Model):
    """B1: a tariff and its effective-dated versions, compiled into the engine's objects.

    A tariff is assigned to a prepaid account (all its meters) or to one meter (which then
    wins).  Changing it takes effect at once: the deduction run prices every reading not yet
    charged with the tariff (version) in force at its time; nothing charged is repriced."""

    _name = "prepaid.tariff"
    _description = "Tariff"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    utility = fields.Selection(UTILITIES, required=True, default="electricity", tracking=True)
    cycle_period = fields.Selection(
        CYCLES,
        string="Settlement Cycle",
        required=True,
        default="monthly",
        tracking=True,
        help="The ladder accumulates consumption over this cycle, then starts again at zero.",
    )
    billing_day = fields.Integer(
        default=1, required=True, tracking=True, help="Day of the month the cycle starts (1-28)."
    )
    billing_month = fields.Integer(
        default=1, required=True, help="Month an annual cycle starts (1-12)."
    )
    timezone = fields.Selection(
        _tz_get,
        required=True,
        default=lambda self: self.env.user.tz or "UTC",
        help="Time-of-use periods, cycles and version dates are wall-clock times of this zone.",
    )
    version_ids = fields.One2many("prepaid.tariff.version", "tariff_id", string="Versions")
    version_count = fields.Integer(compute="_compute_current_version")
    current_version_id = fields.Many2one(
        "prepaid.tariff.version", compute="_compute_current_version"
    )
    tariff_type = fields.Selection(
        [
            ("flat", "Flat"),
            ("ladder", "Ladder"),
            ("tou", "Time of Use"),
            ("ladder_tou", "Ladder × TOU"),
        ],
        compute="_compute_current_version",
    )

    @api.depends("version_ids.valid_from", "version_ids.tariff_type")
    def _compute_current_version(self):
        now = fields.Datetime.now()
        for tariff in self:
            versions = tariff.version_ids.sorted("valid_from")
            current = versions.filtered(lambda v: v.valid_from <= now)[-1:] or versions[:1]
            tariff.current_version_id = current
            tariff.version_count = len(versions)
            tariff.tariff_type = current.tariff_type

    @api.constrains("cycle_period", "billing_day", "billing_month", "timezone", "version_ids")
    def _check_engine(self):
        for tariff in self.filtered("version_ids"):
            tariff._engine_definition()

    # === ENGINE === #
    def _engine_definition(self):
        """The tariff as the engine's :class:`prepaid_core.tariff.Tariff` (validated)."""
        self.ensure_one()
        try:
            return engine.Tariff(
                name=self.name,
                versions=tuple(v._engine_version() for v in self.version_ids),
                utility=self.utility,
                cycle=engine.CycleRule(self.cycle_period, self.billing_day, self.billing_month),
                timezone=self.timezone or "UTC",
            )
        except engine.TariffError as exc:
            raise ValidationError(
                self.env._(
                    "Tariff %(tariff)s: %(error)s",
                    tariff=self.name,
                    error=error_text(self.env, exc),
                )
            ) from exc

    def _compiled(self):
        """The compiled engine tariff, cached while the definition stays the same."""
        self.ensure_one()
        definition = self._engine_definition()
        key = (self.env.cr.dbname, self.id)
        text = repr(definition)
        cached = _COMPILED.get(key)
        if cached is None or cached[0] != text:
            cached = _COMPILED[key] = (text, definition.compile())
        return cached[1]

    def _local(self, value):
        """A naive UTC datetime (as Odoo stores it) in the tariff's wall-clock time."""
        if not value or (self.timezone or "UTC") == "UTC":
            return value
        return value.replace(tzinfo=UTC).astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)

    def _touch_meters(self):
        """B1: the prices of these tariffs changed: mark the meters they price (their own
        tariff, or their account's) for a price issuance by meter_gateway."""
        if not self.ids:
            return
        meters = self.env["prepaid.meter"]
        meters.flush_model(["tariff_id", "unit_id"])
        self.env["prepaid.account"].flush_model(["tariff_id", "state"])
        self.env.cr.execute(
            """
            UPDATE prepaid_meter m SET device_settings_at = %(now)s
             WHERE m.state != 'removed'
               AND (m.tariff_id = ANY(%(ids)s)
                    OR (m.tariff_id IS NULL AND EXISTS (
                        SELECT 1 FROM prepaid_tenancy t
                          JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
                         WHERE t.unit_id = m.unit_id AND t.state = 'open'
                           AND a.tariff_id = ANY(%(ids)s))))
            """,
            {"now": fields.Datetime.now(), "ids": self.ids},
        )
        meters.invalidate_model(["device_settings_at"])

    def action_view_versions(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Versions"),
            "res_model": "prepaid.tariff.version",
            "view_mode": "list,form",
            "domain": [("tariff_id", "=", self.id)],
            "context": {"default_tariff_id": self.id},
        }
