from odoo import models


class PrepaidMeterReplace(models.TransientModel):
    """M4 + B2: a replacement charges the old meter up to its final reading, and the new
    meter takes over its tariff; the balance stays on the tenancy's account (or moves to the
    account of the new meter's tenancy, should that differ)."""

    _inherit = "prepaid.meter.replace"

    def _replace(self):
        old = self.old_meter_id
        old_account = old.account_id
        new = super()._replace()
        account = self.env["prepaid.account"]
        account._run_deductions(meter_ids=old.ids, manual=True)
        new.write({"tariff_id": old.tariff_id.id})
        new_account = new.account_id
        if old_account and new_account and new_account != old_account and old_account.balance > 0:
            old_account._transfer_to(
                new_account, f"{old_account.balance:.4f}", memo=self.reason or ""
            )
        return new
