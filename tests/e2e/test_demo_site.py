"""X3 end to end, on the demo's own stack: reading -> deduction -> alarm -> cut on the
simulated meter -> recharge through the portal -> supply restored on the simulated meter.

The tenant of the story is the demo's portal login (Green Leaf Cafe, meter 000010010001 on
the first collector's first RS-485 bus), left with little credit by the demo data and put
under a heavy load by the stack.  The simulated meter's relay is read over DL/T645 itself
(status word 3, bit 4), not from what Odoo believes."""

import re
import socket
import time

import demo_stack
import pytest
import requests

from prepaid_core.protocols import dlt645
from prepaid_core.protocols.dlt645_data import MeterStatus3

STATUS_WORD_3 = 0x04000503
TIMEOUT = 240  # seconds for each step at most (the polls are a minute apart)


def wait_for(what, check, timeout=TIMEOUT, every=2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(every)


def simulated_relay_off(port, address):
    """The relay as the simulated meter itself reports it (DL/T645 over the collector)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(dlt645.read_request(address, STATUS_WORD_3, preamble=4))
        framer = dlt645.Framer()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frames = framer.feed(sock.recv(4096))
            if frames:
                word = dlt645.parse_read_reply(frames[0]).value
                return MeterStatus3.from_word(word).relay_off
    raise AssertionError("the simulated meter did not answer")


def test_reading_deduction_alarm_cut_recharge_restore(stack):
    started = time.monotonic()
    address = demo_stack.STORY_METER
    port = stack.sim_base_port  # collector 1, bus 1
    admin = stack.admin()
    [meter] = admin.call(
        "prepaid.meter", "search_read", [("address", "=", address)], fields=["account_id"]
    )
    account_id = meter["account_id"][0]

    def read(model, ids, fields):
        return admin.call(model, "read", ids, fields)[0]

    last_read_before = read("prepaid.meter", [meter["id"]], ["last_reading_at"])["last_reading_at"]
    balance_before = read("prepaid.account", [account_id], ["balance"])["balance"]
    charged_before = read("prepaid.meter", [meter["id"]], ["billing_charged_until"])[
        "billing_charged_until"
    ]
    assert simulated_relay_off(port, address) is False, "supply is on at the start"

    # 1. readings of the running simulator arrive (a poll of the collector), newer than the
    # demo data's history
    wait_for(
        "a reading polled from the simulated meter",
        lambda: (
            (read("prepaid.meter", [meter["id"]], ["last_reading_at"])["last_reading_at"] or "")
            > (last_read_before or "")
        ),
    )
    # 2. they are charged: the meter's charged-until cursor moves, the balance falls (a
    # day's consumption is one ledger line, updated in place)
    wait_for(
        "a deduction of the live readings",
        lambda: (
            (
                read("prepaid.meter", [meter["id"]], ["billing_charged_until"])[
                    "billing_charged_until"
                ]
                or ""
            )
            > (charged_before or "")
            and read("prepaid.account", [account_id], ["balance"])["balance"] < balance_before
        ),
    )
    # 3. the credit runs out: arrears, supply wanted off
    wait_for(
        "arrears and the desired relay off",
        lambda: (
            read("prepaid.meter", [meter["id"]], ["alarm_level", "desired_relay_state"])
            == {"id": meter["id"], "alarm_level": "arrears", "desired_relay_state": "off"}
        ),
    )
    assert read("prepaid.account", [account_id], ["balance"])["balance"] <= 0
    # 4. the cut reaches the simulated meter
    wait_for("the simulated meter's relay off", lambda: simulated_relay_off(port, address))
    cut_at = time.monotonic() - started
    wait_for(
        "Odoo records the relay off",
        lambda: (
            read("prepaid.meter", [meter["id"]], ["actual_relay_state"])["actual_relay_state"]
            == "off"
        ),
        timeout=90,
    )

    # 5. the tenant recharges in the portal, paying through the demo payment provider
    tenant = demo_stack.OdooSession(stack.url, stack.db, "tenant", "tenant")
    page = tenant.http.get(f"{stack.url}/my/meters/{meter['id']}/recharge?amount=30", timeout=60)
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'data-access-token="([^"]+)"', page.text).group(1)
    provider_id = admin.ref("payment.payment_provider_demo")
    [provider] = admin.call("payment.provider", "read", [provider_id], ["payment_method_ids"])
    processing = tenant.rpc(
        f"/my/meters/{meter['id']}/recharge/transaction",
        {
            "amount": 30.0,
            "access_token": token,
            "provider_id": provider_id,
            "payment_method_id": provider["payment_method_ids"][0],
            "token_id": None,
            "flow": "direct",
            "tokenization_requested": False,
            "landing_route": f"/my/meters/{meter['id']}",
            "is_validation": False,
        },
    )
    tenant.rpc(
        "/payment/demo/simulate_payment",
        {
            "reference": processing["reference"],
            "payment_details": "4242",
            "simulated_state": "done",
        },
    )
    status = tenant.rpc("/payment/status/poll", {})
    assert status["state"] == "done", status
    wait_for(
        "the recharge credited",
        lambda: read("prepaid.account", [account_id], ["balance"])["balance"] > 0,
        timeout=60,
    )
    # the portal shows the meter with its new balance
    assert tenant.http.get(f"{stack.url}/my/meters/{meter['id']}", timeout=60).status_code == 200

    # 6. supply comes back on the simulated meter
    wait_for(
        "the desired relay on",
        lambda: (
            read("prepaid.meter", [meter["id"]], ["desired_relay_state"])["desired_relay_state"]
            == "on"
        ),
        timeout=60,
    )
    wait_for("the simulated meter's relay on", lambda: not simulated_relay_off(port, address))
    total = time.monotonic() - started
    print(f"\ncut on the simulated meter after {cut_at:.0f} s, restored after {total:.0f} s")
    assert stack.dead() == [], "no part of the stack died"
    # the device API key never went to a log
    for gateway in stack.gateways:
        key = gateway["key_file"].read_text().strip()
        for log in stack.local.glob("*.log"):
            assert key not in log.read_text(errors="replace"), log


def test_portal_refuses_strangers(stack):
    """The stack's portal is the real one: no page of a meter without its tenant's login."""
    response = requests.get(f"{stack.url}/my/meters", timeout=60, allow_redirects=False)
    assert response.status_code in (302, 303)
    assert "/web/login" in response.headers["Location"]
