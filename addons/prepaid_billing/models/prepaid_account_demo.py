from decimal import ROUND_UP, Decimal

from odoo import api, fields, models


class PrepaidAccount(models.Model):
    """Demo data of the accounts (loaded from ``demo/prepaid_billing_demo.xml`` only)."""

    _inherit = "prepaid.account"

    @api.model
    def _demo_open_accounts(
        self, tariff_ids, water_tariff_id, company_tariffs=None, stories=(), meter_tariffs=None
    ):
        """Demo data: an account with some credit for every open tenancy, tariffs of each
        kind in turn (water meters on the water tariff; ``company_tariffs``: ``{company id:
        (tariff ids, water tariff id)}`` for other landlords), then the demo readings
        charged.  ``stories``: ``[(meter address, credit, reminder minutes or None)]``: those
        accounts are left with that little credit once their history is charged (X3: the
        demo's first minutes show alarms and a cut on them). ``meter_tariffs``: ``{meter
        address: tariff id}``: the account of that meter is on that tariff."""
        tenancies = self.env["prepaid.tenancy"].search([("state", "=", "open")], order="id")
        accounts = tenancies._ensure_account() | tenancies.account_ids
        Meter = self.env["prepaid.meter"]
        story_accounts, own_tariffs = {}, {}
        for address, tariff in (meter_tariffs or {}).items():
            own_tariffs[Meter.search([("address", "=", address)], limit=1).account_id] = tariff
        for address, credit, reminder in stories:
            account = Meter.search([("address", "=", address)], limit=1).account_id
            if account:
                story_accounts[account] = (Decimal(credit), reminder)
        for index, account in enumerate(accounts.sorted("id")):
            tariffs, water = (company_tariffs or {}).get(
                account.company_id.id, (tariff_ids, water_tariff_id)
            )
            account.tariff_id = own_tariffs.get(account) or tariffs[index % len(tariffs)]
            account.meter_ids.filtered(lambda m: m.utility == "water").tariff_id = water
            if account in story_accounts:
                if story_accounts[account][1] is not None:
                    account.reminder_minutes = story_accounts[account][1]
            elif not account.line_ids:
                account._recharge(str(50 + 25 * (index % 8)), memo="Opening recharge")
        self._run_deductions()
        for account, (credit, _reminder) in story_accounts.items():
            cents = ((credit - Decimal(str(account.balance))) * 100).to_integral_value(ROUND_UP)
            if cents > 0:
                account._recharge(str(cents / 100), memo="Opening recharge")
        return accounts

    @api.model
    def _demo_meter_balance(self, addresses, cancelled=(), to_issue=()):
        """Demo data (B13): the meters at ``addresses`` keep their own balance from now on
        (their accounts on a flat tariff: :meth:`_demo_open_accounts`); the credit each
        account holds is what its meter holds, accepted as the meter's balance (what the
        demo's simulated meters start with). Then a desk recharge for each meter of
        ``cancelled`` (its token never sent: cancelled) and of ``to_issue`` (an STS meter
        before the company has an STS vending key: the credit waits, with the reason)."""
        meters = self.env["prepaid.meter"].search([("address", "in", list(addresses))])
        meters.write({"billing_mode": "meter"})
        for meter in meters:
            meter.sudo().write(
                {
                    "meter_balance_base": meter.account_id.balance,
                    "meter_balance_base_at": fields.Datetime.now(),
                    "meter_balance_base_charged": meter.billing_charged_amount,
                }
            )
        Credit = self.env["prepaid.meter.credit"]
        for meter in meters.filtered(lambda m: m.address in cancelled or m.address in to_issue):
            meter.account_id._recharge("20", memo="Desk recharge", meter=meter)
            credit = Credit.search([("meter_id", "=", meter.id)], order="id desc", limit=1)
            if meter.address in cancelled:
                credit._cancel(
                    self.env._("Cancelled at the desk before its token was sent: sold in error.")
                )
        return meters
