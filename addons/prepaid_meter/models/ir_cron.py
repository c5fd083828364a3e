from odoo import api, models

#: the models whose scheduled actions are the suite's
SUITE_MODELS = ("prepaid.", "meter.gateway")


class IrCron(models.Model):
    """X4: the suite's scheduled actions write in the language of the user they run as
    (OdooBot unless changed): the chatter, tracked values and reasons they store read in the
    site's language, not in English (Odoo starts every scheduled action without one)."""

    _inherit = "ir.cron"

    def _callback(self, cron_name, server_action_id):
        cron = self
        lang = self.env.user.lang
        if lang and self.model_id.model.startswith(SUITE_MODELS):
            cron = self.with_context(lang=lang)
        return super(IrCron, cron)._callback(cron_name, server_action_id)

    @api.model
    def _copies_of(self, method):
        """The active scheduled actions calling ``model.<method>(...)``: Odoo runs a
        scheduled action in one cron worker at a time, so each copy of one is one more
        worker that may run it side by side (the method keeps them apart)."""
        domain = [("code", "=like", f"%model.{method}(%"), ("active", "=", True)]
        return self.sudo().search(domain)
