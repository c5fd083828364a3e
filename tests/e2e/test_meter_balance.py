"""B13 end to end, on the demo's own stack: a recharge at the desk for a 4G meter that keeps
its own balance becomes one token, delivered over MQTT by the gateway runner (restarted in
the middle), and the simulated meter's own balance rises by the credit exactly once.

The meter is the demo's idle flat (nothing switched on, scripts/demo_stack.py): its balance
moves only by tokens, and what it reports is the simulator's own figure, read by Odoo from
its MQTT readings."""

import json
import time

import demo_stack
from test_demo_site import wait_for

AMOUNT = 25.0


def money(value):
    """A balance as Odoo keeps it: 4 decimals."""
    return f"{value:.4f}"


class Meter:
    """A meter as Odoo sees it, read over JSON-RPC as the admin."""

    def __init__(self, admin, address):
        self.admin = admin
        [self.row] = admin.call(
            "prepaid.meter",
            "search_read",
            [("address", "=", address)],
            fields=["account_id", "gateway_id", "billing_mode", "credit_channel"],
        )
        self.id = self.row["id"]

    def state(self):
        fields = ["last_meter_balance", "last_reading_at", "meter_balance_state"]
        return self.admin.call("prepaid.meter", "read", [self.id], fields)[0]

    def reported_at(self, balance):
        """When the meter last reported, if it reported ``balance``."""
        row = self.state()
        return money(row["last_meter_balance"]) == balance and row["last_reading_at"]

    def credit_commands(self):
        return self.admin.call(
            "meter.gateway.command",
            "search_read",
            [("meter_id", "=", self.id), ("kind", "=", "credit")],
            fields=["state", "credit_id"],
        )


def test_desk_recharge_reaches_the_meter_once(stack):
    started = time.monotonic()
    admin = stack.admin()
    meter = Meter(admin, demo_stack.IDLE_METER)
    assert (meter.row["billing_mode"], meter.row["credit_channel"]) == ("meter", "device")

    # the simulated meter reports the balance the server counts for it (demo_stack
    # started it so): nothing charged, nothing pending
    start = json.loads((stack.local / "balances.json").read_text())[demo_stack.IDLE_METER]
    before = meter.state()["last_reading_at"] or ""
    wait_for("a live reading", lambda: (meter.reported_at(start) or "") > before)

    # 1. the recharge at the desk, then the MQTT gateway's runner killed and started again
    # while its token is on the way
    stack.desk_recharge(admin, meter.row["account_id"][0], meter.id, AMOUNT)
    [credit] = admin.call(
        "prepaid.meter.credit",
        "search_read",
        [("meter_id", "=", meter.id)],
        fields=["amount", "state", "channel"],
    )
    assert credit["amount"] == AMOUNT and credit["channel"] == "device"
    [gateway] = [g for g in stack.gateways if g["id"] == meter.row["gateway_id"][0]]
    stack.restart_runner(gateway)

    # 2. the meter confirms the token: the credit is applied, its balance rose by it
    def credit_state():
        return admin.call("prepaid.meter.credit", "read", [credit["id"]], ["state"])[0]["state"]

    wait_for("the credit applied", lambda: credit_state() == "applied", timeout=180)
    expected = money(float(start) + AMOUNT)
    applied_at = wait_for("the balance up by the credit", lambda: meter.reported_at(expected))

    # 3. a reading later: still once, and the server agrees with the meter
    wait_for(
        "a later reading, the same balance, agreed",
        lambda: (
            (meter.reported_at(expected) or "") > applied_at
            and meter.state()["meter_balance_state"] == "ok"
        ),
        timeout=2 * demo_stack.READING_INTERVAL + 60,
    )
    commands = meter.credit_commands()
    assert [(c["state"], c["credit_id"][0]) for c in commands] == [("confirmed", credit["id"])]
    assert stack.dead() == [], "no part of the stack died"
    print(f"\ntoken applied on the simulated meter after {time.monotonic() - started:.0f} s")


def test_sts_token_typed_on_the_keypad(stack):
    """The demo's STS token (a desk recharge when the stack created its database), as a
    manager reads it in Meter Credits, typed on the simulated meter's keypad: accepted
    once, refused the second time; and the demo's own-format token delivered over MQTT."""
    admin = stack.admin()
    (own, _), (sts_meter, _) = demo_stack.START_RECHARGES

    def credits(address):
        return admin.call(
            "prepaid.meter.credit",
            "search_read",
            [("meter_id.address", "=", address), ("state", "!=", "cancelled")],
            fields=["state", "channel", "token"],
        )

    [credit] = credits(sts_meter)
    assert (credit["state"], credit["channel"]) == ("issued", "keypad")
    answer = stack.type_token(sts_meter, credit["token"])
    assert answer["accepted"] and answer["token"].startswith("STS CREDIT TID"), answer
    again = stack.type_token(sts_meter, credit["token"])
    assert not again["accepted"] and again["error"].startswith("StsReplayError"), again
    wait_for("the own-format token applied", lambda: credits(own)[0]["state"] == "applied")
