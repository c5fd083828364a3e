"""R1/R2: payment notifications processed at the same moment by two database connections on
committed data (as two Odoo workers would): the same 'done' twice gives one credit; 'done'
and a late 'cancel' racing each other leave state and balance consistent (one credit when
done, none when canceled); two sign-up requests racing for the last SMS allowed."""

from datetime import timedelta
from decimal import Decimal

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.prepaid_billing.tests.common import MockSmsGatewayMixin
from odoo.addons.prepaid_meter.tests.concurrency import ConcurrencyCase, purge_meters


@tagged("post_install", "-at_install")
class TestConcurrentNotifications(ConcurrencyCase):
    """Runs outside the test transaction: the records are committed, then removed."""

    def _create(self, env):
        company = env.ref("base.main_company")
        site = env["prepaid.site"].create({"name": "Concurrency Park", "code": "CC"})
        building = env["prepaid.building"].create({"name": "C", "site_id": site.id})
        unit = env["prepaid.unit"].create({"name": "C-1", "building_id": building.id})
        meter = env["prepaid.meter"].create(
            {
                "name": "Power C-1",
                "model_id": env.ref("prepaid_meter.meter_model_ddsy_5_60").id,
                "unit_id": unit.id,
            }
        )
        partner = env["res.partner"].create({"name": "Concurrent Tenant"})
        tenancy = env["prepaid.tenancy"].create(
            {"partner_id": partner.id, "unit_id": unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        account = tenancy.account_id
        provider = env.ref("payment.payment_provider_demo")
        self.created["provider_state"] = (provider.state, provider.is_published)
        Line = env["account.payment.method.line"]
        lines_before = Line.search([("payment_provider_id", "=", provider.id)])
        provider.write({"state": "test", "is_published": True})
        provider.journal_id = env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", company.id)], limit=1
        )
        self.created["method_line"] = (
            Line.search([("payment_provider_id", "=", provider.id)]) - lines_before
        ).ids
        recharge = env["prepaid.online.recharge"].create(
            {
                "name": "/",
                "meter_id": meter.id,
                "account_id": account.id,
                "partner_id": partner.id,
                "amount": 15.0,
                "currency_id": company.currency_id.id,
            }
        )
        Tx = env["payment.transaction"]
        tx = Tx.create(
            {
                "provider_id": provider.id,
                "payment_method_id": provider.payment_method_ids[:1].id,
                "reference": Tx._compute_reference("demo", prepaid_recharge_id=recharge.id),
                "amount": 15.0,
                "currency_id": company.currency_id.id,
                "partner_id": partner.id,
                "operation": "online_direct",
                "prepaid_recharge_id": recharge.id,
            }
        )
        recharge.write({"transaction_id": tx.id, "name": tx.reference})
        self.created.update(
            site=site.id,
            building=building.id,
            meter=meter.id,
            partner=partner.id,
            tenancy=tenancy.id,
            account=account.id,
            recharge=recharge.id,
            tx=tx.id,
            reference=tx.reference,
        )

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        cr.execute("SELECT payment_id FROM payment_transaction WHERE id = %s", [ids["tx"]])
        payment_ids = [row[0] for row in cr.fetchall() if row[0]]
        cr.execute("SELECT move_id FROM account_payment WHERE id = ANY(%s)", [payment_ids])
        move_ids = [row[0] for row in cr.fetchall() if row[0]]
        statements = [
            ("DELETE FROM prepaid_account_line WHERE account_id = %s", ids["account"]),
            ("UPDATE payment_transaction SET payment_id = NULL WHERE id = %s", ids["tx"]),
            ("DELETE FROM account_payment WHERE id = ANY(%s)", payment_ids),
            ("DELETE FROM account_move_line WHERE move_id = ANY(%s)", move_ids),
            ("DELETE FROM account_move WHERE id = ANY(%s)", move_ids),
            (
                "UPDATE prepaid_online_recharge SET transaction_id = NULL WHERE id = %s",
                ids["recharge"],
            ),
            ("DELETE FROM payment_transaction WHERE id = %s", ids["tx"]),
            ("DELETE FROM prepaid_online_recharge WHERE id = %s", ids["recharge"]),
            ("DELETE FROM prepaid_account WHERE id = %s", ids["account"]),
            ("DELETE FROM prepaid_meter_event WHERE meter_id = %s", ids["meter"]),
            ("DELETE FROM prepaid_tenancy WHERE id = %s", ids["tenancy"]),
        ]
        for query, arg in statements:
            cr.execute(query, [arg])
        purge_meters(cr, [ids["meter"]])  # with its latest state and its unit
        statements = [
            ("DELETE FROM prepaid_building WHERE id = %s", ids["building"]),
            ("DELETE FROM prepaid_site WHERE id = %s", ids["site"]),
            ("DELETE FROM res_partner WHERE id = %s", ids["partner"]),
        ]
        if ids.get("method_line"):
            statements.append(
                (
                    "DELETE FROM account_payment_method_line WHERE id = ANY(%s)",
                    ids["method_line"],
                )
            )
        for query, arg in statements:
            cr.execute(query, [arg])
        state, published = ids["provider_state"]
        cr.execute(
            "UPDATE payment_provider SET state = %s, is_published = %s WHERE code = 'demo'",
            [state, published],
        )

    def _notify(self, state):
        reference = self.created["reference"]

        def notify(env):
            tx = env["payment.transaction"]._process(
                "demo", {"reference": reference, "simulated_state": state}
            )
            tx._post_process()

        return notify

    def test_r1_two_notifications_at_once(self):
        notify = self._notify("done")

        # both run through: the one that loses the race is rolled back and runs again
        self._race(notify, notify)
        ((count, total),) = self._query(
            "SELECT count(*), sum(amount) FROM prepaid_account_line "
            "WHERE account_id = %s AND kind = 'recharge'",
            [self.created["account"]],
        )
        ((balance,),) = self._query(
            "SELECT balance FROM prepaid_account WHERE id = %s", [self.created["account"]]
        )
        ((payments,),) = self._query(
            "SELECT count(*) FROM account_payment WHERE payment_transaction_id = %s",
            [self.created["tx"]],
        )
        ((state,),) = self._query(
            "SELECT state FROM prepaid_online_recharge WHERE id = %s", [self.created["recharge"]]
        )
        self.assertEqual(count, 1)
        self.assertEqual(Decimal(total), Decimal("15"))
        self.assertEqual(Decimal(balance), Decimal("15"))
        self.assertEqual(payments, 1)
        self.assertEqual(state, "credited")

    def test_r2_done_and_cancel_at_once(self):
        """R2: whichever of 'done' and 'cancel' commits first, the other changes nothing:
        done and credited once, or canceled and credited nothing."""
        self._race(self._notify("done"), self._notify("cancel"))
        ((tx_state,),) = self._query(
            "SELECT state FROM payment_transaction WHERE id = %s", [self.created["tx"]]
        )
        ((count, balance),) = self._query(
            "SELECT (SELECT count(*) FROM prepaid_account_line l "
            "         WHERE l.account_id = a.id AND l.kind = 'recharge'), COALESCE(a.balance, 0) "
            "FROM prepaid_account a WHERE a.id = %s",
            [self.created["account"]],
        )
        expected = {"done": (1, Decimal("15")), "cancel": (0, Decimal("0"))}
        self.assertIn(tx_state, expected)
        self.assertEqual((count, Decimal(balance)), expected[tx_state])


@tagged("post_install", "-at_install")
class TestConcurrentSignupCodes(MockSmsGatewayMixin, ConcurrencyCase):
    """T2: two sign-up requests at once for the last SMS allowed in total: one SMS is sent,
    the other request is refused (the limits count committed log entries)."""

    PHONES = ("+15550901", "+15550902")

    def _create(self, env):
        params = env["ir.config_parameter"]
        key = "prepaid_portal.signup_codes_total_hour"
        self.created["limit"] = params.get_param(key)
        log = env["prepaid.portal.auth.log"]
        since = fields.Datetime.now() - timedelta(hours=1)
        used = log._count(("code_sent", "notice_sent"), since)
        params.set_param(key, str(used + 1))  # one SMS left
        self.created["log_before"] = log.search([], order="id desc", limit=1).id or 0
        self.sms = self._mock_sms_gateway()

    def _cleanup(self, env):
        cr = env.cr
        cr.execute(
            "DELETE FROM prepaid_portal_auth_log WHERE id > %s", [self.created["log_before"]]
        )
        cr.execute(
            "DELETE FROM prepaid_portal_verification WHERE phone = ANY(%s)", [list(self.PHONES)]
        )
        cr.execute("DELETE FROM sms_sms WHERE number = ANY(%s)", [list(self.PHONES)])
        env["ir.config_parameter"].set_param(
            "prepaid_portal.signup_codes_total_hour", self.created["limit"] or False
        )

    def test_last_sms_is_sent_once(self):
        refused = []

        def ask(phone, ip):
            def request_code(env):
                try:
                    env["prepaid.portal.verification"]._send_code(phone, ip=ip)
                except UserError:
                    refused.append(phone)

            return request_code

        self._race(ask(self.PHONES[0], "10.8.0.1"), ask(self.PHONES[1], "10.8.0.2"))
        self.assertEqual(len(self.sms), 1, self.sms)
        self.assertEqual(len(refused), 1)
        ((sent,),) = self._query(
            "SELECT count(*) FROM prepaid_portal_auth_log WHERE id > %s AND event = 'code_sent'",
            [self.created["log_before"]],
        )
        self.assertEqual(sent, 1)
