from odoo import api, fields, models

from ..const import BANDS


class PrepaidTariffSegment(models.Model):
    """B1: a daily time-of-use period of a tariff version (up to 14 a day)."""

    _name = "prepaid.tariff.segment"
    _inherit = ["prepaid.tariff.part"]
    _description = "Tariff Time-of-Use Period"
    _order = "version_id, season_id, hour_from"

    version_id = fields.Many2one(
        "prepaid.tariff.version",
        required=True,
        index=True,
        ondelete="cascade",
        compute="_compute_version_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    hour_from = fields.Float(string="From", required=True, help="Hour of the day, e.g. 8.5.")
    hour_to = fields.Float(string="To", required=True, help="24 or 0 means midnight.")
    band = fields.Selection(BANDS, required=True, default="flat")
    season_id = fields.Many2one(
        "prepaid.tariff.season",
        ondelete="cascade",
        index="btree_not_null",
        help="Season of this period; empty: the season starting on 1 January.",
    )

    @api.depends("season_id")
    def _compute_version_id(self):
        for segment in self.filtered("season_id"):
            segment.version_id = segment.season_id.version_id

    @api.constrains("hour_from", "hour_to", "band", "season_id")
    def _check_engine(self):
        self.version_id._check_engine()

    def _part_tariffs(self):
        return self.version_id.tariff_id
