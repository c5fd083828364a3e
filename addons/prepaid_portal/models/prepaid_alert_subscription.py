from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_amount

from ..const import ALERT_CHANNELS


class PrepaidAlertSubscription(models.Model):
    """T6: a tenant's own low-balance alert on a prepaid account: below ``threshold`` they
    are told once by the channel they chose, and again only after the credit went back
    above it (a recharge)."""

    _name = "prepaid.alert.subscription"
    _description = "Low-Balance Alert Subscription"
    _order = "account_id, threshold desc"
    _check_company_auto = True

    account_id = fields.Many2one(
        "prepaid.account", required=True, index=True, ondelete="cascade", check_company=True
    )
    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade", string="Tenant"
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="account_id.currency_id")
    threshold = fields.Monetary(required=True, help="Alert when the credit falls below this.")
    channel = fields.Selection(ALERT_CHANNELS, required=True, default="email")
    active = fields.Boolean(default=True)
    notified = fields.Boolean(
        readonly=True, help="Alerted since the credit fell below the threshold."
    )
    last_notified_at = fields.Datetime(readonly=True)

    _account_partner_uniq = models.Constraint(
        "unique(account_id, partner_id)", "One alert subscription per tenant and account."
    )

    @api.constrains("threshold")
    def _check_threshold(self):
        for subscription in self:
            if subscription.threshold <= 0:
                raise ValidationError(self.env._("The alert threshold must be above zero."))

    def write(self, vals):
        if "threshold" in vals:
            vals = {**vals, "notified": False}
        return super().write(vals)

    def _check_and_notify(self):
        """Alert the subscriptions whose account's credit is below their threshold (once),
        re-arm those above it.  Return the subscriptions alerted."""
        alerted = self.browse()
        for subscription in self.filtered("active"):
            account = subscription.account_id
            credit = account.available_credit
            if credit >= subscription.threshold:
                if subscription.notified:
                    subscription.notified = False
                continue
            if subscription.notified:
                continue
            # worded in the subscriber's language (X4)
            partner = subscription.partner_id
            env = self.with_context(lang=partner.lang or self.env.lang).env
            text = env._(
                "Your prepaid credit on account %(account)s is %(credit)s, below your alert "
                "threshold of %(threshold)s.",
                account=account.name,
                credit=format_amount(env, credit, account.currency_id),
                threshold=format_amount(env, subscription.threshold, account.currency_id),
            )
            account._send_to_partner(partner, text, subscription.channel)
            subscription.write({"notified": True, "last_notified_at": fields.Datetime.now()})
            alerted |= subscription
        return alerted
