"""T4: a portal recharge is credited exactly once whatever the provider sends (R1-R5)."""

from decimal import Decimal
from unittest.mock import patch

from psycopg2 import IntegrityError

from odoo.tests import TransactionCase, tagged

from odoo.addons.prepaid_billing.models.prepaid_account import PrepaidAccount

from .common import PrepaidPortalMixin


@tagged("post_install", "-at_install")
class TestOnlineRecharge(PrepaidPortalMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_portal()

    def test_checkout_to_credit(self):
        """A done payment credits the account of the meter chosen at checkout, linked to
        the customer payment account_payment created."""
        recharge, tx = self._checkout(self.meter_a1, 50.0)
        self.assertTrue(tx.reference.startswith("PP-"))
        self.assertEqual(recharge.state, "pending")
        self._notify(tx)
        self.assertEqual(tx.state, "done")
        self.assertTrue(tx.is_post_processed)
        self.assertEqual(recharge.state, "credited")
        self.assertEqual(self._balance(self.account_a1), Decimal("50.0000"))
        line = self._recharge_lines(self.account_a1)
        self.assertEqual(len(line), 1)
        self.assertEqual(line.reference, tx.reference)
        self.assertEqual(line.payment_method, "online")
        self.assertTrue(tx.payment_id, "account_payment created the customer payment")
        self.assertEqual(line.payment_id, tx.payment_id)
        self.assertEqual(recharge.line_ids, line)
        self.assertFalse(self.account_a1._audit_balance())

    def test_notification_commits_durably(self):
        """X1: a provider's notification is answered once processed and not sent again:
        its transaction asks for a durable commit even where the server runs without."""
        _recharge, tx = self._checkout(self.meter_a1, 10.0)
        self.env.cr.execute("SET synchronous_commit TO off")
        self._notify(tx)
        self.env.cr.execute("SHOW synchronous_commit")
        self.assertEqual(self.env.cr.fetchone()[0], "on")

    def test_r1_same_notification_five_times(self):
        """R1: the same 'done' notification five times gives one ledger line."""
        recharge, tx = self._checkout(self.meter_a1, 20.0)
        for _i in range(5):
            self._notify(tx)
            # the status poll, the webhook and the scheduled actions each post-process
            tx._post_process()
            self.env["prepaid.online.recharge"]._cron_retry_failed()
        self.assertEqual(len(self._recharge_lines(self.account_a1)), 1)
        self.assertEqual(self._balance(self.account_a1), Decimal("20.0000"))
        self.assertEqual(recharge.state, "credited")

    def test_r1_unique_reference_in_database(self):
        """R1: the database itself refuses a second ledger line for one payment reference,
        even past the checks (a unique index, not only a search)."""
        _recharge, tx = self._checkout(self.meter_a1, 20.0)
        self._notify(tx)
        line = self._recharge_lines(self.account_a1)
        with self.assertRaises(IntegrityError), self.cr.savepoint():
            self.env["prepaid.account.line"].sudo().with_context(prepaid_ledger_post=True).create(
                {
                    "account_id": self.account_a1.id,
                    "kind": "recharge",
                    "amount": 20.0,
                    "reference": line.reference,
                }
            )

    def test_r2_late_cancel_after_done(self):
        """R2: a cancel or error notification arriving after 'done' changes neither the
        payment's state nor the balance."""
        recharge, tx = self._checkout(self.meter_a1, 30.0)
        self._notify(tx)
        payment = tx.payment_id
        for late in ("cancel", "error", "pending"):
            self._notify(tx, late)
            self.assertEqual(tx.state, "done", late)
        self.assertEqual(recharge.state, "credited")
        self.assertEqual(self._balance(self.account_a1), Decimal("30.0000"))
        self.assertEqual(len(self.account_a1.line_ids), 1)
        self.assertNotEqual(payment.state, "canceled")

    def test_canceled_payment_credits_nothing(self):
        recharge, tx = self._checkout(self.meter_a1, 30.0)
        self._notify(tx, "cancel")
        self.assertEqual(recharge.state, "canceled")
        self.assertEqual(self._balance(self.account_a1), Decimal("0.0000"))
        # and a 'done' arriving after a cancel is refused by payment's state machine
        self._notify(tx, "done")
        self.assertEqual(tx.state, "cancel")
        self.assertFalse(self.account_a1.line_ids)

    def test_r3_amount_mismatch(self):
        """R3: a payment whose amount is not the recharge's credits nothing and stays as a
        conflict (with an activity) for an operator."""
        recharge, tx = self._checkout(self.meter_a1, 50.0)
        tx.amount = 5.0  # the provider confirmed another amount than the one checked out
        self._notify(tx)
        self.assertEqual(recharge.state, "conflict")
        self.assertIn("Amount mismatch", recharge.problem)
        self.assertTrue(recharge.activity_ids)
        self.assertFalse(self.account_a1.line_ids)
        self.assertEqual(self._balance(self.account_a1), Decimal("0.0000"))
        self._notify(tx)  # and stays so
        self.assertFalse(self.account_a1.line_ids)

    def test_r3_currency_mismatch(self):
        recharge, tx = self._checkout(self.meter_a1, 50.0)
        other = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("id", "!=", self.currency.id)], limit=1)
        )
        other.active = True
        tx.currency_id = other
        self._notify(tx)
        self.assertEqual(recharge.state, "conflict")
        self.assertIn("Currency mismatch", recharge.problem)
        self.assertFalse(self.account_a1.line_ids)

    def test_r3_reference_mismatch(self):
        recharge, tx = self._checkout(self.meter_a1, 50.0)
        recharge.name = "PP-SOMETHING-ELSE"
        self._notify(tx)
        self.assertEqual(recharge.state, "conflict")
        self.assertIn("Reference mismatch", recharge.problem)
        self.assertFalse(self.account_a1.line_ids)

    def test_r3_unknown_reference(self):
        """A notification for a reference nobody checked out finds nothing, credits
        nothing."""
        Tx = self.env["payment.transaction"].sudo()
        tx = Tx._process("demo", {"reference": "PP-NOPE", "simulated_state": "done"})
        self.assertFalse(tx)
        self.assertFalse(self.env["prepaid.account.line"].search([("reference", "=", "PP-NOPE")]))

    def test_r4_credit_raises_then_retried(self):
        """R4: crediting raises: the payment stays done but not post-processed, the recharge
        shows the problem; a later run credits it once."""
        recharge, tx = self._checkout(self.meter_a1, 40.0)
        with patch.object(PrepaidAccount, "_recharge", side_effect=RuntimeError("ledger down")):
            self._notify(tx)
        self.assertEqual(tx.state, "done")
        self.assertFalse(tx.is_post_processed, "visible as not processed")
        self.assertEqual(recharge.state, "failed")
        self.assertIn("ledger down", recharge.problem)
        self.assertEqual(recharge.attempt_count, 1)
        self.assertFalse(self.account_a1.line_ids)
        self.assertTrue(tx.payment_id, "the money is recorded even if not credited yet")
        # Odoo's post-processing action picks it up again (it takes the transactions not
        # post-processed yet); so does ours, for recharges older than its four days
        Tx = self.env["payment.transaction"].sudo()
        self.assertIn(tx, Tx.search([("is_post_processed", "=", False)]))
        self.env["prepaid.online.recharge"]._cron_retry_failed()
        self.assertTrue(tx.is_post_processed)
        self.assertEqual(recharge.state, "credited")
        self.assertEqual(self._balance(self.account_a1), Decimal("40.0000"))
        # and again changes nothing
        self.env["prepaid.online.recharge"]._cron_retry_failed()
        tx._post_process()
        self.assertEqual(len(self._recharge_lines(self.account_a1)), 1)
        self.assertEqual(len(tx.payment_id), 1)

    def test_r5_tenant_with_two_meters(self):
        """R5: tenant A has two meters on two accounts: each recharge credits the account of
        the meter chosen at checkout, whatever the order the payments arrive in."""
        r1, tx1 = self._checkout(self.meter_a1, 10.0)
        r2, tx2 = self._checkout(self.meter_a2, 25.0)
        self.assertNotEqual(tx1.reference, tx2.reference)
        self._notify(tx2)
        self._notify(tx1)
        self.assertEqual(self._balance(self.account_a1), Decimal("10.0000"))
        self.assertEqual(self._balance(self.account_a2), Decimal("25.0000"))
        self.assertEqual(r1.account_id, self.account_a1)
        self.assertEqual(r2.account_id, self.account_a2)
        self.assertEqual(tx2.prepaid_meter_id, self.meter_a2)

    def test_r5_meter_moved_to_another_account(self):
        """R5: if the meter no longer draws on the account chosen at checkout, nothing is
        guessed: conflict for an operator."""
        recharge, tx = self._checkout(self.meter_a1, 10.0)
        self.meter_a1.unit_id = self.unit_b
        self._notify(tx)
        self.assertEqual(recharge.state, "conflict")
        self.assertFalse(self.account_a1.line_ids | self.account_b.line_ids)
