from odoo import models

from odoo.addons.prepaid_meter.utils import selection_label


class PrepaidMeter(models.Model):
    """B11: every change of a meter's alarm level is recorded as a meter event (code: the
    new level; reason: new and former level), whatever decided it: deduction, recharge,
    settings, reminder wake-up.  The alarm evaluation records them where it writes the
    levels (:meth:`_store_alarm_levels`)."""

    _inherit = "prepaid.meter"

    def _log_alarm_level_changes(self, levels):
        """Events for ``{(former, new level): meter ids}``: one batch per pair of levels (a
        deduction run may move thousands of meters)."""
        for (former, level), meter_ids in levels.items():
            self.browse(meter_ids).sudo()._log_event(
                "alarm_level",
                reason=self.env._(
                    "%(level)s (was %(before)s)",
                    level=selection_label(self, "alarm_level", level),
                    before=selection_label(self, "alarm_level", former),
                ),
                source="system",
                code=level,
            )
