"""M5: judge a batch's readings against their meters' baselines (flags, consumption, charge)
and make each row's COPY line.

Rows are judged one by one (:meth:`BatchJudge.rows`, any batch), or, for a batch of one row
per meter, a chunk at a time column by column (:meth:`BatchJudge.fleet_chunk`, each step a C
loop).  Both apply the same rules: :func:`register_total`, :func:`judge_reading` (built on
``prepaid_core.readings``), the measures scaled to the primary side (:meth:`BatchJudge.
primary_measures`), :func:`~.rows.relay_event` and one COPY line format.
"""

from __future__ import annotations

import operator
from decimal import Decimal
from itertools import repeat
from typing import NamedTuple

from .. import readings as validation
from .rows import (
    UNSAFE,
    MeterProfile,
    MeterRecord,
    MeterState,
    ParsedRow,
    StoredRow,
    copy_line_format,
    measure_texts,
    middle_text,
    relay_event,
    stored_row,
)

#: a batch of one row per meter is judged this many rows at a time
FLEET_CHUNK = 2000


class Judged(NamedTuple):
    """What a reading means for its row: the verdict of ``prepaid_core.readings``, its flags
    and reason as stored (None: none)."""

    consumption: Decimal
    flags: str | None
    reason: str | None
    chargeable: bool
    moves: bool


class Messages(NamedTuple):
    """The (translated) reasons of the rows refused while judged."""

    duplicate: str
    unknown: str


class MeterLookup(NamedTuple):
    """A batch's meters: by id (a :class:`MeterRecord` until its state is built) and by
    ``(gateway id or None, address)`` (a :class:`MeterState`, or "ambiguous")."""

    by_id: dict
    by_address: dict
    builder: object  # a rows.StateBuilder, or None: no meter found


def register_total(forward, reverse, profile: MeterProfile) -> Decimal:
    """The primary-side total of a reading (:func:`prepaid_core.readings.effective_total`;
    a plain meter's is its register as read)."""
    if profile.plain:
        return forward
    return validation.effective_total(forward, reverse, profile.bidirectional, profile.multiplier)


_NORMAL = (None, None, True, True)


def judge_reading(base_total, base_at, total, read_at, profile: MeterProfile) -> Judged:
    """The verdict on a reading of ``total`` at ``read_at`` after the baseline."""
    limits, multiplier = profile.limits, profile.multiplier
    consumption = validation.normal_consumption(
        base_total, base_at, total, read_at, limits, multiplier
    )
    if consumption is not None:  # most readings: nothing to flag
        return Judged(consumption, *_NORMAL)
    verdict = validation.validate(base_total, base_at, total, read_at, limits, multiplier)
    return Judged(
        verdict.consumption,
        ",".join(verdict.flags) or None,
        verdict.reason or None,
        verdict.chargeable,
        verdict.moves_baseline,
    )


class Followup:
    """What the latest states' update of a batch of one row per meter needs of its rows,
    gathered as they are judged: the meters whose row is late (not their latest), whose
    baseline stays, whose relay is not the one asked, and the changes to log as events,
    ``(meter id, relay, read time, was lost)``."""

    __slots__ = ("changes", "kept", "late", "mismatched")

    def __init__(self):
        self.late, self.kept, self.mismatched, self.changes = [], [], [], []

    def add(self, profile, meter_id, read_at, flags, moves, relay):
        """One row judged against its meter's ``profile``."""
        if flags and "late" in flags:
            self.late.append(meter_id)
            relay = None
        if not moves:
            self.kept.append(meter_id)
        if relay_event(profile, relay):
            self.changes.append((meter_id, relay, read_at, profile.lost))
        if relay in profile.mismatched_relays:
            self.mismatched.append(meter_id)


class BatchJudge:
    """Judges the resolved rows of a batch (:class:`~.rows.ParsedRow`, each meter's in time
    order) into :class:`~.rows.StoredRow`, moving each meter's baseline.

    ``reject(index, reason, meter_id)`` is told of the rows refused; ``received``: the
    batch's receipt time (text); ``followup``: a :class:`Followup` for a batch of one row per
    meter, judged a chunk at a time where it can be."""

    def __init__(self, meters: MeterLookup, measures, received, reject, messages, followup=None):
        self.by_id, self.builder = meters.by_id, meters.builder
        self.measures, self.received = measures, received
        self.reject, self.messages, self.followup = reject, messages, followup
        self.line_format = copy_line_format(len(measures))
        self.batch_source = None
        self._middles = {}  # read time: (its text, its middle text with the batch's source)
        self._first = None  # the verdict on a meter's first reading (the fleet's baselines)
        self._fleet_formats = {}  # (flags, reason, chargeable): the chunk's line format
        self._scalers = {}  # (CT, PT): the batch's measures to the primary side, or None

    def validated(self, keyed):
        """The rows to store, lazily."""
        if not keyed:
            return
        self.batch_source = keyed[0].source
        if self.followup is None:
            yield from self.rows(keyed)
            return
        for at in range(0, len(keyed), FLEET_CHUNK):
            chunk = keyed[at : at + FLEET_CHUNK]
            judged = self.fleet_chunk(chunk)
            yield from self.rows(chunk) if judged is None else judged

    # === ROW BY ROW === #
    def rows(self, keyed):
        """Judge ``keyed`` one row after the other."""
        if self.batch_source is None and keyed:
            self.batch_source = keyed[0].source
        previous = None
        for row in keyed:
            key = (row.meter_id, row.read_at)
            if previous == key:
                self.reject(row.index, self.messages.duplicate, row.meter_id)
                continue
            previous = key
            meter = self._state(row)
            if meter is not None:
                yield self._judge_row(row, meter)

    def _state(self, row):
        meter = self.by_id.get(row.meter_id)
        if type(meter) is not MeterState:
            if meter is None:  # a row of its own meter (one row per meter)
                self.reject(row.index, self.messages.unknown, row.meter_id)
                return None
            meter = self.by_id[row.meter_id] = self.builder.state_of(meter)
        return meter

    def primary_measures(self, profile: MeterProfile, measured: tuple) -> tuple:
        """A row's measures on the primary side of its meter's transformers (voltage x PT,
        current x CT, power x CT x PT: ``prepaid_core.readings.measure_scaler``)."""
        scale = self._scaler(profile)
        return measured if scale is None else scale(measured)

    def _scaler(self, profile: MeterProfile):
        """The batch's measures to the primary side for ``profile``'s meters, or None."""
        if not profile.scaled:
            return None
        key = (profile.ct, profile.pt)
        scale = self._scalers.get(key, False)
        if scale is False:
            scale = self._scalers[key] = validation.measure_scaler(self.measures, *key)
        return scale

    def _judge_row(self, row, meter):
        profile = meter.profile
        measured = self.primary_measures(profile, row.measured)
        total = register_total(row.forward, row.reverse, profile)
        judged = judge_reading(meter.base_total, meter.base_at, total, row.read_at, profile)
        if judged.moves:
            meter.base_total, meter.base_at = total, row.read_at
        if self.followup is not None:
            self.followup.add(
                profile, row.meter_id, row.read_at, judged.flags, judged.moves, row.relay
            )
        text, middle = self._middle(row.read_at, row.source)
        return StoredRow(
            row.meter_id,
            profile.company_id,
            text,
            self.received,
            row.source,
            row.forward,
            row.reverse,
            total,
            judged.consumption,
            row.relay,
            row.status,
            judged.flags,
            judged.reason,
            judged.chargeable,
            measured,
            self._line(row, profile.company_id, middle, total, judged, measured),
            row.read_at,
            judged.moves,
            row.index,
        )

    def _middle(self, read_at, source):
        cached = self._middles.get(read_at)
        if cached is None:
            text = str(read_at)
            cached = self._middles[read_at] = (
                text,
                middle_text(text, self.received, self.batch_source),
            )
        if source == self.batch_source:
            return cached
        return cached[0], middle_text(cached[0], self.received, source)

    def _line(self, row, company_id, middle, total, judged, measured):
        """The row's COPY line, or None: its reason needs quoting (the csv module's)."""
        reason = judged.reason
        if reason is not None and UNSAFE.search(reason):
            return None
        register = str(row.forward)
        return self.line_format % (
            row.meter_id,
            company_id,
            middle,
            register,
            "" if row.reverse is None else row.reverse,
            register if total is row.forward else total,
            judged.consumption,
            row.relay or "",
            "" if row.status is None else row.status,
            judged.flags or "",
            reason or "",
            "t" if judged.chargeable else "f",
            *measure_texts(measured),
        )

    # === A CHUNK AT A TIME === #
    def fleet_chunk(self, chunk):
        """The rows of :meth:`rows` for a chunk of a batch of one row per meter, judged
        column by column without building the meters' states -- or None when some row is
        not a plain one: every meter known, and either all read before, each reading normal
        (nothing to flag), or none (the first readings: baselines); the batch's source, no
        reverse total, status word or missing measure, no event to log."""
        found = self._fleet_columns(chunk)
        if found is None:
            return None
        rows, meters = found  # (columns: each field a tuple of the chunk's values)
        profiles = {text: self.builder.profile_of(text) for text in set(meters.shared)}
        if self.measures and any(profile.scaled for profile in profiles.values()):
            rows = self._fleet_primary(rows, meters.shared, profiles)
        mismatched = self._fleet_relays(meters.shared, rows.relay, profiles)
        measures = list(zip(*rows.measured, strict=True)) if self.measures else []
        if mismatched is None or any(None in column for column in measures):
            return None
        totals = self._fleet_totals(rows.forward, meters.shared, profiles)
        verdict = self._fleet_verdict(rows, meters, totals, profiles)
        if verdict is None:
            return None
        if mismatched:
            pairs = zip(meters.shared, rows.relay, strict=True)
            self.followup.mismatched.extend(
                meter_id
                for meter_id, pair in zip(rows.meter_id, pairs, strict=True)
                if pair in mismatched
            )
        companies = self._companies(meters.shared, profiles)
        return self._fleet_rows(rows, companies, totals, verdict, measures)

    def _fleet_columns(self, chunk):
        """``(the chunk's columns as a ParsedRow of tuples, its meters' as a MeterRecord of
        tuples)``, or None when the chunk is not in the shape judged by column."""
        count = len(chunk)
        rows = ParsedRow(*zip(*chunk, strict=True))
        if rows.reverse.count(None) != count or rows.status.count(None) != count:
            return None
        if set(rows.source) != {self.batch_source}:
            return None
        records = list(map(self.by_id.get, rows.meter_id))
        if set(map(type, records)) != {MeterRecord}:
            return None  # an unknown meter, or one already judged row by row
        return rows, MeterRecord(*zip(*records, strict=True))

    def _fleet_primary(self, rows, shared, profiles):
        """The chunk's columns with each row's measures on the primary side
        (:meth:`primary_measures`)."""
        scalers = {text: self._scaler(profile) for text, profile in profiles.items()}
        measured = list(rows.measured)
        for at, scale in enumerate(map(scalers.__getitem__, shared)):
            if scale is not None:
                measured[at] = scale(measured[at])
        return rows._replace(measured=tuple(measured))

    def _fleet_rows(self, rows, companies, totals, verdict, measures):
        """The chunk's :class:`StoredRow`, their COPY lines made."""
        count = len(rows.meter_id)
        consumption, judged = verdict
        texts, middles = self._fleet_middles(rows.read_at)
        registers = list(map(str, rows.forward))
        lines = self._fleet_lines(
            (rows.meter_id, companies, middles, registers),
            registers if totals is rows.forward else list(map(str, totals)),
            consumption,
            [relay or "" for relay in rows.relay] if None in rows.relay else rows.relay,
            judged,
            measures,
        )
        return map(
            stored_row,
            zip(
                rows.meter_id,
                companies,
                texts,
                repeat(self.received, count),
                rows.source,
                rows.forward,
                rows.reverse,
                totals,
                consumption,
                rows.relay,
                rows.status,
                *(repeat(value, count) for value in judged[1:4]),
                rows.measured,
                lines,
                rows.read_at,
                repeat(judged.moves, count),
                rows.index,
                strict=True,
            ),
        )

    @staticmethod
    def _fleet_relays(shared, relays, profiles):
        """The (profile text, relay) of the chunk whose relay is not the one asked, or None
        when some row is an event to log."""
        mismatched = set()
        for text, relay in set(zip(shared, relays, strict=True)):
            profile = profiles[text]
            if relay_event(profile, relay):
                return None
            if relay in profile.mismatched_relays:
                mismatched.add((text, relay))
        return mismatched

    @staticmethod
    def _fleet_totals(forwards, shared, profiles):
        if all(profile.plain for profile in profiles.values()):
            return forwards
        return list(map(register_total, forwards, repeat(None), map(profiles.get, shared)))

    def _fleet_verdict(self, rows, meters, totals, profiles):
        """``(consumption of each row, the rows' Judged)``, or None: some row is flagged.
        ``rows`` and ``meters``: the chunk's columns (see :meth:`_fleet_columns`)."""
        count, base_totals, base_ats = len(totals), meters.baseline_total, meters.baseline_at
        if base_ats.count(None) == count:  # the meters' first readings: baselines
            profile = profiles[meters.shared[0]]
            judged = self._first_verdict(rows.forward[0], rows.read_at[0], profile)
            return None if judged is None else ([judged.consumption] * count, judged)
        if None in base_ats or None in base_totals:
            return None  # some first readings among the others
        consumption = list(map(operator.sub, totals, map(Decimal, base_totals)))
        allowed = self._fleet_allowances(rows.read_at, base_ats, meters.shared, profiles)
        if allowed is None or not self._all_within(consumption, allowed):
            return None
        return consumption, Judged(None, *_NORMAL)

    @staticmethod
    def _all_within(consumption, allowed):
        """Whether each consumption is within its allowance; one allowance for all (most
        chunks): the least and the greatest are."""
        if type(allowed) is Decimal:
            within = validation.within_allowance
            return within(min(consumption), allowed) and within(max(consumption), allowed)
        return all(map(validation.within_allowance, consumption, allowed))

    def _first_verdict(self, forward, read_at, profile):
        """The verdict on a meter's first reading (the same for each), or None when its
        flags or reason need quoting."""
        if self._first is None:
            judged = judge_reading(None, None, forward, read_at, profile)
            if judged.flags is None or UNSAFE.search(judged.flags + (judged.reason or "")):
                return None
            self._first = judged
        return self._first

    def _fleet_allowances(self, read_ats, base_ats, shared, profiles):
        """The most each row may carry without a flag (worked out once per read time,
        baseline time and profile; one Decimal when the same for all), or None: some row
        cannot be normal (late, gap)."""
        keys = list(zip(read_ats, base_ats, shared, strict=True))
        allowed = {}
        for key in set(keys):
            read_at, base_at, text = key
            profile = profiles[text]
            allowance = validation.interval_allowance(
                self.builder.time_of(base_at), read_at, profile.limits, profile.multiplier
            )
            if allowance is None:
                return None
            allowed[key] = allowance
        if len(allowed) == 1:
            return next(iter(allowed.values()))
        return map(allowed.__getitem__, keys)

    def _companies(self, shared, profiles):
        if len(profiles) == 1:
            return [profiles[shared[0]].company_id] * len(shared)
        return [profiles[text].company_id for text in shared]

    def _fleet_middles(self, read_ats):
        """The read times' texts and middle texts (see :func:`~.rows.middle_text`)."""
        cached = {at: self._middle(at, self.batch_source) for at in set(read_ats)}
        if len(cached) == 1:
            text, middle = cached[read_ats[0]]
            return repeat(text, len(read_ats)), repeat(middle, len(read_ats))
        return [cached[at][0] for at in read_ats], [cached[at][1] for at in read_ats]

    def _fleet_lines(self, heads, total_texts, consumption, relay_texts, judged, columns):
        """The COPY lines of a chunk; ``heads``: its meters, companies, middles, registers."""
        line_format = self._fleet_formats.get(judged[1:4])
        if line_format is None:
            line_format = self._fleet_formats[judged[1:4]] = self._fleet_format(judged)
        return list(
            map(
                line_format.__mod__,
                zip(
                    *heads,
                    total_texts,
                    consumption,
                    relay_texts,
                    *columns,
                    strict=True,
                ),
            )
        )

    def _fleet_format(self, judged):
        """The COPY line format with what a chunk's rows share filled in: no reverse total
        nor status word, the chunk's flags, reason and charge; measures (never missing in a
        chunk) as their repr, as :func:`~.rows.measure_texts` gives them."""
        fixed = ("", judged.flags or "", judged.reason or "", "t" if judged.chargeable else "f")
        fixed = [text.replace("%", "%%") for text in fixed]
        return self.line_format % (
            *("%s",) * 4,
            fixed[0],
            *("%s",) * 3,
            *fixed,
            *("%r",) * len(self.measures),
        )
