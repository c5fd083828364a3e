from odoo import models
from odoo.tools import SQL

from ..const import ALARM_LEVELS

LEVEL_LABELS = dict(ALARM_LEVELS)


class PrepaidMeter(models.Model):
    """B11: every change of a meter's alarm level is recorded as a meter event (code: the
    new level; reason: new and former level), whatever decided it: deduction, recharge,
    settings, reminder wake-up."""

    _inherit = "prepaid.meter"

    def _alarm_levels(self, ids, siblings):
        self.env["prepaid.meter"].flush_model(["alarm_level", "unit_id"])
        self.env.cr.execute(
            SQL(
                "SELECT id, alarm_level FROM prepaid_meter WHERE %s",
                SQL("unit_id IN (SELECT unit_id FROM prepaid_meter WHERE id = ANY(%s))", ids)
                if siblings
                else SQL("id = ANY(%s)", ids),
            )
        )
        return dict(self.env.cr.fetchall())

    def _evaluate_alarms(self, *args, **kwargs):
        ids = [meter_id for meter_id in self.ids if meter_id]
        if not ids:
            return super()._evaluate_alarms(*args, **kwargs)
        siblings = kwargs.get("siblings", args[1] if len(args) > 1 else False)
        before = self._alarm_levels(ids, siblings)
        result = super()._evaluate_alarms(*args, **kwargs)
        after = self._alarm_levels(ids, siblings)
        # one batch of events per (former, new) level: a deduction run may move thousands
        transitions = {}
        for meter_id, level in after.items():
            if before.get(meter_id) != level:
                transitions.setdefault((before.get(meter_id), level), []).append(meter_id)
        for (former, level), meter_ids in transitions.items():
            self.browse(meter_ids).sudo()._log_event(
                "alarm_level",
                reason=self.env._(
                    "%(level)s (was %(before)s)",
                    level=LEVEL_LABELS.get(level, level),
                    before=LEVEL_LABELS.get(former, former),
                ),
                source="system",
                code=level,
            )
        return result
