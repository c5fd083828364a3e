from datetime import time
from decimal import Decimal

from odoo import api, fields, models

from prepaid_core import tariff as engine


def _price(value):
    return Decimal(f"{value or 0.0:.6f}").normalize()


def _quantity(value):
    return Decimal(f"{value or 0.0:.4f}").normalize()


def _time_of_day(hours):
    seconds = round((hours or 0.0) * 3600)
    if seconds >= 86_400:
        return time(0)
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


class PrepaidTariffVersion(models.Model):
    """B1: the prices of a tariff from ``valid_from`` until the next version.

    Ladder steps carry one price per time-of-use band; without time-of-use the single band
    is *flat* at all hours."""

    _name = "prepaid.tariff.version"
    _inherit = ["prepaid.tariff.part"]
    _description = "Tariff Version"
    _order = "tariff_id, valid_from"

    tariff_id = fields.Many2one("prepaid.tariff", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="tariff_id.company_id", store=True)
    valid_from = fields.Datetime(required=True, default=fields.Datetime.now)
    code = fields.Char(help="Short name of the version, shown on deduction details.")
    use_tou = fields.Boolean(string="Time of Use", help="Prices depend on the time of day.")
    step_ids = fields.One2many("prepaid.tariff.step", "version_id", string="Ladder Steps")
    segment_ids = fields.One2many(
        "prepaid.tariff.segment", "version_id", string="Time-of-Use Periods"
    )
    season_ids = fields.One2many(
        "prepaid.tariff.season",
        "version_id",
        string="Seasons",
        help="Time-of-use periods that differ by season; periods without a season are those "
        "of the season starting on 1 January.",
    )
    tariff_type = fields.Selection(
        [
            ("flat", "Flat"),
            ("ladder", "Ladder"),
            ("tou", "Time of Use"),
            ("ladder_tou", "Ladder × TOU"),
        ],
        compute="_compute_tariff_type",
    )

    _tariff_from_uniq = models.Constraint(
        "unique(tariff_id, valid_from)", "Two versions of a tariff cannot start at the same time."
    )

    @api.depends("use_tou", "step_ids")
    def _compute_tariff_type(self):
        for version in self:
            ladder = len(version.step_ids) > 1
            if version.use_tou:
                version.tariff_type = "ladder_tou" if ladder else "tou"
            else:
                version.tariff_type = "ladder" if ladder else "flat"

    @api.depends("tariff_id", "valid_from", "code")
    def _compute_display_name(self):
        for version in self:
            version.display_name = f"{version.tariff_id.name} {version.code or version.valid_from}"

    @api.constrains("valid_from", "use_tou", "step_ids", "segment_ids", "season_ids")
    def _check_engine(self):
        self.tariff_id._check_engine()

    def _part_tariffs(self):
        return self.tariff_id

    def _engine_version(self):
        self.ensure_one()
        steps = self.step_ids.sorted("sequence")
        if self.use_tou:
            bands = [b for b in engine.BANDS if b in set(self.segment_ids.mapped("band"))]
            tou = self._engine_schedule()
        else:
            bands, tou = [engine.FLAT], None
        return engine.TariffVersion(
            valid_from=self.tariff_id._local(self.valid_from),
            prices={band: tuple(_price(step[f"price_{band}"]) for step in steps) for band in bands},
            step_limits=tuple(_quantity(step.limit_qty) for step in steps[:-1]),
            tou=tou,
            code=self.code or "",
        )

    def _engine_schedule(self):
        """The time-of-use schedule: one season a year, or the version's seasons (B1)."""
        self.ensure_one()

        def segments(periods):
            return tuple(
                engine.TouSegment(_time_of_day(s.hour_from), _time_of_day(s.hour_to), s.band)
                for s in periods.sorted("hour_from")
            )

        all_year = self.segment_ids.filtered(lambda s: not s.season_id)
        if not self.season_ids:
            return engine.TouSchedule.daily(segments(all_year))
        seasons = [
            engine.TouSeason(
                segments(season.segment_ids),
                start_month=season.start_month,
                start_day=season.start_day,
                name=season.name,
            )
            for season in self.season_ids
        ]
        if all_year:
            seasons.append(engine.TouSeason(segments(all_year), name=self.env._("From 1 January")))
        return engine.TouSchedule(tuple(seasons))
