"""T4: a refund the payment provider makes of an online recharge debits the prepaid ledger
once, or debits nothing and leaves a conflict for an operator when the credit was used."""

from decimal import Decimal

from odoo.tests import TransactionCase, tagged

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestProviderRefund(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()
        cls.Recharge = cls.env["prepaid.online.recharge"]

    def _paid(self, amount):
        recharge, tx = self._checkout(self.meter_a1, amount)
        self._notify(tx)
        self.assertEqual(recharge.state, "credited")
        return recharge, tx

    def _provider_refund(self, tx, amount):
        """What a manager's Refund button does on the payment: the demo provider refunds at
        once (a done ``refund`` child transaction), then it is post-processed."""
        before = tx.child_transaction_ids
        tx.action_refund(amount_to_refund=amount)
        refund_tx = tx.child_transaction_ids - before
        self.assertEqual(refund_tx.operation, "refund")
        self.assertEqual(refund_tx.state, "done")
        refund_tx._post_process()
        return refund_tx

    def _refund_lines(self, account):
        return self.env["prepaid.account.line"].search(
            [("account_id", "=", account.id), ("kind", "=", "refund")]
        )

    def _refund_record(self, refund_tx):
        return self.Recharge.search([("transaction_id", "=", refund_tx.id)])

    def _assert_ledger_whole(self, account):
        self.assertFalse(account._audit_balance(), "the balance is the sum of the ledger")
        lines = self.env["prepaid.account.line"].search([("account_id", "=", account.id)])
        total = sum((Decimal(f"{line.amount:.4f}") for line in lines), Decimal(0))
        self.assertEqual(self._balance(account), total)

    def test_refund_debits_once(self):
        recharge, tx = self._paid(50.0)
        refund_tx = self._provider_refund(tx, 20.0)
        # the provider notifies again, every post-processing path runs again
        Tx = self.env["payment.transaction"].sudo()
        for _i in range(3):
            Tx._process("demo", {"reference": refund_tx.reference, "simulated_state": "done"})
            refund_tx._post_process()
            tx._post_process()
            self.Recharge._cron_retry_failed()
        line = self._refund_lines(self.account_a1)
        self.assertEqual(len(line), 1)
        self.assertEqual(line.amount, -20.0)
        self.assertEqual(line.reference, refund_tx.reference)
        self.assertEqual(self._balance(self.account_a1), Decimal("30.0000"))
        refund = self._refund_record(refund_tx)
        self.assertEqual(len(refund), 1)
        self.assertEqual((refund.kind, refund.state, refund.amount), ("refund", "debited", 20.0))
        self.assertEqual(refund.refunded_recharge_id, recharge)
        self.assertEqual(refund.line_ids, line)
        self.assertTrue(refund_tx.payment_id, "account_payment recorded the money paid back")
        self.assertEqual(refund_tx.payment_id.payment_type, "outbound")
        self.assertEqual(line.payment_id, refund_tx.payment_id)
        self.assertEqual(recharge.state, "credited", "the recharge itself is not touched")
        self._assert_ledger_whole(self.account_a1)

    def test_two_partial_refunds(self):
        _recharge, tx = self._paid(50.0)
        first = self._provider_refund(tx, 10.0)
        second = self._provider_refund(tx, 15.0)
        first._post_process()
        self.assertEqual(len(self._refund_lines(self.account_a1)), 2)
        self.assertEqual(self._balance(self.account_a1), Decimal("25.0000"))
        self.assertEqual(self._refund_record(second).state, "debited")
        self._assert_ledger_whole(self.account_a1)

    def test_refund_of_used_credit_is_a_conflict(self):
        """The tenant used the credit (here: 40 of 50 paid back at the desk): the provider
        refund of 20 debits nothing; it waits in conflict, with an activity, until an
        operator settles it; once the balance covers it, Debit Now debits it once."""
        _recharge, tx = self._paid(50.0)
        self.account_a1.sudo()._refund("40", memo="desk")
        refund_tx = self._provider_refund(tx, 20.0)
        refund_tx._post_process()
        refund = self._refund_record(refund_tx)
        self.assertEqual(refund.state, "conflict")
        self.assertIn("credit was used", refund.problem)
        self.assertTrue(refund.activity_ids)
        self.assertEqual(self._balance(self.account_a1), Decimal("10.0000"))
        self.assertFalse(self._refund_lines(self.account_a1).filtered("reference"))
        self._assert_ledger_whole(self.account_a1)
        # still not enough: stays in conflict
        refund.action_retry_debit()
        self.assertEqual(refund.state, "conflict")
        self.assertEqual(self._balance(self.account_a1), Decimal("10.0000"))
        # the tenant recharges; the operator debits it now
        self.account_a1.sudo()._recharge("15", memo="desk")
        refund.action_retry_debit()
        refund.action_retry_debit()
        self.assertEqual(refund.state, "debited")
        self.assertEqual(self._balance(self.account_a1), Decimal("5.0000"))
        self.assertEqual(len(self._refund_lines(self.account_a1).filtered("reference")), 1)
        self.assertFalse(refund.activity_ids)
        self._assert_ledger_whole(self.account_a1)

    def test_refund_of_uncredited_recharge_is_a_conflict(self):
        recharge, tx = self._checkout(self.meter_a1, 50.0)
        tx.amount = 5.0  # credited nothing: conflict (R3)
        self._notify(tx)
        self.assertEqual(recharge.state, "conflict")
        refund_tx = self._provider_refund(tx, 5.0)
        refund = self._refund_record(refund_tx)
        self.assertEqual(refund.state, "conflict")
        self.assertIn("never credited", refund.problem)
        self.assertFalse(self.account_a1.line_ids)
        self._assert_ledger_whole(self.account_a1)
