"""Alarm levels and the desired supply state (B8): a pure state machine.

``evaluate(state, inputs, now) -> (new_state, decision)``: from the credit the tenant can
still use and the manager's settings, the level (normal, alarm 1, alarm 2, arrears), the
*desired* relay state with its reason, the notices to send (each with a stable ``key``, so
a repeated run sends nothing twice) and when to evaluate again (``decision.wake_at``). The
caller stores the frozen :class:`AlarmState`; :class:`AlarmChanges` groups the outcomes of
many meters into what to write, in batches.

See docs/alarms.md (levels, transition table, re-arming and priority rules).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from prepaid_core.errors import PrepaidError
from prepaid_core.exact import exact_decimal

# === CONSTANTS === #

NORMAL = "normal"
ALARM1 = "alarm1"
ALARM2 = "alarm2"
ARREARS = "arrears"
LEVELS = (NORMAL, ALARM1, ALARM2, ARREARS)
LEVEL_LABELS = {
    NORMAL: "Normal",
    ALARM1: "Alarm 1",
    ALARM2: "Alarm 2",
    ARREARS: "Arrears",
}

ON = "on"
OFF = "off"

# Reasons of the desired relay state, by priority.
FORCED_ON = "forced_on"
FORCED_OFF = "forced_off"
PROTECTED = "protected"
OVERLOAD = "overload"
CUT_ARREARS = "arrears"
REMINDER_CUT = "reminder_cut"
CREDIT_LOW = "credit_low"
CREDIT_OK = "credit_ok"
REASON_TEXTS = {
    FORCED_ON: "Supply forced on by a manager.",
    FORCED_OFF: "Supply forced off by a manager.",
    PROTECTED: "Protect mode: supply is never cut.",
    OVERLOAD: "Supply cut: power above the meter's limit (overload).",
    CUT_ARREARS: "Supply cut: credit used up. It comes back on after a recharge.",
    REMINDER_CUT: "Supply cut briefly to remind the tenant that credit is low.",
    CREDIT_LOW: "Supply on; credit is low.",
    CREDIT_OK: "Supply on.",
}

# Notice kinds.
NOTICE_ALARM1 = ALARM1
NOTICE_ALARM2 = ALARM2
NOTICE_ARREARS = ARREARS
NOTICE_RESTORED = "restored"
NOTICE_OVERLOAD = "overload"

DEFAULT_REMINDER_CUT = timedelta(minutes=2)
DEFAULT_HYSTERESIS = Decimal("1.00")
_ZERO = Decimal(0)
_LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
_NOTICE_LEVELS = (ALARM1, ALARM2, ARREARS)


# === ERRORS === #


class AlarmError(PrepaidError):
    """Alarm settings or inputs are wrong."""


class ThresholdError(AlarmError):
    """Alarm thresholds are not alarm 1 > alarm 2 >= 0, or a limit is negative."""


# === DEFINITIONS === #


def _fmt(amount: Decimal) -> str:
    if amount == amount.quantize(Decimal("0.01")):
        return f"{amount.quantize(Decimal('0.01')):f}"
    return f"{amount.normalize():f}"


def _amount(value: object, what: str) -> Decimal:
    return exact_decimal(value, what, ThresholdError, amount=True)


def validate_thresholds(alarm1: Decimal, alarm2: Decimal) -> None:
    """Raise :class:`ThresholdError` unless alarm 1 > alarm 2 >= 0."""
    if alarm2 < 0:
        raise ThresholdError(
            f"Alarm 2 ({_fmt(alarm2)}) cannot be negative.",
            code="alarm.alarm2_negative",
            values={"alarm2": alarm2},
        )
    if alarm1 <= alarm2:
        raise ThresholdError(
            f"Alarm 1 ({_fmt(alarm1)}) must be higher than alarm 2 ({_fmt(alarm2)}).",
            code="alarm.order",
            values={"alarm1": alarm1, "alarm2": alarm2},
        )


@dataclass(frozen=True)
class AlarmSettings:
    """Per meter (or account) alarm configuration, validated when built."""

    alarm1: Decimal
    alarm2: Decimal
    overdraft_limit: Decimal = _ZERO
    reminder_cut: timedelta = DEFAULT_REMINDER_CUT
    hysteresis: Decimal = DEFAULT_HYSTERESIS
    overload_auto_reset: timedelta | None = None

    def __post_init__(self):
        object.__setattr__(self, "alarm1", _amount(self.alarm1, "Alarm 1"))
        object.__setattr__(self, "alarm2", _amount(self.alarm2, "Alarm 2"))
        object.__setattr__(
            self, "overdraft_limit", _amount(self.overdraft_limit, "The overdraft limit")
        )
        object.__setattr__(self, "hysteresis", _amount(self.hysteresis, "The hysteresis"))
        self.validate()
        object.__setattr__(self, "_derived", _derive(self))

    def validate(self) -> None:
        validate_thresholds(self.alarm1, self.alarm2)
        if self.overdraft_limit < 0:
            raise ThresholdError(
                f"The overdraft limit ({_fmt(self.overdraft_limit)}) cannot be negative; "
                "use 0 for no overdraft.",
                code="alarm.overdraft_negative",
                values={"amount": self.overdraft_limit},
            )
        if self.hysteresis < 0:
            raise ThresholdError(
                f"The hysteresis ({_fmt(self.hysteresis)}) cannot be negative.",
                code="alarm.hysteresis_negative",
                values={"amount": self.hysteresis},
            )
        if not isinstance(self.reminder_cut, timedelta) or self.reminder_cut < timedelta(0):
            raise ThresholdError(
                "The reminder cut is a duration of zero (no reminder) or more, "
                f"not {self.reminder_cut!r}.",
                code="alarm.reminder_negative",
            )
        if self.overload_auto_reset is not None and (
            not isinstance(self.overload_auto_reset, timedelta)
            or self.overload_auto_reset <= timedelta(0)
        ):
            raise ThresholdError(
                "The overload auto-reset is a positive duration, or none for a manual reset, "
                f"not {self.overload_auto_reset!r}.",
                code="alarm.auto_reset_not_positive",
            )

    @property
    def cut_threshold(self) -> Decimal:
        """Supply is cut when the balance is at or below this (minus the overdraft limit)."""
        return -self.overdraft_limit

    def level_of(self, balance: Decimal) -> str:
        """The alarm level of ``balance``."""
        if balance <= -self.overdraft_limit:
            return ARREARS
        if balance < self.alarm2:
            return ALARM2
        if balance < self.alarm1:
            return ALARM1
        return NORMAL

    def threshold(self, level: str) -> Decimal:
        """The balance at which ``level`` is entered (re-armed at it + hysteresis)."""
        if level == ALARM1:
            return self.alarm1
        if level == ALARM2:
            return self.alarm2
        return -self.overdraft_limit


class AlarmInputs(NamedTuple):
    """What the state machine looks at, besides its state and the time."""

    balance: Decimal  # credit the tenant can still use (balance + preset outstanding)
    settings: AlarmSettings
    protect: bool = False
    forced: str | None = None  # None, "on" or "off": the manager's forced relay state
    overload_at: datetime | None = None  # latest overload trip
    overload_reset_at: datetime | None = None  # manager's latest overload reset
    last_recharge_at: datetime | None = None


class AlarmState(NamedTuple):
    """What the machine remembers between evaluations (store it with the meter;
    ``to_json``/``from_json``). ``rearmed`` counts, per level, how often its notice was
    re-armed (it numbers the notice keys); treat it as read-only."""

    level: str = NORMAL
    notified: frozenset[str] = frozenset()  # levels notified and not re-armed since
    rearmed: Mapping[str, int] = MappingProxyType({})
    reminder_until: datetime | None = None
    overload_notified_at: datetime | None = None
    recharge_seen_at: datetime | None = None
    relay: str = ON
    reason: str = CREDIT_OK

    def to_json(self) -> dict:
        def iso(value):
            return value.isoformat() if value else None

        return {
            "level": self.level,
            "notified": sorted(self.notified),
            "rearmed": dict(self.rearmed),
            "reminder_until": iso(self.reminder_until),
            "overload_notified_at": iso(self.overload_notified_at),
            "recharge_seen_at": iso(self.recharge_seen_at),
            "relay": self.relay,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict) -> AlarmState:
        def dt(value):
            return datetime.fromisoformat(value) if value else None

        return cls(
            level=data["level"],
            notified=frozenset(data["notified"]),
            rearmed=MappingProxyType(dict(data["rearmed"])),
            reminder_until=dt(data["reminder_until"]),
            overload_notified_at=dt(data["overload_notified_at"]),
            recharge_seen_at=dt(data["recharge_seen_at"]),
            relay=data["relay"],
            reason=data["reason"],
        )


class Notice(NamedTuple):
    """A message to send to the tenant (and managers); ``key`` deduplicates it.  ``text``
    is its English wording; ``values`` (balance, thresholds, reminder minutes, whether an
    overload resets itself) let a caller word it in the tenant's language and currency."""

    kind: str
    key: str
    text: str
    values: dict | None = None


class Decision(NamedTuple):
    """What to do now."""

    level: str
    relay: str  # "on" or "off": the meter's desired relay state
    reason: str  # one of the reason codes above
    text: str  # the reason for a human
    notices: tuple[Notice, ...]
    reminder_until: datetime | None  # end of the reminder cut, while it runs
    wake_at: datetime | None  # evaluate again at this time (end of a cut window)
    changed: bool  # relay differs from the previous decision


# === STATE MACHINE === #

_new = tuple.__new__  # NamedTuple instances without the keyword-parsing __new__
_INITIAL = AlarmState()
_FORCED = (None, ON, OFF)
# Levels whose notices a balance at each rank has entered (for the "already sent" check).
_ENTERING = tuple(frozenset(_NOTICE_LEVELS[:rank]) for rank in range(len(LEVELS)))
# Thresholds are computed once, with more digits than any amount has (whatever the context).
_PRECISE = decimal.Context(prec=100, traps=[decimal.InvalidOperation])


def _notice(kind: str, count: int, balance: Decimal, settings: AlarmSettings) -> Notice:
    b = _fmt(balance)
    if kind == ALARM1:
        text = f"Credit is low: {b} left (alarm 1 at {_fmt(settings.alarm1)}). Please recharge."
    elif kind == ALARM2:
        text = f"Credit is very low: {b} left (alarm 2 at {_fmt(settings.alarm2)})."
        if settings.reminder_cut:
            minutes = settings.reminder_cut.total_seconds() / 60
            text += f" Supply is cut for {minutes:g} minute(s) as a reminder. Please recharge."
        else:
            text += " Please recharge."
    elif kind == ARREARS:
        text = f"Credit used up ({b}): supply is cut until you recharge."
    else:  # restored
        text = f"Credit is back ({b}): supply is restored."
    minutes = settings.reminder_cut.total_seconds() / 60 if settings.reminder_cut else 0
    values = {
        "balance": balance,
        "alarm1": settings.alarm1,
        "alarm2": settings.alarm2,
        "reminder_minutes": minutes,
    }
    return Notice(kind, f"{kind}#{count}", text, values)


class _Thresholds(NamedTuple):
    """The balances :func:`evaluate` compares with, computed once per settings."""

    cut: Decimal  # arrears at or below (minus the overdraft limit)
    alarm2: Decimal
    alarm1: Decimal
    arrears_back: Decimal  # a latched arrears cut ends here without a recharge
    rearm: tuple  # (level, balance that re-arms its notice, rank) of each notice level


def _derive(settings: AlarmSettings) -> _Thresholds:
    """The :class:`_Thresholds` of ``settings``, with more digits than any amount has."""
    with decimal.localcontext(_PRECISE):
        cut = -settings.overdraft_limit
        hysteresis = settings.hysteresis
        rearm = tuple(
            (level, settings.threshold(level) + hysteresis, _LEVEL_RANK[level])
            for level in _NOTICE_LEVELS
        )
        return _new(_Thresholds, (cut, settings.alarm2, settings.alarm1, cut + hysteresis, rearm))


def evaluate(
    state: AlarmState | None, inputs: AlarmInputs, now: datetime
) -> tuple[AlarmState, Decision]:
    """One step of the machine; pure: same state, inputs and time give the same result.

    The level of the balance; leaving a latched arrears cut; re-arming the notices of levels
    left; entering levels (one notice, the reminder cut); the overload trip; then the relay
    by priority and when to evaluate again."""
    (
        old_level,
        notified,
        rearmed,
        reminder_until,
        overload_notified_at,
        recharge_seen_at,
        old_relay,
        _old_reason,
    ) = state or _INITIAL
    balance, settings, protect, forced, overload_at, overload_reset_at, recharge = inputs
    if balance.__class__ is not Decimal or forced is not None:
        _check_inputs(balance, forced)
    try:
        thresholds = settings._derived
    except AttributeError:  # settings built without __post_init__
        thresholds = _derive(settings)
    cut, alarm2, alarm1, _arrears_back, _rearm_at = thresholds
    # the level's rank in LEVELS: normal, alarm 1, alarm 2, arrears
    rank = 3 if balance <= cut else 2 if balance < alarm2 else 1 if balance < alarm1 else 0
    new_recharge = recharge is not None and (
        recharge_seen_at is None or recharge > recharge_seen_at
    )
    notices = ()
    if old_level == ARREARS and rank != 3:
        rank, notices = _leave_arrears(rank, balance, settings, thresholds, rearmed, new_recharge)
    if notified:
        notified, rearmed = _rearm(notified, rearmed, thresholds, balance, rank, new_recharge)
    if rank and not _ENTERING[rank].issubset(notified):
        notice, notified, reminder_until = _enter(
            rank, notified, rearmed, balance, settings, now, reminder_until
        )
        notices += (notice,)
    if reminder_until is not None and (rank != 2 or now >= reminder_until):
        reminder_until = None
    tripped, overload_end = False, None
    if overload_at is not None:
        tripped, overload_end = _overload_trip(overload_at, overload_reset_at, settings, now)
        if tripped and overload_at != overload_notified_at:
            notices += (_overload_notice(overload_at, overload_end),)
            overload_notified_at = overload_at
    relay, reason = _relay(forced, protect, tripped, rank, reminder_until)
    level, seen = LEVELS[rank], recharge if new_recharge else recharge_seen_at
    new_state = _new(
        AlarmState,
        (level, notified, rearmed, reminder_until, overload_notified_at, seen, relay, reason),
    )
    wake_at = (
        _wake_at(reminder_until, overload_end if tripped else None)
        if reminder_until is not None or tripped
        else None
    )
    changed = relay != old_relay
    decision = _new(
        Decision,
        (level, relay, reason, REASON_TEXTS[reason], notices, reminder_until, wake_at, changed),
    )
    return new_state, decision


def _check_inputs(balance, forced) -> None:
    if balance.__class__ is not Decimal and (
        isinstance(balance, bool) or not isinstance(balance, (Decimal, int))
    ):
        raise AlarmError(f"The balance must be an exact amount, not {balance!r}.")
    if forced is not None and forced not in _FORCED:
        raise AlarmError(f"A manager forces supply 'on' or 'off' (or not at all), not {forced!r}.")


def _leave_arrears(rank, balance, settings, thresholds, rearmed, new_recharge) -> tuple:
    """(rank, notices) of a balance above the cut-off after arrears: the cut is latched
    (arrears) until a recharge, or until the balance is the hysteresis above the cut-off;
    then the tenant is told supply is back (once per arrears episode)."""
    if new_recharge or balance >= thresholds.arrears_back:
        return rank, (_notice(NOTICE_RESTORED, rearmed.get(ARREARS, 0), balance, settings),)
    return 3, ()


def _rearm(notified, rearmed, thresholds, balance, rank, new_recharge) -> tuple:
    """(notified, rearmed): levels the balance has clearly left (hysteresis), or left after
    a recharge, may be notified again; their re-arming count numbers the next notice."""
    for level, threshold, level_rank in thresholds.rearm:
        if level in notified and (balance >= threshold or (new_recharge and rank < level_rank)):
            notified = notified - {level}
            rearmed = MappingProxyType({**rearmed, level: rearmed.get(level, 0) + 1})
    return notified, rearmed


def _enter(rank, notified, rearmed, balance, settings, now, reminder_until) -> tuple:
    """(notice, notified, reminder end) on entering levels: one notice, for the most severe
    level newly entered (the others count as sent); alarm 2 starts the reminder cut."""
    entered = [level for level in _NOTICE_LEVELS[:rank] if level not in notified]
    worst = entered[-1]
    if worst == ALARM2 and settings.reminder_cut:
        reminder_until = now + settings.reminder_cut
    notice = _notice(worst, rearmed.get(worst, 0), balance, settings)
    return notice, notified.union(entered), reminder_until


def _overload_trip(overload_at, overload_reset_at, settings, now) -> tuple:
    """(tripped, end of the trip or None): from the trip until a manager's reset or, if
    set, the auto-reset time."""
    tripped = overload_reset_at is None or overload_reset_at < overload_at
    auto_reset = settings.overload_auto_reset
    if tripped and auto_reset is not None:
        overload_end = overload_at + auto_reset
        return now < overload_end, overload_end
    return tripped, None


def _overload_notice(overload_at: datetime, overload_end: datetime | None) -> Notice:
    return Notice(
        NOTICE_OVERLOAD,
        f"{NOTICE_OVERLOAD}@{overload_at.isoformat()}",
        "Supply cut: the power drawn was above the meter's limit (overload). "
        + ("It comes back on automatically." if overload_end else "A manager must reset it."),
        {"automatic": overload_end is not None},
    )


def _relay(forced, protect, tripped, rank, reminder_until) -> tuple[str, str]:
    """(relay, reason), by priority: the manager's forced state, protect mode (never cuts),
    an overload trip, arrears, the reminder cut, on."""
    if forced is not None:
        return (OFF, FORCED_OFF) if forced == OFF else (ON, FORCED_ON)
    if protect:
        return ON, PROTECTED
    if tripped:
        return OFF, OVERLOAD
    if rank == 3:
        return OFF, CUT_ARREARS
    if reminder_until is not None:
        return OFF, REMINDER_CUT
    return (ON, CREDIT_OK) if rank == 0 else (ON, CREDIT_LOW)


def _wake_at(reminder_until: datetime | None, overload_end: datetime | None) -> datetime | None:
    """When a timed decision (reminder cut, overload auto-reset) ends: evaluate again then."""
    if reminder_until is None:
        return overload_end
    if overload_end is not None:
        return min(reminder_until, overload_end)
    return reminder_until


# === MANY METERS === #


class StoredAlarm(NamedTuple):
    """What a meter holds of its alarms (and the account it draws on), as last stored."""

    meter_id: int
    account_id: int
    state: dict | None  # the stored AlarmState, as JSON
    level: str
    relay: str  # the meter's desired relay state
    relay_text: str | None  # and its reason
    wake_at: datetime | None
    own_thresholds: bool  # compared with the meter's thresholds, not its account's


@dataclass
class AlarmChanges:
    """What evaluating many meters changes, grouped for writing in batches."""

    #: (meter id, new state as JSON, wake-up time) of the meters whose state changed
    states: list = field(default_factory=list)
    #: (former level, new level) -> meter ids
    levels: dict = field(default_factory=dict)
    #: (desired relay, reason text) -> meter ids
    relays: dict = field(default_factory=dict)
    #: (account id, Notice) to send
    notices: list = field(default_factory=list)

    def add(self, meter: StoredAlarm, state: AlarmState | None, new_state, decision) -> None:
        """Record the outcome of :func:`evaluate` (from ``state``) for ``meter``."""
        new_json = new_state.to_json()
        if new_json != meter.state or decision.wake_at != meter.wake_at:
            self.states.append((meter.meter_id, new_json, decision.wake_at))
        if decision.level != meter.level:
            self.levels.setdefault((meter.level, decision.level), []).append(meter.meter_id)
        # the meter follows the machine: a change of decision, or a meter that differs
        # (a first evaluation agreeing with the meter's state writes nothing)
        old_reason = state.reason if state else CREDIT_OK
        if decision.relay != meter.relay or (
            decision.reason != old_reason and decision.text != meter.relay_text
        ):
            self.relays.setdefault((decision.relay, decision.text), []).append(meter.meter_id)
        for notice in decision.notices:
            if meter.own_thresholds or notice.kind == NOTICE_OVERLOAD:
                # a meter of its own: its notices are not the account's other meters'
                notice = notice._replace(key=f"{meter.meter_id}:{notice.key}")
            self.notices.append((meter.account_id, notice))
