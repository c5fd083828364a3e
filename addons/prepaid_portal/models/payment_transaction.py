from odoo import api, fields, models


class PaymentTransaction(models.Model):
    """T4: a transaction paying a portal recharge knows it from checkout (R5) and credits it
    in post-processing, after account_payment created the customer payment."""

    _inherit = "payment.transaction"

    prepaid_recharge_id = fields.Many2one(
        "prepaid.online.recharge", readonly=True, index="btree_not_null"
    )
    prepaid_meter_id = fields.Many2one(related="prepaid_recharge_id.meter_id")

    @api.model
    def _compute_reference_prefix(self, separator, **values):
        if values.get("prepaid_recharge_id"):
            recharge = (
                self.env["prepaid.online.recharge"].sudo().browse(values["prepaid_recharge_id"])
            )
            if recharge.exists():
                return f"PP-{recharge.account_id.name or recharge.account_id.id}"
        return super()._compute_reference_prefix(separator, **values)

    def _process(self, provider_code, payment_data):
        """A provider's notification is answered once processed, and the provider does not
        send it again: its transaction commits durably even where the server runs with
        ``synchronous_commit = off`` (X1)."""
        self.env.cr.execute("SET LOCAL synchronous_commit TO on")
        return super()._process(provider_code, payment_data)

    def _create_payment(self, **extra_create_values):
        """A wire transfer (``payment_custom``) the accountant confirmed arrived on the bank
        journal: account_payment finds no payment method line of that provider, so the
        payment is recorded as the journal's manual incoming payment."""
        if (
            self.provider_code == "custom"
            and self.prepaid_recharge_id
            and "payment_method_line_id" not in extra_create_values
        ):
            lines = self.provider_id.journal_id.inbound_payment_method_line_ids
            manual = lines.filtered(lambda line: line.code == "manual") or lines
            extra_create_values["payment_method_line_id"] = manual[:1].id
        return super()._create_payment(**extra_create_values)

    def _post_process(self):
        """Credit the recharges of done transactions (once); a credit that fails leaves the
        transaction not post-processed so that the scheduled action tries it again (R4).
        A canceled or failed payment cancels its pending recharge; anything arriving after
        ``done`` changes nothing (R2: payment's state machine refuses it)."""
        super()._post_process()
        self._prepaid_post_process_refunds()
        recharges = self.filtered("prepaid_recharge_id")
        if not recharges:
            return
        done = recharges.filtered(lambda tx: tx.state == "done")
        failed = done.prepaid_recharge_id.sudo()._credit()
        if failed:
            self.filtered(lambda tx: tx.prepaid_recharge_id in failed).is_post_processed = False
        recharges.filtered(
            lambda tx: tx.state in ("cancel", "error")
        ).prepaid_recharge_id.sudo()._set_canceled()

    def _prepaid_post_process_refunds(self):
        """A done provider refund of a portal recharge's payment debits the account once
        (see ``prepaid.online.recharge._debit``); a debit that fails is retried."""
        Recharge = self.env["prepaid.online.recharge"].sudo()
        for tx in self.filtered(
            lambda t: (
                t.operation == "refund"
                and t.state == "done"
                and t.source_transaction_id.prepaid_recharge_id
            )
        ):
            refund = Recharge._from_refund_transaction(tx)
            if refund._debit():
                tx.is_post_processed = False

    def _log_message_on_linked_documents(self, message):
        res = super()._log_message_on_linked_documents(message)
        for tx in self.filtered("prepaid_recharge_id"):
            tx.prepaid_recharge_id.sudo().message_post(body=message)
        return res
