from odoo import api, fields, models
from odoo.exceptions import ValidationError


class PrepaidTariffSeason(models.Model):
    """B1: a season of a tariff version: its own daily time-of-use periods, in force from
    its start day each year until the next season starts (the last season of the year runs
    on into January until the first one starts).  Periods without a season belong to the
    season that starts on 1 January."""

    _name = "prepaid.tariff.season"
    _inherit = ["prepaid.tariff.part"]
    _description = "Tariff Time-of-Use Season"
    _order = "version_id, start_month, start_day"

    version_id = fields.Many2one(
        "prepaid.tariff.version", required=True, index=True, ondelete="cascade"
    )
    name = fields.Char(required=True, help="e.g. Summer.")
    start_month = fields.Integer(required=True, default=1, help="Month the season starts (1-12).")
    start_day = fields.Integer(required=True, default=1, help="Day of the month it starts.")
    segment_ids = fields.One2many(
        "prepaid.tariff.segment", "season_id", string="Time-of-Use Periods"
    )

    _version_start_uniq = models.Constraint(
        "unique(version_id, start_month, start_day)",
        "Two seasons of a tariff version cannot start on the same day.",
    )

    @api.constrains("start_month", "start_day", "segment_ids")
    def _check_engine(self):
        for season in self:
            if season.segment_ids.version_id - season.version_id:
                raise ValidationError(
                    self.env._(
                        "The periods of season %(season)s belong to another tariff version.",
                        season=season.name,
                    )
                )
        self.version_id._check_engine()

    def _part_tariffs(self):
        return self.version_id.tariff_id
