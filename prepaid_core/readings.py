"""M5: validation of meter readings.

Billing charges the consumption between two readings of the same meter, so a reading that
does not follow physically from the previous one must never be charged. This module
decides, for each new reading, the consumption it carries and its flags (``baseline``,
``late``, ``rollback``, ``rollover``, ``spike``, ``gap``), and parses every value a device
sends before it reaches the store (X1): whatever cannot be stored raises
:class:`ReadingError`, whose message shows the value cut short and escaped (:func:`shown`).

See docs/design.md (Validation flags).
"""

from __future__ import annotations

import re
import reprlib
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

#: a register value (forward, reverse, frozen total) is below this: the store's registers
#: keep 16 digits, 4 of them decimals (``digits=(16, 4)``)
REGISTER_LIMIT = 10**12
#: most decimals a stored number may carry: far beyond any meter's resolution, and the
#: shortest form of a float of at least :data:`TINY` (or zero) never has more; a text such as
#: ``1E-20000`` (which PostgreSQL's numeric cannot hold) is refused
MAX_DECIMALS = 20
#: a float at least this far from zero has at most :data:`MAX_DECIMALS` decimals
TINY = 1e-4
#: longest text read as a number
MAX_NUMBER_TEXT = 64
#: a status word is a 32-bit field (the MQTT schema's ``0 .. 0xFFFFFFFF``) kept in a
#: PostgreSQL ``int4``: from 2**31 as its two's complement (the same bits)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
UINT32_MAX = 2**32 - 1
#: read, event and measurement times (UTC) must lie in [EARLIEST, LATEST): a meter whose
#: clock was reset (year 2000 and before) or runs decades ahead is not believed, and no
#: time near the ends of the calendar reaches a date computation or the partitions
EARLIEST = datetime(2000, 1, 1)
LATEST = datetime(2100, 1, 1)
#: what a text must not hold: NUL (refused by PostgreSQL) and unpaired surrogates (not
#: UTF-8); an identifier (address, code, event id) no control character either
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_BAD_IDENTIFIER = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: a register value as devices send it, plain: decimal digits within the register's range
PLAIN_REGISTER = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,20})?")

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 40
_shown.maxlevel = 2
_shown.maxlist = _shown.maxdict = _shown.maxtuple = 3


def shown(value) -> str:
    """``value`` for a message: its repr, escaped (no NUL, no surrogate, no line break)
    and cut short (at most 60 characters, nested values two levels deep)."""
    try:
        text = _shown.repr(value)
    except Exception:  # (a value of a type whose repr fails: say so)
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


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
    """Parse a register value; refuse what is not a finite, non-negative number below
    :data:`REGISTER_LIMIT` with at most :data:`MAX_DECIMALS` decimals."""
    if type(value) is float:  # the common cases first: nothing else to check
        if TINY <= value < REGISTER_LIMIT or value == 0:
            return Decimal(repr(value))
    elif type(value) is str and PLAIN_REGISTER.fullmatch(value):
        return Decimal(value)
    number = _to_decimal(value, field)
    if number < 0:
        raise ReadingError(f"{field}: {shown(value)} is negative; meter registers only count up")
    return _within(number, value, field, REGISTER_LIMIT)


def _to_decimal(value, field: str) -> Decimal:
    """``value`` (a number or its text) as a finite Decimal, or :class:`ReadingError`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ReadingError(f"{field}: {shown(value)} is not a number")
    if type(value) is str and len(value) > MAX_NUMBER_TEXT:
        raise ReadingError(f"{field}: {shown(value)} is too long for a number")
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int):
            if not -(REGISTER_LIMIT**2) < value < REGISTER_LIMIT**2:  # (no text of 5000 digits)
                raise ReadingError(f"{field}: {shown(value)} is out of range")
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        else:
            number = Decimal(value.strip())
    except (InvalidOperation, ValueError) as exc:
        if isinstance(exc, ReadingError):
            raise
        raise ReadingError(f"{field}: {shown(value)} is not a number") from None
    if not number.is_finite():
        raise ReadingError(f"{field}: {shown(value)} is not a finite number")
    return number


def _within(number: Decimal, value, field: str, limit) -> Decimal:
    """``number`` if below ``limit`` in size with at most :data:`MAX_DECIMALS` decimals
    (trailing zeros beyond them dropped), else :class:`ReadingError`."""
    if not -limit < number < limit:
        raise ReadingError(f"{field}: {shown(value)} is out of range (below {limit:.0e})")
    sign, digits, exponent = number.as_tuple()
    if exponent < -MAX_DECIMALS:
        significant = "".join(map(str, digits)).rstrip("0")
        dropped = len(digits) - len(significant)
        if significant and exponent + dropped < -MAX_DECIMALS:
            raise ReadingError(f"{field}: {shown(value)} has more than {MAX_DECIMALS} decimals")
        number = Decimal((sign, tuple(map(int, significant or "0")), exponent + dropped))
        if not significant:
            number = Decimal(0)
    return number


def to_measure(value, field: str, limit: float) -> float:
    """Parse a measured value (voltage, power, a time-of-use register...): a finite float
    of size below ``limit`` whose shortest form has at most :data:`MAX_DECIMALS` decimals;
    a text that is not zero must not read as zero (``"1E-20000"``)."""
    if type(value) is float:
        if TINY <= abs(value) < limit or value == 0:  # the common cases first
            return value
    elif type(value) is str and len(value) <= MAX_NUMBER_TEXT:
        try:
            measured = float(value)  # (what a runner sends: texts of Decimals)
        except ValueError:
            pass  # the general path says why
        else:
            # a text reads as zero without an exponent only when it is zero
            if TINY <= abs(measured) < limit or (measured == 0 and "e" not in value.lower()):
                return measured
    number = _to_decimal(value, field)
    measured = float(number)
    if not -limit < measured < limit:
        raise ReadingError(f"{field}: {shown(value)} is out of range (below {limit:.0e})")
    if abs(measured) < TINY:
        if measured == 0 and number != 0:
            raise ReadingError(f"{field}: {shown(value)} is too small to store")
        _within(Decimal(repr(measured)), value, field, limit)
    return measured


def to_status_word(value) -> int:
    """Parse a status word: an integer (or its text) of 32 bits, signed or not; as the
    ``int4`` PostgreSQL keeps (the same bits)."""
    if type(value) is int:
        number = value
    elif type(value) is str and len(value) <= 12:
        try:
            number = int(value)
        except ValueError:
            raise ReadingError(f"status_word: {shown(value)} is not an integer") from None
    else:
        raise ReadingError(f"status_word: {shown(value)} is not an integer")
    if not INT4_MIN <= number <= UINT32_MAX:
        raise ReadingError(f"status_word: {shown(value)} is out of range (32 bits)")
    return number - 2**32 if number > INT4_MAX else number


def check_time(at: datetime, field: str) -> datetime:
    """``at`` (naive UTC) if within [EARLIEST, LATEST), else :class:`ReadingError`."""
    if not EARLIEST <= at < LATEST:
        raise ReadingError(
            f"{field}: {at:%Y-%m-%d %H:%M:%S} is not between {EARLIEST:%Y} and {LATEST:%Y}"
        )
    return at


def to_text(value, field: str, max_length: int, identifier: bool = False) -> str:
    """A text PostgreSQL can store: at most ``max_length`` characters, no NUL, no unpaired
    surrogate; an ``identifier`` neither empty nor holding a control character.  An
    identifier may come as an integer (a meter's address sent as a JSON number)."""
    if identifier and type(value) is int and abs(value) < 10**max_length:
        value = str(value)
    if type(value) is not str:
        raise ReadingError(f"{field}: {shown(value)} is not a text")
    if len(value) > max_length:
        raise ReadingError(f"{field}: {shown(value)} is longer than {max_length} characters")
    if identifier and not value:
        raise ReadingError(f"{field}: empty")
    if (_BAD_IDENTIFIER if identifier else _BAD_TEXT).search(value):
        raise ReadingError(f"{field}: {shown(value)} holds a control or invalid character")
    return value


def clean_identifiers(values, max_length: int) -> bool:
    """Whether every text of ``values`` is a clean identifier (see :func:`to_text`), checked
    in C loops over them all: the common case of a batch's addresses."""
    values = list(values)
    if not values:
        return True
    return (
        set(map(type, values)) == {str}
        and 0 < min(map(len, values))
        and max(map(len, values)) <= max_length
        and not _BAD_IDENTIFIER.search("".join(values))
    )


def effective_total(
    forward: Decimal, reverse: Decimal | None, bidirectional: bool, multiplier: Decimal
) -> Decimal:
    """Primary-side total used for billing.

    Bidirectional meters add reverse energy to forward energy (anti-theft: turning the
    meter's wiring around must not earn credit); the multiplier is the CT x PT ratio.
    """
    total = forward + reverse if bidirectional and reverse else forward
    return total * multiplier


def interval_allowance(
    prev_at: datetime | None,
    read_at: datetime,
    limits: MeterLimits,
    multiplier: Decimal = Decimal(1),
) -> Decimal | None:
    """The most consumption a reading at ``read_at`` may carry without a flag after the
    baseline of ``prev_at``; None when no reading there is normal (no baseline yet, not after
    it, or after a gap)."""
    if prev_at is None or read_at <= prev_at:
        return None
    elapsed = read_at - prev_at
    if elapsed > limits.gap_after:
        return None
    allowed = limits._allowed.get((elapsed, multiplier))
    return limits.allowed(elapsed, multiplier) if allowed is None else allowed


def within_allowance(consumption: Decimal, allowed: Decimal) -> bool:
    """Whether a consumption needs no flag: not negative, not above what is allowed."""
    return ZERO <= consumption <= allowed


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
    if prev_total is None:
        return None
    allowed = interval_allowance(prev_at, read_at, limits, multiplier)
    if allowed is None:
        return None
    consumption = total - prev_total
    return consumption if within_allowance(consumption, allowed) else None


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
    normal = normal_consumption(prev_total, prev_at, total, read_at, limits, multiplier)
    if normal is not None:  # the common case first: a normal reading, nothing to flag
        return Verdict(normal, (), "", True, True)
    if read_at <= prev_at:
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


# === PRIMARY SIDE (CT/PT) === #
#: which transformer ratios scale each instantaneous measure to the primary side: power as
#: energy (CT x PT), current by the CT, voltage by the PT.  Registers (forward, reverse,
#: time-of-use) stay as the meter counts them; their totals are scaled by
#: :func:`effective_total` and :func:`register_consumption`.
PRIMARY_RATIOS = {"power": ("ct", "pt"), "current": ("ct",), "voltage": ("pt",)}
_ONE = Decimal(1)


def transformer_ratio(primary, secondary) -> Decimal:
    """The ratio of a transformer from its nameplate pair, exact: 50/5 -> 10, 10000/100 ->
    100.  Both must be positive numbers: else ValueError naming the one that is not."""
    values = []
    for name, value in (("primary", primary), ("secondary", secondary)):
        try:
            number = Decimal(value if isinstance(value, (int, str, Decimal)) else repr(value))
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"{name}: {shown(value)} is not a number") from None
        if not number.is_finite() or number <= 0:
            raise ValueError(f"{name}: {shown(value)} must be positive")
        values.append(number)
    return values[0] / values[1]


def primary_factor(measure: str, ct: Decimal, pt: Decimal) -> Decimal:
    """What a meter-side value of ``measure`` is multiplied by on the primary side (1: a
    measure no transformer scales, such as the power factor or the meter's balance)."""
    ratios = {"ct": ct, "pt": pt}
    factor = _ONE
    for name in PRIMARY_RATIOS.get(measure, ()):
        factor *= ratios[name]
    return factor


def to_primary(value: float, factor: Decimal) -> float:
    """A meter-side measure (a float, as parsed) on the primary side: the exact decimal
    product, as the float whose shortest form is that product (when it has at most 15
    significant digits, which every stored measure times a nameplate ratio has)."""
    return float(Decimal(repr(value)) * factor)


def measure_scaler(measures, ct: Decimal, pt: Decimal):
    """A function turning a reading's meter-side measures (a tuple, in the order of
    ``measures``) into primary-side ones, or None when no measure of ``measures`` changes
    (no transformer, or no scaled measure reported)."""
    factors = [
        (at, factor)
        for at, name in enumerate(measures)
        if (factor := primary_factor(name, ct, pt)) != _ONE
    ]
    if not factors:
        return None

    def scale(measured: tuple) -> tuple:
        values = list(measured)
        for at, factor in factors:
            if values[at]:  # (None: not reported; zero stays zero)
                values[at] = to_primary(values[at], factor)
        return tuple(values)

    return scale


def meter_side_limit(limit: Decimal, multiplier: Decimal) -> Decimal:
    """A primary-side power limit as a meter behind CT x PT = ``multiplier`` compares it
    with what it measures itself: ``limit / multiplier``, to 4 decimals."""
    return (Decimal(limit) / Decimal(multiplier or 1)).quantize(Decimal("0.0001"))
