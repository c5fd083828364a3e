"""M5: validation of meter readings.

A reading is a register total (kWh or m3) read at a time.  Billing charges the consumption
between two readings of the same meter, so a reading that does not follow physically from the
previous one must never be charged.  This module decides, for each new reading, the
consumption it carries and the flags that explain why it may or may not be charged.

Flags (several may apply to one reading):

=============  ==========================================================  ==========  ========
flag           condition                                                   charged     baseline
=============  ==========================================================  ==========  ========
``baseline``   first reading of a meter (nothing to compare with)           no (0)      moves
``late``       read before the meter's latest accepted reading              no (0)      kept
``rollback``   total below the previous total and not a rollover           no (0)      kept
``rollover``   register wrapped: previous near the register maximum, new   yes         moves
               near zero; consumption = max + 1 resolution - prev + new
``spike``      more energy than the rated maximum current allows in the    no          kept
               elapsed time (``max_kw`` x hours, water: ``max_flow``)
``gap``        more than ``gap_factor`` x the expected interval elapsed     yes         moves
=============  ==========================================================  ==========  ========

"Baseline kept" means the meter's latest accepted total does not move: a glitch reading of
999999 followed by a normal one must not charge the difference twice.  A manager who checks a
flagged reading and finds it real accepts it as the new baseline (the add-on's action), which
is the only way past a stuck baseline.

Exact duplicates (same meter and time) are rejected by the caller before they reach this
module; malformed values raise :class:`ReadingError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from .errors import PrepaidError

FLAG_BASELINE = "baseline"
FLAG_LATE = "late"
FLAG_ROLLBACK = "rollback"
FLAG_ROLLOVER = "rollover"
FLAG_SPIKE = "spike"
FLAG_GAP = "gap"

#: flags that stop a reading's consumption from being charged
UNCHARGED_FLAGS = frozenset({FLAG_BASELINE, FLAG_LATE, FLAG_ROLLBACK, FLAG_SPIKE})
#: flags that keep the meter's baseline where it was
BASELINE_KEPT_FLAGS = frozenset({FLAG_LATE, FLAG_ROLLBACK, FLAG_SPIKE})

ZERO = Decimal(0)
_HOUR = Decimal(3600)


class ReadingError(PrepaidError):
    """A reading that cannot be stored at all (negative, not a number, no time)."""


@dataclass(frozen=True, slots=True)
class MeterLimits:
    """What a meter can physically register.

    ``max_rate`` is the highest consumption per hour on the primary side (kW for electricity,
    m3/h for water), ``register_max`` the largest value the register shows before it wraps,
    ``resolution`` its last digit, ``interval`` the expected time between readings.
    """

    max_rate: Decimal
    register_max: Decimal = Decimal("999999.99")
    resolution: Decimal = Decimal("0.01")
    interval: timedelta = timedelta(minutes=30)
    gap_factor: Decimal = Decimal("2.5")
    #: a rollover is assumed only when the previous total was above this share of the maximum
    rollover_zone: Decimal = Decimal("0.9")
    #: silence longer than this is a gap (derived)
    gap_after: timedelta = field(init=False)
    #: most consumption per second (derived)
    max_per_second: Decimal = field(init=False)
    #: most consumption in an elapsed time, by (elapsed, multiplier): a batch of readings has
    #: few distinct intervals, so the Decimal products are computed once each
    _allowed: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "gap_after", self.interval * float(self.gap_factor))
        object.__setattr__(self, "max_per_second", self.max_rate / _HOUR)
        object.__setattr__(self, "_allowed", {})

    def allowed(self, elapsed: timedelta, multiplier: Decimal = Decimal(1)) -> Decimal:
        """Most primary-side consumption the meter can register in ``elapsed``."""
        key = (elapsed, multiplier)
        allowed = self._allowed.get(key)
        if allowed is None:
            allowed = self.max_per_second * multiplier * int(elapsed.total_seconds())
            if len(self._allowed) < 4096:
                self._allowed[key] = allowed
        return allowed


class Verdict(NamedTuple):
    """What a reading means for billing."""

    consumption: Decimal
    flags: tuple[str, ...]
    reason: str
    chargeable: bool
    moves_baseline: bool


_BASELINE = Verdict(ZERO, (FLAG_BASELINE,), "First reading of the meter: baseline.", False, True)


def to_quantity(value, field: str = "value") -> Decimal:
    """Parse a register value; refuse what is not a finite, non-negative number."""
    if type(value) is float and value >= 0 and value != float("inf"):  # the common case
        return Decimal(repr(value))
    if type(value) is str:  # as devices send exact values: the same checks, fewer steps
        try:
            number = Decimal(value.strip())
        except (InvalidOperation, ValueError) as exc:
            raise ReadingError(f"{field}: {value!r} is not a number") from exc
        if number.is_finite() and number >= 0:
            return number
    elif isinstance(value, bool):
        raise ReadingError(f"{field}: {value!r} is not a number")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ReadingError(f"{field}: {value!r} is not a number") from exc
    if not number.is_finite():
        raise ReadingError(f"{field}: {value!r} is not a finite number")
    if number < 0:
        raise ReadingError(f"{field}: {value} is negative; meter registers only count up")
    return number


def effective_total(
    forward: Decimal, reverse: Decimal | None, bidirectional: bool, multiplier: Decimal
) -> Decimal:
    """Primary-side total used for billing.

    Bidirectional meters add reverse energy to forward energy (anti-theft: turning the
    meter's wiring around must not earn credit); the multiplier is the CT x PT ratio.
    """
    total = forward + reverse if bidirectional and reverse else forward
    return total * multiplier


def normal_consumption(
    prev_total: Decimal | None,
    prev_at: datetime | None,
    total: Decimal,
    read_at: datetime,
    limits: MeterLimits,
    multiplier: Decimal = Decimal(1),
) -> Decimal | None:
    """The consumption of a reading that needs no flag (after the baseline, not below it,
    within the rated maximum, no gap), else None: then :func:`validate` says why.

    The bulk path calls this first: most readings are normal, and it builds no verdict."""
    if prev_at is None or prev_total is None or read_at <= prev_at:
        return None
    consumption = total - prev_total
    if consumption < 0:
        return None
    elapsed = read_at - prev_at
    if elapsed > limits.gap_after:
        return None
    allowed = limits._allowed.get((elapsed, multiplier))
    if allowed is None:
        allowed = limits.allowed(elapsed, multiplier)
    return consumption if consumption <= allowed else None


def validate(
    prev_total: Decimal | None,
    prev_at: datetime | None,
    total: Decimal,
    read_at: datetime,
    limits: MeterLimits,
    multiplier: Decimal = Decimal(1),
) -> Verdict:
    """Judge one reading against the meter's latest accepted one.

    ``prev_total`` and ``total`` are primary-side totals (already multiplied); the register
    limits are secondary-side values and are multiplied here.
    """
    if prev_total is None or prev_at is None:
        return _BASELINE
    if read_at > prev_at:  # the common case first: a normal reading, nothing to flag
        consumption = total - prev_total
        elapsed = read_at - prev_at
        if (
            consumption >= 0
            and elapsed <= limits.gap_after
            and consumption <= limits.allowed(elapsed, multiplier)
        ):
            return Verdict(consumption, (), "", True, True)
    else:
        return Verdict(
            ZERO,
            (FLAG_LATE,),
            f"Read at {read_at:%Y-%m-%d %H:%M:%S}, not after the latest reading "
            f"({prev_at:%Y-%m-%d %H:%M:%S}).",
            False,
            False,
        )
    flags: list[str] = []
    reasons: list[str] = []
    consumption = total - prev_total
    if consumption < 0:
        register_max = limits.register_max * multiplier
        wrap = register_max + limits.resolution * multiplier
        if prev_total >= register_max * limits.rollover_zone and total < wrap - register_max * (
            limits.rollover_zone
        ):
            consumption = wrap - prev_total + total
            flags.append(FLAG_ROLLOVER)
            reasons.append(f"Register rolled over at {register_max}.")
        else:
            return Verdict(
                ZERO,
                (FLAG_ROLLBACK,),
                f"Total {total} is below the previous total {prev_total}: not charged.",
                False,
                False,
            )
    elapsed = read_at - prev_at
    allowed = limits.allowed(elapsed, multiplier)
    if consumption > allowed:
        flags.append(FLAG_SPIKE)
        reasons.append(
            f"{consumption} in {elapsed} is more than the rated maximum allows ({allowed:.4f})."
        )
    if elapsed > limits.gap_after:
        flags.append(FLAG_GAP)
        reasons.append(f"No reading for {elapsed}.")
    if not flags:
        return Verdict(consumption, (), "", True, True)
    chargeable = not UNCHARGED_FLAGS.intersection(flags)
    moves = not BASELINE_KEPT_FLAGS.intersection(flags)
    return Verdict(consumption, tuple(flags), " ".join(reasons), chargeable, moves)


#: time-of-use registers a reading may carry, as the tariff engine names their bands
REGISTER_BANDS = ("sharp", "peak", "flat", "valley")


def register_consumption(
    previous: dict | None, current: dict | None, consumption: Decimal, multiplier: Decimal
) -> dict[str, Decimal] | None:
    """B3: the consumption of an interval per time-of-use band, from the meter's registers.

    ``previous`` and ``current`` map a band of :data:`REGISTER_BANDS` to the register value
    (secondary side, ``None`` when not reported) at the interval's two readings;
    ``consumption`` is the validated primary-side consumption of the interval (what is
    charged). Returns ``{band: Decimal}`` for the tariff engine's register pricing, or
    ``None`` when the registers cannot be used and the caller splits ``consumption`` by
    time:

    * a register reported at one reading and not at the other, no register at all, or a
      register that ran backwards (replaced meter, wrap) -> ``None``;
    * registers that did not move while the total did -> ``None``;
    * deltas x multiplier adding up to ``consumption`` -> those deltas;
    * otherwise (reverse energy added by a bidirectional meter, registers rounded by the
      meter) ``consumption`` is shared in proportion to the deltas, exactly: shares in the
      last decimal of the consumption (at least 4 decimals), largest remainder, ties to the
      earlier band, adding up to ``consumption``.
    """
    if not previous or not current:
        return None
    deltas = {}
    for band in REGISTER_BANDS:
        before, after = previous.get(band), current.get(band)
        if before is None and after is None:
            continue
        if before is None or after is None:
            return None
        delta = (Decimal(after) - Decimal(before)) * multiplier
        if delta < 0:
            return None
        deltas[band] = delta
    whole = sum(deltas.values(), ZERO)
    if not deltas or (not whole and consumption):
        return None
    if whole == consumption:
        return deltas
    exponent = min(consumption.as_tuple().exponent, -4)
    units = int(consumption.scaleb(-exponent))
    shares = {band: units * delta // whole for band, delta in deltas.items()}
    left = units - sum(shares.values())
    order = sorted(deltas, key=lambda b: (-(units * deltas[b] % whole), REGISTER_BANDS.index(b)))
    for band in order[: int(left)]:
        shares[band] += 1
    return {band: Decimal(int(share)).scaleb(exponent) for band, share in shares.items()}
