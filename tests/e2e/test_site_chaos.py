"""X1 under faults on the demo's whole stack (X1): Odoo workers killed, PostgreSQL
restarted as after a crash, Mosquitto restarted, a gateway runner killed and started again,
hostile messages on the broker, recharges paid meanwhile; then, against the simulator's own
record, nothing lost, nothing doubled, balances as a clean run gives them, relays as
desired (``scripts/site_chaos.py``).  Runs last: it stops the site."""

import os

import pytest
import site_chaos

SECONDS = float(os.environ.get("CHAOS_SECONDS", 150))


def test_site_under_faults(stack):
    # durability as production needs it: what was answered as stored survives the crash
    assert site_chaos._psql("SHOW synchronous_commit") == "on"
    assert site_chaos._psql("SHOW fsync") == "on"
    restart_pg = os.environ.get("CHAOS_RESTART_POSTGRES", "1") != "0"
    chaos, hostile, report = site_chaos.run_site(stack, SECONDS, restart_pg=restart_pg)
    print(f"\nfaults: {dict(chaos.done)}; errors while making them: {chaos.errors}")
    print(f"hostile messages: {dict(hostile.sent)}")
    print(report.summary())
    assert chaos.done["worker"] >= 2 and chaos.done["mosquitto"] >= 1
    assert chaos.done["runner"] >= 2 and chaos.done["recharge"] >= 2
    if restart_pg:
        assert chaos.done["postgresql"] >= 1
    assert set(hostile.sent) >= {"malformed", "duplicate", "reordered", "spoofed reading"}
    if hostile.sent["spoofed ack"]:  # answers in another meter's name: refused, logged
        assert report.refused_answers >= 1
    assert report.readings["acknowledged"] > 0
    problems = report.problems(chaos.recharges)
    if problems:
        pytest.fail("\n".join(problems))
