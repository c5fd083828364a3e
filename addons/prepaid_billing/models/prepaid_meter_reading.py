from odoo import api, models
from odoo.orm.environments import Transaction

_ASKED = "prepaid_billing.deduction_asked_after_commit"


class PrepaidMeterReading(models.Model):
    """B8: readings feed the overload trip (power above the meter's limit); B3: new readings
    are charged as soon as they are stored (the deduction action is triggered at once, its
    schedule stays as a safety net).  Readings stored in bulk and by ``create`` alike reach
    :meth:`_after_ingest`."""

    _inherit = "prepaid.meter.reading"

    @api.model
    def _after_ingest(self, meter_ids):
        res = super()._after_ingest(meter_ids)
        meters = self.env["prepaid.meter"].browse(meter_ids)
        meters._check_overload()
        if meter_ids:
            # run by the scheduler after this transaction commits (one run charges every
            # batch stored meanwhile; the run holds its own lock, R11)
            # (every deduction worker: each charges the shards still free)
            crons = self.env["prepaid.account"]._deduction_crons()
            for cron in crons:
                if not self._deduction_pending(cron):
                    cron._trigger()
            # this transaction's snapshot may show a trigger that a run begun meanwhile has
            # taken: once committed, look again as things are then
            if crons and not self.env.cr.postcommit.data.get(_ASKED):
                self.env.cr.postcommit.data[_ASKED] = True
                self.env.cr.postcommit.add(self._ask_deduction_after_commit)
        return res

    @api.model
    def _ask_deduction_after_commit(self):
        """Trigger a deduction run unless one is asked for that has not begun: a run begun
        before this commit did not see the readings just stored."""
        registry = self.env.registry
        with registry.cursor() as cr:
            # this registry, not a look-up by name (which waits for the registries' lock)
            cr.transaction = Transaction(registry)
            env = api.Environment(cr, self.env.uid, self.env.context)
            for cron in env["prepaid.account"]._deduction_crons():
                if not env["prepaid.meter.reading"]._deduction_pending(cron):
                    cron._trigger()

    @api.model
    def _deduction_pending(self, cron):
        """A run is already asked for and has not begun (a busy gateway stores many batches
        a minute).  The trigger of a run going on does not count: Odoo removes it only when
        that run ends, and the run took its meters when it began."""
        domain = [("cron_id", "=", cron.id)]
        latest = self.env["ir.cron.progress"].sudo().search(domain, order="id desc", limit=1)
        if latest:  # the latest run's own triggers were asked for before it began
            domain.append(("call_at", ">", latest.create_date))
        return bool(self.env["ir.cron.trigger"].sudo().search_count(domain, limit=1))
