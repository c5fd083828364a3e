"""B8: alarm levels and desired relay state; one test per row of the transition table."""

import dataclasses
import json
from datetime import datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prepaid_core import alarm as a

T0 = datetime(2026, 3, 1, 8, 0)
S = a.AlarmSettings(alarm1=D("20"), alarm2=D("10"))


def minute(m):
    return T0 + timedelta(minutes=m)


def run(steps, settings_=S):
    """Evaluate ``[(minute, balance, {extras}), ...]`` in turn; all (state, decision)."""
    state = None
    out = []
    recharge_at = None
    for step in steps:
        m, balance, extra = (*step, {}) if len(step) == 2 else step
        extra = dict(extra)
        if extra.pop("recharge", False):
            recharge_at = minute(m)
        for key in ("overload_at", "overload_reset_at"):
            if key in extra:
                extra[key] = minute(extra[key])
        inputs = a.AlarmInputs(
            D(balance), extra.pop("settings", settings_), last_recharge_at=recharge_at, **extra
        )
        state, decision = a.evaluate(state, inputs, minute(m))
        out.append((state, decision))
    return out


T2_STEPS = [(0, "50"), (1, "15")]
T3_STEPS = [*T2_STEPS, (2, "5")]
T7_STEPS = [(0, "50"), (1, "-1")]
OD = a.AlarmSettings(alarm1=D("20"), alarm2=D("10"), overdraft_limit=D("15"))
NO_REMINDER = a.AlarmSettings(alarm1=D("20"), alarm2=D("10"), reminder_cut=timedelta(0))
AUTO = a.AlarmSettings(alarm1=D("20"), alarm2=D("10"), overload_auto_reset=timedelta(minutes=5))

TRANSITIONS = [
    # id, steps, (level, relay, reason, notice kinds of the last step)
    ("T1", [(0, "50")], (a.NORMAL, a.ON, a.CREDIT_OK, ())),
    ("T2", T2_STEPS, (a.ALARM1, a.ON, a.CREDIT_LOW, ("alarm1",))),
    ("T3", T3_STEPS, (a.ALARM2, a.OFF, a.REMINDER_CUT, ("alarm2",))),
    ("T4", [(0, "50"), (1, "5")], (a.ALARM2, a.OFF, a.REMINDER_CUT, ("alarm2",))),
    ("T5", [*T3_STEPS, (4, "4.9")], (a.ALARM2, a.ON, a.CREDIT_LOW, ())),
    ("T6", [*T3_STEPS, (3, "0")], (a.ARREARS, a.OFF, a.CUT_ARREARS, ("arrears",))),
    ("T7", T7_STEPS, (a.ARREARS, a.OFF, a.CUT_ARREARS, ("arrears",))),
    ("T8", [*T7_STEPS, (30, "-2")], (a.ARREARS, a.OFF, a.CUT_ARREARS, ())),
    (
        "T9",
        [*T7_STEPS, (40, "5", {"recharge": True})],
        (a.ALARM2, a.ON, a.CREDIT_LOW, ("restored",)),
    ),
    (
        "T10",
        [*T3_STEPS, (3, "12", {"recharge": True})],
        (a.ALARM1, a.ON, a.CREDIT_LOW, ()),
    ),
    ("T11", [*T2_STEPS, (2, "21")], (a.NORMAL, a.ON, a.CREDIT_OK, ())),
    ("T12", [*T2_STEPS, (2, "20.5"), (3, "19")], (a.ALARM1, a.ON, a.CREDIT_LOW, ())),
    (
        "T13",
        [*T2_STEPS, (2, "20.5", {"recharge": True}), (3, "19")],
        (a.ALARM1, a.ON, a.CREDIT_LOW, ("alarm1",)),
    ),
    (
        "T14",
        [(0, "50"), (1, "-1", {"protect": True})],
        (a.ARREARS, a.ON, a.PROTECTED, ("arrears",)),
    ),
    ("T15", [(0, "50", {"forced": "off"})], (a.NORMAL, a.OFF, a.FORCED_OFF, ())),
    (
        "T16",
        [(0, "50"), (1, "-1", {"forced": "on", "overload_at": 1})],
        (a.ARREARS, a.ON, a.FORCED_ON, ("arrears", "overload")),
    ),
    (
        "T17",
        [(0, "50"), (1, "50", {"overload_at": 1})],
        (a.NORMAL, a.OFF, a.OVERLOAD, ("overload",)),
    ),
    (
        "T18",
        [(0, "50", {"overload_at": 0}), (3, "50", {"overload_at": 0, "overload_reset_at": 2})],
        (a.NORMAL, a.ON, a.CREDIT_OK, ()),
    ),
    (
        "T19",
        [
            (0, "50", {"overload_at": 0, "settings": AUTO}),
            (5, "50", {"overload_at": 0, "settings": AUTO}),
        ],
        (a.NORMAL, a.ON, a.CREDIT_OK, ()),
    ),
    (
        "T20",
        [(0, "50"), (1, "50", {"overload_at": 1, "protect": True})],
        (a.NORMAL, a.ON, a.PROTECTED, ("overload",)),
    ),
    (
        "T21",
        [(0, "50", {"settings": NO_REMINDER}), (1, "5", {"settings": NO_REMINDER})],
        (a.ALARM2, a.ON, a.CREDIT_LOW, ("alarm2",)),
    ),
    (
        "T22",
        [(0, "50", {"settings": OD}), (1, "-5", {"settings": OD})],
        (a.ALARM2, a.OFF, a.REMINDER_CUT, ("alarm2",)),
    ),
    ("T23", [*T7_STEPS, (30, "0.5")], (a.ARREARS, a.OFF, a.CUT_ARREARS, ())),
]


@pytest.mark.parametrize(
    ("steps", "expected"), [c[1:] for c in TRANSITIONS], ids=[c[0] for c in TRANSITIONS]
)
def test_transition(steps, expected):
    _state, decision = run(steps)[-1]
    level, relay, reason, notices = expected
    assert (decision.level, decision.relay, decision.reason) == (level, relay, reason)
    assert tuple(n.kind for n in decision.notices) == notices
    assert decision.text == a.REASON_TEXTS[reason]


def test_every_row_of_the_documented_table_has_a_test():
    table = (Path(__file__).resolve().parents[2] / "docs" / "alarms.md").read_text()
    rows = [line.split()[0] for line in table.splitlines() if line.strip().startswith("T")]
    ids = [row for row in rows if row[1:].isdigit()]
    assert ids == [c[0] for c in TRANSITIONS]


# === DETAILS OF THE TRANSITIONS === #


def test_reminder_cut_window_and_wake_up_time():
    (_s1, d1), (_s2, d2), (s3, d3) = run(T3_STEPS)
    assert d1.wake_at is None and d2.wake_at is None
    assert d3.reminder_until == minute(2) + timedelta(minutes=2) == d3.wake_at
    assert d3.changed and not d2.changed and s3.reminder_until == d3.reminder_until
    # still within the window one minute later: still off, no new notice
    _s, d = run([*T3_STEPS, (3, "4.9")])[-1]
    assert (d.relay, d.reason, d.notices) == (a.OFF, a.REMINDER_CUT, ())
    # at the end of the window (T5): on, changed, no wake-up any more
    _s, d = run([*T3_STEPS, (4, "4.9")])[-1]
    assert d.relay == a.ON and d.changed and d.wake_at is None and d.reminder_until is None


def test_reminder_happens_once_per_alarm2_episode():
    steps = [*T3_STEPS, (4, "4.9"), (30, "4"), (31, "10.5"), (32, "9")]  # 10.5 < 10 + 1
    decisions = [d for _s, d in run(steps)]
    assert [d.reason for d in decisions[3:]] == [a.CREDIT_LOW] * 4
    # a recharge out of alarm 2 re-arms it: the next fall cuts for a reminder again
    steps = [*T3_STEPS, (4, "4.9"), (31, "10.5", {"recharge": True}), (32, "9")]
    _s, d = run(steps)[-1]
    assert (d.reason, [n.key for n in d.notices]) == (a.REMINDER_CUT, ["alarm2#1"])


def test_recharge_out_of_arrears_restores_without_reminder_and_keys_match():
    results = run([*T7_STEPS, (40, "5", {"recharge": True})])
    cut, restored = results[1][1], results[2][1]
    assert [n.key for n in cut.notices] == ["arrears#0"]
    assert [n.key for n in restored.notices] == ["restored#0"]
    assert restored.changed and restored.relay == a.ON and restored.reminder_until is None
    # back into arrears later: a new episode, new keys
    _s, d = run([*T7_STEPS, (40, "5", {"recharge": True}), (50, "0")])[-1]
    assert [n.key for n in d.notices] == ["arrears#1"]


def test_arrears_hovering_without_recharge_never_toggles():
    steps = [*T7_STEPS, (2, "0.01"), (3, "0"), (4, "0.5"), (5, "-0.2"), (6, "0.99")]
    decisions = [d for _s, d in run(steps)][1:]
    assert {(d.relay, d.reason) for d in decisions} == {(a.OFF, a.CUT_ARREARS)}
    assert [n.kind for d in decisions for n in d.notices] == ["arrears"]
    # reaching the cut-off plus the hysteresis (an adjustment) restores supply once
    _s, d = run([*steps, (7, "1")])[-1]
    assert (d.level, d.relay, [n.kind for n in d.notices]) == (a.ALARM2, a.ON, ["restored"])


def test_recharge_not_enough_to_leave_arrears_keeps_supply_off():
    _s, d = run([*T7_STEPS, (40, "-0.5", {"recharge": True})])[-1]
    assert (d.level, d.relay, d.notices) == (a.ARREARS, a.OFF, ())


def test_overload_notice_once_per_trip_and_new_trip_notifies_again():
    steps = [(0, "50", {"overload_at": 0}), (1, "50", {"overload_at": 0})]
    (_s, d0), (_s2, d1) = run(steps)
    assert [n.kind for n in d0.notices] == ["overload"] and d1.notices == ()
    assert d1.relay == a.OFF and "manager must reset" in d0.notices[0].text
    steps = [
        *steps,
        (2, "50", {"overload_at": 0, "overload_reset_at": 2}),
        (3, "50", {"overload_at": 3}),
    ]
    _s, d = run(steps)[-1]
    assert d.relay == a.OFF and [n.key for n in d.notices] == [f"overload@{minute(3).isoformat()}"]


def test_overload_auto_reset_wakes_up_at_the_reset_time():
    _s, d = run([(0, "50", {"overload_at": 0, "settings": AUTO})])[-1]
    assert d.relay == a.OFF and d.wake_at == minute(5)
    assert "automatically" in d.notices[0].text
    _s, d = run(
        [
            (0, "50", {"overload_at": 0, "settings": AUTO}),
            (4, "50", {"overload_at": 0, "settings": AUTO}),
        ]
    )[-1]
    assert d.relay == a.OFF and d.wake_at == minute(5)


def test_forced_state_wins_and_notices_still_flow():
    _s, d = run([(0, "50"), (1, "15", {"forced": "off"})])[-1]
    assert (d.relay, d.reason, [n.kind for n in d.notices]) == (a.OFF, a.FORCED_OFF, ["alarm1"])
    _s, d = run([*T3_STEPS[:-1], (2, "5", {"forced": "on"})])[-1]
    assert (d.relay, d.reason) == (a.ON, a.FORCED_ON)
    # the reminder window still runs underneath: releasing the force inside it cuts
    _s, d = run([*T3_STEPS[:-1], (2, "5", {"forced": "on"}), (3, "5")])[-1]
    assert (d.relay, d.reason) == (a.OFF, a.REMINDER_CUT)


def test_protect_mode_never_cuts():
    for steps in (T3_STEPS, T7_STEPS, [(0, "50", {"overload_at": 0})]):
        steps = [(m, b, {**(extra[0] if extra else {}), "protect": True}) for m, b, *extra in steps]
        for _s, d in run(steps):
            assert (d.relay, d.reason) == (a.ON, a.PROTECTED)


def test_level_boundaries():
    assert S.level_of(D("20")) == a.NORMAL
    assert S.level_of(D("19.9999")) == a.ALARM1
    assert S.level_of(D("10")) == a.ALARM1
    assert S.level_of(D("9.9999")) == a.ALARM2
    assert S.level_of(D("0.0001")) == a.ALARM2
    assert S.level_of(D("0")) == a.ARREARS
    assert OD.level_of(D("-14.9999")) == a.ALARM2
    assert OD.level_of(D("-15")) == a.ARREARS
    assert OD.cut_threshold == D("-15")


def test_notice_texts_speak_to_the_tenant():
    _s, d = run(T3_STEPS)[-1]
    assert d.notices[0].text == (
        "Credit is very low: 5.00 left (alarm 2 at 10.00). Supply is cut for 2 minute(s) as a "
        "reminder. Please recharge."
    )
    _s, d = run(T2_STEPS)[-1]
    assert d.notices[0].text == "Credit is low: 15.00 left (alarm 1 at 20.00). Please recharge."


def test_state_round_trips_through_json():
    for state, _d in run([*T3_STEPS, (3, "0"), (9, "50", {"recharge": True, "overload_at": 9})]):
        assert a.AlarmState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_same_state_inputs_and_time_give_the_same_decision():
    state, _d = run(T2_STEPS)[-1]
    inputs = a.AlarmInputs(D("5"), S)
    assert a.evaluate(state, inputs, minute(3)) == a.evaluate(state, inputs, minute(3))


# === BAD INPUT === #


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"alarm1": D("20"), "alarm2": D("30")},
            r"^Alarm 1 \(20\.00\) must be higher than alarm 2 \(30\.00\)\.$",
        ),
        ({"alarm1": D("20"), "alarm2": D("20")}, "must be higher than alarm 2"),
        ({"alarm1": D("20"), "alarm2": D("-1")}, r"Alarm 2 \(-1\.00\) cannot be negative"),
        ({"alarm1": 20.0, "alarm2": D("1")}, "Alarm 1 must be an exact amount"),
        ({"alarm1": "x", "alarm2": D("1")}, "Alarm 1 is not a number"),
        (
            {"alarm1": D("20"), "alarm2": D("1"), "overdraft_limit": D("-5")},
            "overdraft limit .* negative",
        ),
        ({"alarm1": D("20"), "alarm2": D("1"), "hysteresis": D("-1")}, "hysteresis"),
        ({"alarm1": D("20"), "alarm2": D("1"), "reminder_cut": timedelta(-1)}, "reminder cut"),
        ({"alarm1": D("20"), "alarm2": D("1"), "overload_auto_reset": timedelta(0)}, "auto-reset"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(a.ThresholdError, match=message) as info:
        a.AlarmSettings(**kwargs)
    assert isinstance(info.value, a.AlarmError) and isinstance(info.value, ValueError)


def test_bad_inputs():
    with pytest.raises(a.AlarmError, match="forces supply 'on' or 'off'"):
        a.evaluate(None, a.AlarmInputs(D(1), S, forced="maybe"), T0)
    with pytest.raises(a.AlarmError, match="exact amount"):
        a.evaluate(None, a.AlarmInputs(1.5, S), T0)


# === PROPERTIES === #

balances = st.integers(-3000, 6000).map(lambda n: D(n).scaleb(-2))


@settings(max_examples=200, deadline=None)
@given(walk=st.lists(st.integers(-99, 90).map(lambda n: D(n).scaleb(-2)), min_size=1, max_size=60))
def test_hovering_at_a_threshold_sends_one_notice_and_never_toggles(walk):
    """Balance going up and down around alarm 1 by less than the hysteresis: one notice."""
    state = None
    sent = []
    relays = set()
    for i, delta in enumerate(walk):
        inputs = a.AlarmInputs(S.alarm1 + delta, S)
        state, decision = a.evaluate(state, inputs, minute(i))
        sent.extend(decision.notices)
        relays.add(decision.relay)
    assert len(sent) <= 1 and relays == {a.ON}
    assert [n.kind for n in sent] == (["alarm1"] if any(d < 0 for d in walk) else [])


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(balances, st.booleans(), st.integers(0, 5)), min_size=1, max_size=40)
)
def test_notice_keys_are_never_reused_and_cut_follows_the_balance(steps):
    state = None
    keys = []
    recharge_at = None
    now = T0
    for balance, recharge, wait in steps:
        now += timedelta(minutes=wait)
        if recharge:
            recharge_at = now
        inputs = a.AlarmInputs(balance, S, last_recharge_at=recharge_at)
        state, decision = a.evaluate(state, inputs, now)
        keys.extend(n.key for n in decision.notices)
        latched = decision.level == a.ARREARS and 0 < balance < S.hysteresis
        assert decision.level == S.level_of(balance) or latched
        if balance <= 0 or latched:
            assert (decision.relay, decision.reason) == (a.OFF, a.CUT_ARREARS)
        if balance >= S.alarm2:
            assert decision.relay == a.ON
        assert len(decision.notices) <= 2  # a level notice, and "restored" at most
    assert len(keys) == len(set(keys))


# --- thresholds computed once per settings (performance work) --- #


def test_thresholds_follow_settings_rebuilt_with_replace():
    wider = dataclasses.replace(S, alarm1=D("30"), hysteresis=D("5"))
    steps = [(0, "50"), (1, "25"), (2, "33"), (3, "25")]
    kinds = [[n.kind for n in d.notices] for _s, d in run(steps, wider)]
    # 25 < 30 notifies; 33 < 30 + 5 does not re-arm, so 25 again is silent
    assert kinds == [[], ["alarm1"], [], []]
    assert [d.level for _s, d in run(steps)] == ["normal", "normal", "normal", "normal"]


def test_settings_without_precomputed_thresholds_still_evaluate():
    bare = object.__new__(a.AlarmSettings)  # e.g. built by a deserializer, no __post_init__
    for name, value in vars(S).items():
        if not name.startswith("_"):
            object.__setattr__(bare, name, value)
    steps = [(0, "50"), (1, "15"), (2, "5"), (3, "-1"), (4, "50", {"recharge": True})]
    assert run(steps, bare) == run(steps)
