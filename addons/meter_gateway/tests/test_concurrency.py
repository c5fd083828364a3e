"""G4/G5 under real concurrency: two gateway-runner workers calling the device API at the
same moment, on committed data, through two database connections (R8, R10, R12).

- two fetches at once: each queued command goes to one of them, sent once, and the day's
  time sync they find due is queued once;
- the same acknowledgement from two workers at once (a retried delivery racing the first):
  the command is confirmed once, the second answer is logged as late, one relay event;
- two credit deliveries for one meter issued at once (R10): distinct tokens with strictly
  ordered sequence numbers, neither superseded;
- two sales for one meter-balance meter at once (B13, R10): two credits, one command each,
  their tokens numbered one after the other under the meter's row lock."""

import time
from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from odoo.addons.prepaid_meter.tests.concurrency import (
    ConcurrencyCase,
    forget,
    purge,
    purge_meters,
)


@tagged("post_install", "-at_install")
class TestDeviceApiConcurrency(ConcurrencyCase):
    def _create(self, env):
        site = env["prepaid.site"].create({"name": "Gateway Concurrency Park", "code": "GCC"})
        building = env["prepaid.building"].create({"name": "GC", "site_id": site.id})
        gateway = env["prepaid.gateway"].create(
            {"name": "GC collector", "site_id": site.id, "gateway_type": "tcp_collector"}
        )
        bus = env["prepaid.gateway.bus"].create(
            {"gateway_id": gateway.id, "number": 1, "port": 9001}
        )
        company = env.ref("base.main_company").sudo()
        self.created.update(company=company.id, vending_key=company.prepaid_vending_key or None)
        company._prepaid_vending_key()  # generated once, not by the contenders
        model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        meters = env["prepaid.meter"]
        for index in range(2):
            unit = env["prepaid.unit"].create({"name": f"GC-{index}", "building_id": building.id})
            meters |= env["prepaid.meter"].create(
                {
                    "name": f"Power GC-{index}",
                    "address": f"0077000000{index:02d}",
                    "model_id": model.id,
                    "unit_id": unit.id,
                    "gateway_id": gateway.id,
                    "bus_id": bus.id,
                    "state": "in_service",
                    "actual_relay_state": "on",
                }
            )
        for meter in meters:
            meter._set_desired_relay("off", "credit exhausted")
        commands = env["meter.gateway.command"]._cron_reconcile(meters)
        self.assertEqual(commands.mapped("kind"), ["relay_off"] * 2)
        # the day's time sync is due: the next fetch queues it
        gateway.time_sync_next_at = fields.Datetime.now() - timedelta(minutes=1)
        self.created.update(
            site=site.id,
            building=building.id,
            gateway=gateway.id,
            meters=meters.ids,
            commands=commands.ids,
        )

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        for model, res_ids in (
            ("prepaid.meter", ids["meters"]),
            ("prepaid.gateway", [ids["gateway"]]),
            ("meter.gateway.command", ids["commands"]),
        ):
            forget(cr, model, res_ids)
        cr.execute("SELECT id FROM meter_gateway_command WHERE meter_id = ANY(%s)", [ids["meters"]])
        purge(cr, "meter_gateway_command", [row[0] for row in cr.fetchall()])
        cr.execute("SELECT id FROM prepaid_meter_credit WHERE meter_id = ANY(%s)", [ids["meters"]])
        credit_ids = [row[0] for row in cr.fetchall()]
        forget(cr, "prepaid.meter.credit", credit_ids)
        purge(cr, "prepaid_meter_credit", credit_ids)
        purge_meters(cr, ids["meters"])
        purge(cr, "prepaid_gateway", [ids["gateway"]])
        purge(cr, "prepaid_building", [ids["building"]])
        purge(cr, "prepaid_site", [ids["site"]])
        # the key's stored form as read before the test (encrypted, or none): never a clear key
        cr.execute(
            "UPDATE res_company SET prepaid_vending_key = %s WHERE id = %s",
            [ids["vending_key"], ids["company"]],
        )

    def _gateway(self, env):
        return env["prepaid.gateway"].browse(self.created["gateway"])

    def _commands(self):
        return self._query(
            "SELECT id, state, attempts, reason_log FROM meter_gateway_command "
            "WHERE id = ANY(%s) ORDER BY id",
            [self.created["commands"]],
        )

    def test_two_fetches_at_once_send_each_command_once(self):
        """G5: two runners (or a runner and its retry) fetch the same gateway's queue at the
        same moment: each command is handed to one of them and counts one attempt."""
        fetched = {}

        def fetch(key):
            def run(env):
                # only what the committed attempt returned counts
                fetched[key] = [
                    c["id"] for c in self._gateway(env)._api_fetch_commands(100)["commands"]
                ]

            return run

        self._race(fetch("a"), fetch("b"))
        ours = set(self.created["commands"])
        handed = [cid for key in ("a", "b") for cid in fetched[key] if cid in ours]
        self.assertEqual(sorted(handed), sorted(ours), "each command handed out exactly once")
        self.assertEqual([(row[1], row[2]) for row in self._commands()], [("sent", 1)] * 2)
        # the due time sync was queued by one of them only: one command per meter
        syncs = self._query(
            "SELECT id, meter_id, state FROM meter_gateway_command "
            "WHERE meter_id = ANY(%s) AND kind = 'time_sync' ORDER BY meter_id",
            [self.created["meters"]],
        )
        self.assertEqual(
            [(meter, state) for _id, meter, state in syncs],
            [(meter, "sent") for meter in self.created["meters"]],
        )
        all_handed = fetched["a"] + fetched["b"]
        self.assertEqual(sorted(all_handed), sorted(set(all_handed)), "nothing handed twice")
        self.assertTrue({row[0] for row in syncs} <= set(all_handed))

    def test_pushes_at_once_mark_the_contact_without_waiting(self):
        """G5: two pushes of one gateway at once, its last contact over a minute old: each
        finds it stale, one marks it; the other neither waits for the first one's whole
        message (the gateway's row) nor starts again on the concurrent update."""
        gateway_id = self.created["gateway"]
        before = fields.Datetime.now() - timedelta(minutes=5)
        self._committed(
            lambda env: env.cr.execute(
                "UPDATE prepaid_gateway SET last_contact_at = %s, connection_state = 'online', "
                "poll_failures = 0 WHERE id = %s",
                [before, gateway_id],
            )
        )

        def push(env):
            self._gateway(env)._mark_contact("push")
            time.sleep(0.5)  # the message's readings being stored

        self.assertEqual(self._race(push, push), [0, 0], "neither started again")
        [(contact, state)] = self._query(
            "SELECT last_contact_at, connection_state FROM prepaid_gateway WHERE id = %s",
            [gateway_id],
        )
        self.assertGreater(contact, before)
        self.assertEqual(state, "online")

    def test_same_ack_from_two_workers_at_once(self):
        """R8/R12: the device's answer to a relay-off arrives twice at the same moment
        (a retried delivery with another message id): confirmed once, the second logged as
        a late answer, the meter's relay recorded off with a single event."""
        fetched = self._committed(lambda env: self._gateway(env)._api_fetch_commands(100))
        addresses = {c["id"]: c["address"] for c in fetched["commands"]}
        acks = {
            "acks": [
                {
                    "id": cid,
                    "address": addresses[cid],
                    "success": True,
                    "reason": "relay off",
                    "relay_state": "off",
                }
                for cid in self.created["commands"]
            ]
        }

        def ack(env):
            self._gateway(env)._api_ack(acks)

        self._race(ack, ack)
        for _id, state, attempts, log in self._commands():
            self.assertEqual((state, attempts), ("confirmed", 1))
            self.assertEqual(log.count(" confirmed: device: relay off"), 1, log)
            self.assertEqual(log.count("late answer ignored"), 1, log)

        def relays(env):
            Event = env["prepaid.meter.event"]
            return [
                (
                    meter.actual_relay_state,
                    Event.search_count(
                        [("meter_id", "=", meter.id), ("event_type", "=", "relay_off")]
                    ),
                )
                for meter in env["prepaid.meter"].browse(self.created["meters"])
            ]

        self.assertEqual(self._committed(relays), [("off", 1)] * 2)

    def test_r10_two_credit_tokens_for_one_meter_at_once(self):
        """R10: two recharges of one meter delivered by two workers in the same moment: two
        credit commands with distinct tokens and strictly ordered sequence numbers (taken
        under the meter's row), both kept (credit deliveries are never superseded: R6)."""
        meter_id = self.created["meters"][0]

        def credit(env):
            env["meter.gateway.command"]._queue(
                env["prepaid.meter"].browse(meter_id), "credit", "recharge", {"amount": "10"}
            )

        self._race(credit, credit)

        def credits(env):
            commands = env["meter.gateway.command"].search(
                [("meter_id", "=", meter_id), ("kind", "=", "credit")], order="id"
            )
            return (
                [(c.state, c.payload["sequence"]) for c in commands],
                {c.token_secret["token"] for c in commands},
                env["prepaid.meter"].browse(meter_id).token_sequence,
            )

        states, tokens, last = self._committed(credits)
        self.assertEqual(states, [("queued", 1), ("queued", 2)])
        self.assertEqual(len(tokens), 2, "distinct tokens")
        self.assertEqual(last, 2)

    def test_r10_two_sales_for_one_meter_balance_meter_at_once(self):
        meter_id = self.created["meters"][1]
        self._committed(
            lambda env: (
                env["prepaid.meter"]
                .browse(meter_id)
                .write({"billing_mode": "meter", "token_format": "own", "credit_channel": "keypad"})
            )
        )

        def sale(origin):
            def run(env):
                env["prepaid.meter.credit"]._vend(
                    env["prepaid.meter"].browse(meter_id), "5", origin
                )

            return run

        self._race(sale("race,1"), sale("race,2"))

        def credits(env):
            found = env["prepaid.meter.credit"].search([("meter_id", "=", meter_id)])
            return sorted(
                (c.state, c.token_reference, len(c.command_ids), c.command_ids.state, c.token)
                for c in found
            )

        (first, second) = self._committed(credits)
        self.assertEqual(first[:4], ("issued", "1", 1, "handed"))
        self.assertEqual(second[:4], ("issued", "2", 1, "handed"))
        self.assertNotEqual(first[4], second[4], "distinct tokens")
