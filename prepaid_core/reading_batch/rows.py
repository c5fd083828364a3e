"""M5: the named rows of a readings batch, the meters' states it is judged against, and the
text of a row in the store's COPY format.

A batch goes parse (:class:`ParsedRow`) -> judge (:class:`StoredRow`, its COPY line made
as it is judged) -> store; the meters come as :class:`MeterRecord` from the database and
become a :class:`MeterState` as their first row is judged.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from ..readings import MeterLimits

#: measured values a reading may carry, besides the register totals
MEASURES = (
    "tou_sharp",
    "tou_peak",
    "tou_flat",
    "tou_valley",
    "voltage",
    "current",
    "power",
    "power_factor",
    "meter_balance",
)
MEASURE_SET = frozenset(MEASURES)
#: a measure's size is below this: its field's digits (precision - scale) as the store's
#: range (X1; the add-on's tests check them against the fields)
MEASURE_LIMITS = {
    "tou_sharp": 1e12,
    "tou_peak": 1e12,
    "tou_flat": 1e12,
    "tou_valley": 1e12,
    "voltage": 1e8,
    "current": 1e9,
    "power": 1e8,
    "power_factor": 1e3,
    "meter_balance": 1e12,
}
#: columns every COPY writes, in order (the first fields of :class:`StoredRow`); the
#: measures present in a batch follow
BASE_COLUMNS = (
    "meter_id",
    "company_id",
    "read_at",
    "received_at",
    "source",
    "forward_total",
    "reverse_total",
    "total",
    "consumption",
    "relay_state",
    "status_word",
    "flags",
    "flag_reason",
    "chargeable",
)
RELAY_STATES = ("on", "off")
#: what a flag reason must not hold to be written into a COPY line unquoted
UNSAFE = re.compile(r'[\t\n\r"\\]')


class ParsedRow(NamedTuple):
    """A row of a batch once its values are parsed, before its meter is known."""

    meter_id: object  # as given (the resolved id once the meter is known)
    read_at: datetime
    index: int  # in the batch
    forward: Decimal
    reverse: Decimal | None
    measured: tuple  # the values of the batch's measures
    relay: str | None
    status: int | None
    source: str


class StoredRow(NamedTuple):
    """A judged row: the :data:`BASE_COLUMNS` values (times as text, as COPY takes them),
    the batch's measures, its COPY line (None: the csv module quotes it), and what the rest
    of the batch needs (read time, whether it moves the baseline, index in the batch)."""

    meter_id: int
    company_id: int
    read_at_text: str
    received_at: str
    source: str
    forward_total: Decimal
    reverse_total: Decimal | None
    total: Decimal
    consumption: Decimal
    relay_state: str | None
    status_word: int | None
    flags: str | None
    flag_reason: str | None
    chargeable: bool
    measured: tuple
    line: str | None
    read_at: datetime
    moves: bool
    index: int

    def copy_values(self):
        """The values of the COPY columns, measures last (for the csv module)."""
        return (*self[: len(BASE_COLUMNS)], *self.measured)


#: build named rows from plain tuples in C (``map`` over zipped columns)
parsed_row = functools.partial(tuple.__new__, ParsedRow)
stored_row = functools.partial(tuple.__new__, StoredRow)


class MeterRecord(NamedTuple):
    """A meter as the batch's look-up reads it; ``shared`` is the text of what many meters
    share (see :meth:`StateBuilder.profile_of`), decoded once per distinct value."""

    id: int
    latest_id: int
    baseline_total: str | None
    baseline_at: str | None
    shared: str


meter_record = functools.partial(tuple.__new__, MeterRecord)


class MeterProfile(NamedTuple):
    """What many meters share: company, model, CT and PT ratios and their product (the
    multiplier), relay and connection state; ``scaled``: a transformer scales its measures
    to the primary side (``prepaid_core.readings.measure_scaler``)."""

    company_id: int
    multiplier: Decimal
    ct: Decimal
    pt: Decimal
    scaled: bool
    bidirectional: bool
    limits: MeterLimits
    mismatched_relays: frozenset  # reported relay states that differ from the one asked
    plain: bool  # multiplier 1, forward only: the total is the register as read
    lost: bool  # its connection was lost: a reading restores it (an event)
    actual_relay: str  # the relay state it last reported


class MeterState:
    """A meter during a batch: its profile and its moving baseline."""

    __slots__ = ("base_at", "base_total", "id", "latest_id", "profile")

    def __init__(self, meter_id, latest_id, profile, base_total, base_at):
        self.id, self.latest_id, self.profile = meter_id, latest_id, profile
        self.base_total, self.base_at = base_total, base_at


def relay_mismatch(state: str, has_relay: bool, desired: str, actual: str) -> bool:
    """Whether a meter's relay is not (yet) what was asked of it: a meter in service,
    with a relay, whose reported state differs from the desired one."""
    return state == "in_service" and bool(has_relay) and actual != desired


def relay_event(profile: MeterProfile, relay: str | None) -> bool:
    """Whether a reading reporting ``relay`` (None: none) changes its meter in a way logged
    as an event: a lost connection restored, or the relay found in another state."""
    actual = profile.actual_relay
    return profile.lost or (relay is not None and actual != "unknown" and actual != relay)


class StateBuilder:
    """Turns the meters' look-up rows into profiles and states, without a database: the
    few meter models are read before (``model_flags``: bidirectional, has relay;
    ``limits``: their :class:`MeterLimits`, by model id)."""

    def __init__(self, model_flags, limits):
        self._model_flags, self._limits = model_flags, limits
        self._profiles, self._times = {}, {}

    def profile_of(self, shared: str) -> MeterProfile:
        """The profile of a look-up's shared text: company, multiplier, CT and PT ratios,
        model, state, desired relay, connection and reported relay, joined by ``|`` (an
        empty number: 1)."""
        profile = self._profiles.get(shared)
        if profile is None:
            profile = self._profiles[shared] = self._decode(shared)
        return profile

    def _decode(self, shared):
        company_id, mult, ct, pt, model_id, state, desired, connection, actual = shared.split("|")
        multiplier, ct, pt = map(_number, (mult, ct, pt))
        bidirectional, has_relay = self._model_flags[int(model_id)]
        mismatched = frozenset(
            relay for relay in RELAY_STATES if relay_mismatch(state, has_relay, desired, relay)
        )
        return MeterProfile(
            int(company_id),
            multiplier,
            ct,
            pt,
            ct != 1 or pt != 1,
            bidirectional,
            self._limits[int(model_id)],
            mismatched,
            multiplier == 1 and not bidirectional,
            connection == "lost",
            actual,
        )

    def time_of(self, text: str) -> datetime:
        """The datetime of a look-up's baseline time (text), decoded once per value."""
        at = self._times.get(text)
        if at is None:
            at = self._times[text] = datetime.fromisoformat(text)
        return at

    def state_of(self, record: MeterRecord) -> MeterState:
        base_at = record.baseline_at
        if base_at is not None:
            base_at = self.time_of(base_at)
        base_total = Decimal(record.baseline_total) if base_at else None
        return MeterState(
            record.id, record.latest_id, self.profile_of(record.shared), base_total, base_at
        )


def _number(text: str) -> Decimal:
    """A ratio of the look-up's shared text (numeric or float8 text; empty: 1)."""
    if "." in text and "e" not in text.lower():
        text = text.rstrip("0").rstrip(".")
    return Decimal(text or "1")


def copy_line_format(measure_count: int) -> str:
    """The %-format of a store row's COPY line: meter, company, the read time to the source
    (one text: ``middle_text``), forward, reverse, total, consumption, relay, status word,
    flags, reason, chargeable, then the measures' texts."""
    return "%s\t%s%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s" + "\t%s" * measure_count + "\n"


def middle_text(read_at_text: str, received: str, source: str) -> str:
    """The COPY columns from the read time to the source, tabs around."""
    return f"\t{read_at_text}\t{received}\t{source}\t"


def measure_texts(measured: tuple) -> tuple:
    """The COPY texts of measured values (empty: none)."""
    if None in measured:
        return tuple("" if value is None else repr(value) for value in measured)
    return tuple(map(repr, measured))
