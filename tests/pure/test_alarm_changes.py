"""B8: the outcome of evaluating many meters, grouped into what to write."""

from datetime import datetime, timedelta
from decimal import Decimal as D

from prepaid_core import alarm as a

T0 = datetime(2026, 3, 1, 8, 0)
S = a.AlarmSettings(alarm1=D("20"), alarm2=D("10"))


def stored(meter_id, state=None, level=a.NORMAL, relay="on", text=None, own=False, account=7):
    return a.StoredAlarm(
        meter_id, account, state and state.to_json(), level, relay, text, None, own
    )


def outcome(changes, meter, balance, state=None, now=T0, **inputs):
    new_state, decision = a.evaluate(state, a.AlarmInputs(D(balance), S, **inputs), now)
    changes.add(meter, state, new_state, decision)
    return new_state


def test_a_first_evaluation_agreeing_with_the_meter_writes_only_the_state():
    changes = a.AlarmChanges()
    outcome(changes, stored(1), "50")
    assert [meter_id for meter_id, _state, _wake in changes.states] == [1]
    assert (changes.levels, changes.relays, changes.notices) == ({}, {}, [])


def test_an_unchanged_state_writes_nothing():
    first = a.AlarmChanges()
    state = outcome(first, stored(1), "50")
    again = a.AlarmChanges()
    outcome(again, stored(1, state), "49", state=state)
    assert again == a.AlarmChanges()


def test_level_changes_are_grouped_by_former_and_new_level():
    changes = a.AlarmChanges()
    for meter_id in (1, 2):
        outcome(changes, stored(meter_id), "15")
    outcome(changes, stored(3, level=a.ALARM1), "5")
    assert changes.levels == {(a.NORMAL, a.ALARM1): [1, 2], (a.ALARM1, a.ALARM2): [3]}


def test_relay_changes_are_grouped_by_relay_and_reason():
    changes = a.AlarmChanges()
    outcome(changes, stored(1), "5")
    outcome(changes, stored(2), "5")
    outcome(changes, stored(3), "-1")
    assert changes.relays == {
        ("off", a.REASON_TEXTS[a.REMINDER_CUT]): [1, 2],
        ("off", a.REASON_TEXTS[a.CUT_ARREARS]): [3],
    }
    [(_id, _state, wake)] = [row for row in changes.states if row[0] == 1]
    assert wake == T0 + a.DEFAULT_REMINDER_CUT


def test_notices_go_to_the_account_once_per_key_unless_the_meter_has_its_own():
    changes = a.AlarmChanges()
    outcome(changes, stored(1), "15")
    outcome(changes, stored(2), "15")
    outcome(changes, stored(3, own=True), "15")
    keys = [(account, notice.key) for account, notice in changes.notices]
    assert keys == [(7, "alarm1#0"), (7, "alarm1#0"), (7, "3:alarm1#0")]


def test_an_overload_notice_is_the_meters_own():
    changes = a.AlarmChanges()
    trip = T0 - timedelta(minutes=1)
    outcome(changes, stored(4), "50", overload_at=trip)
    [(account, notice)] = changes.notices
    assert (account, notice.kind) == (7, a.NOTICE_OVERLOAD)
    assert notice.key == f"4:overload@{trip.isoformat()}"
