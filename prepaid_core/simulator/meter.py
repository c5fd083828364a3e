"""A virtual prepaid meter (G7): pure state, no I/O.

``VirtualMeter`` integrates energy from a deterministic ``LoadProfile`` over the time of a
``Clock`` into time-of-use, forward and reverse registers, and runs the on-meter prepaid
logic (money balance, alarms, relay, protect mode, tokens accepted once, injected tamper
and faults). A meter set up with an STS decoder key takes 20-digit STS tokens on its
keypad (``keypad.StsKeypad``) and turns their credit into money at its current price.
Transports only call its public methods, each of which first brings the meter to
``clock.now()``, so a meter nobody talks to costs nothing; ``snapshot()`` gives its
registers and status word.

See docs/simulator.md.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from prepaid_core import sts
from prepaid_core.simulator.clock import Clock
from prepaid_core.simulator.keypad import StsKeypad, describe
from prepaid_core.tokens import (
    Token,
    TokenAcceptor,
    TokenError,
    TokenKind,
    derive_meter_key,
)

__all__ = [
    "DEFAULT_TOU",
    "TOKEN_ERRORS",
    "DailyFreeze",
    "LoadProfile",
    "MeterConfig",
    "MeterEvent",
    "MeterSnapshot",
    "VirtualMeter",
    "token_detail",
]

#: what a meter raises when it refuses a token (own format or STS)
TOKEN_ERRORS = (TokenError, sts.StsError)

_UJ_PER_KWH = 3_600_000_000_000  # micro-joules in one kWh
_PRICE_UNITS = 10_000  # prices are kept to 4 decimals
_SPENT_SCALE = Decimal(_UJ_PER_KWH * _PRICE_UNITS)
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# status word bits
RELAY_OFF, ALARM1, ALARM2, EXHAUSTED, PROTECTED = 1, 2, 4, 8, 16
TAMPER_COVER, TAMPER_MAGNET, FAULT, OVERLOAD, POWER_FAIL, REMOTE_OFF = 32, 64, 128, 256, 512, 1024

# Residential daily shape, one factor (0..1) per hour of local time.
_RESIDENTIAL = (
    0.10, 0.08, 0.07, 0.07, 0.08, 0.12, 0.30, 0.55, 0.45, 0.30, 0.25, 0.30,
    0.40, 0.35, 0.30, 0.30, 0.35, 0.55, 0.85, 1.00, 0.95, 0.75, 0.45, 0.20,
)  # fmt: skip
# Solar export shape (0..1 per hour).
_SOLAR = (0,) * 6 + (0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0, 0.95, 0.8, 0.6, 0.35, 0.1) + (0,) * 6

# Default time-of-use schedule: (start minute of the local day, band), up to 14 segments.
DEFAULT_TOU: tuple[tuple[int, str], ...] = (
    (0, "valley"),
    (8 * 60, "flat"),
    (10 * 60, "peak"),
    (11 * 60, "sharp"),
    (12 * 60, "flat"),
    (18 * 60, "peak"),
    (19 * 60, "sharp"),
    (21 * 60, "peak"),
    (22 * 60, "flat"),
    (23 * 60, "valley"),
)
TOU_BANDS = ("sharp", "peak", "flat", "valley")


def _mix64(value: int) -> int:
    """splitmix64 finaliser: a fast, well-spread deterministic hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


@dataclass(frozen=True)
class LoadProfile:
    """Deterministic power draw: daily shape x peak, with per-minute noise from ``seed``.

    ``power_w(minute)`` is a pure function of (seed, minute since the epoch, local
    hour): signed watts, negative when the solar export exceeds the load.
    """

    seed: int = 0
    base_w: int = 120
    peak_w: int = 2000
    noise: float = 0.3
    shape: tuple[float, ...] = _RESIDENTIAL
    export_peak_w: int = 0
    power_factor: Decimal = Decimal("0.95")
    utc_offset_minutes: int = 480

    def power_w(self, minute: int) -> int:
        hour = ((minute + self.utc_offset_minutes) // 60) % 24
        unit = (_mix64(self.seed * 0x1000193 ^ minute) >> 11) / float(1 << 53)  # [0, 1)
        load = self.base_w + (self.peak_w - self.base_w) * self.shape[hour]
        load *= 1 + self.noise * (2 * unit - 1)
        export = self.export_peak_w * _SOLAR[hour]
        return round(max(load, 0.0) - export)

    def voltage_v(self, minute: int, nominal: Decimal) -> Decimal:
        unit = (_mix64(~self.seed ^ minute) >> 11) / float(1 << 53)
        return (nominal * Decimal(1 + 0.03 * (2 * unit - 1))).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class MeterConfig:
    """What kind of meter this is and how it is set up on delivery."""

    address: str
    vending_key: bytes = b"prepaid-core simulator vending key"
    profile: LoadProfile = field(default_factory=LoadProfile)
    price: Decimal = Decimal("0.6000")
    balance: Decimal = Decimal("100")
    alarm1: Decimal = Decimal("20")
    alarm2: Decimal = Decimal("5")
    overdraft_limit: Decimal = Decimal(0)
    overload_kw: Decimal | None = None
    alarm2_cut_seconds: int = 120
    reverse_adds_to_forward: bool = True
    nominal_voltage: Decimal = Decimal(220)
    tou: tuple[tuple[int, str], ...] = DEFAULT_TOU
    protect: bool = False
    #: the import register on delivery (a meter taken over with energy already counted)
    initial_kwh: Decimal = Decimal(0)
    #: "own": 20 digits are the project's keypad tokens (docs/tokens.md); "sts": STS tokens
    token_format: str = "own"
    #: STS decoder key, 8 bytes (``sts.decoder_key_dkga02``), for token_format "sts"
    decoder_key: bytes | None = None
    sts_base_date: datetime = sts.BASE_DATE_2014
    #: how many recent token identifiers the STS meter remembers
    sts_memory: int = 50
    #: the class 0 credit it takes: electricity (0.1 kWh) or water (0.1 m3)
    sts_credit: int = sts.CreditSubclass.ELECTRICITY


@dataclass(frozen=True)
class MeterEvent:
    """Something that happened on the meter, to be reported by its transport."""

    ts: datetime
    event: str
    relay: str
    code: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class DailyFreeze:
    """The registers frozen at the meter's local midnight (DL/T645 daily frozen data)."""

    at: datetime  # local wall-clock time, naive (DL/T645 times carry no zone)
    import_kwh: Decimal
    tou_kwh: dict[str, Decimal]


@dataclass(frozen=True)
class MeterSnapshot:
    """Registers and instantaneous values at ``ts`` (kWh truncated to 0.01 like a display)."""

    address: str
    ts: datetime
    forward_kwh: Decimal
    reverse_kwh: Decimal
    tou_kwh: dict[str, Decimal]
    import_kwh: Decimal
    voltage_v: Decimal
    current_a: Decimal
    power_kw: Decimal
    pf: Decimal
    balance: Decimal
    price: Decimal
    relay: str
    status_word: int
    alarm1: Decimal
    alarm2: Decimal
    protect: bool
    last_token_sequence: int
    fault_code: int
    #: identifier of the last STS token accepted (None: not an STS meter, or none yet)
    last_token_tid: int | None = None


def _check_price(price: Decimal) -> Decimal:
    price = Decimal(price)
    if not price.is_finite() or price <= 0:
        raise ValueError("price must be a positive amount")
    if price * _PRICE_UNITS != int(price * _PRICE_UNITS):
        raise ValueError("price is kept to 4 decimals")
    return price


def _sts_keypad(config: MeterConfig) -> StsKeypad | None:
    """The STS keypad of an STS meter; None for a meter of the own token format."""
    if config.token_format not in ("own", "sts"):
        raise ValueError("token format is 'own' or 'sts'")
    if config.token_format == "own":
        return None
    if config.decoder_key is None:
        raise ValueError("an STS meter needs its decoder key")
    return StsKeypad(
        config.decoder_key,
        memory=config.sts_memory,
        base_date=config.sts_base_date,
        credit_subclass=config.sts_credit,
    )


def token_detail(accepted: Token | sts.StsToken | sts.KeyChange) -> str:
    """What a ``token_accepted`` event says: ``CREDIT #5`` (own format, kind and sequence)
    or ``STS CREDIT TID 6312345``."""
    if isinstance(accepted, Token):
        return f"{accepted.kind.name} #{accepted.sequence}"
    return describe(accepted)


def _kwh(microjoules: int) -> Decimal:
    """Truncate to 0.01 kWh (registers never round up)."""
    return Decimal(microjoules * 100 // _UJ_PER_KWH) / 100


class VirtualMeter:
    """One prepaid meter. Every public method first advances the meter to ``clock.now()``."""

    def __init__(self, config: MeterConfig, clock: Clock):
        self.config = config
        self.address = config.address
        self.clock = clock
        self.profile = config.profile
        self.key = derive_meter_key(config.vending_key, config.address)
        self.tokens = TokenAcceptor(self.key, config.address)
        self.keypad = _sts_keypad(config)
        self.price = _check_price(config.price)
        # balance = base - spent / _SPENT_SCALE; ``spent`` is an exact integer (price in
        # 1/10,000 x micro-joules), so the balance never depends on the step sizes.
        self._base = Decimal(config.balance)
        self._spent = 0
        self.alarm1 = config.alarm1
        self.alarm2 = config.alarm2
        self.overload_kw = config.overload_kw
        self.protect = config.protect
        self.time_offset = timedelta(0)
        # energy registers, micro-joules
        self.import_uj = int(Decimal(config.initial_kwh) * _UJ_PER_KWH)
        if self.import_uj < 0:
            raise ValueError("the initial register cannot be negative")
        self.export_uj = 0
        self.tou_uj = dict.fromkeys(TOU_BANDS, 0)
        # relay: closed unless some reason holds it open
        self.cut_reasons: set[str] = set()
        self.force_on = False
        self.alarm2_until: datetime | None = None
        self.tamper: set[str] = set()
        self.fault_code = 0
        self.powered = True
        self.events: deque[MeterEvent] = deque(maxlen=1000)
        self.relay_toggles = 0
        self.credited_total = Decimal(0)
        #: the last daily freeze (None until the first local midnight the meter lives)
        self.daily_freeze: DailyFreeze | None = None
        self._t = clock.now()
        self._below_alarm1 = self.balance < self.alarm1
        self._below_alarm2 = self.balance < self.alarm2
        self._evaluate(self._t)

    # === TIME AND ENERGY === #

    @property
    def relay_closed(self) -> bool:
        return not self.cut_reasons

    @property
    def relay(self) -> str:
        return "on" if self.relay_closed else "off"

    def local_now(self) -> datetime:
        """The meter's own clock (simulated time plus the offset set by ``time_sync``)."""
        return self.clock.now() + self.time_offset

    def _band(self, minute: int) -> str:
        minute_of_day = (minute + self.profile.utc_offset_minutes) % 1440
        band = self.config.tou[0][1]
        for start, name in self.config.tou:
            if start <= minute_of_day:
                band = name
            else:
                break
        return band

    def advance(self) -> None:
        """Integrate energy and run the prepaid logic up to ``clock.now()``."""
        now = self.clock.now()
        while self._t < now:
            t = self._t
            minute = int((t - _EPOCH).total_seconds() // 60)
            end = _EPOCH + _MINUTE * (minute + 1)
            if self.alarm2_until is not None and t < self.alarm2_until < end:
                end = self.alarm2_until
            end = min(end, now)
            if self.powered and self.relay_closed:
                self._integrate(minute, end - t)
            self._t = end
            self._evaluate(end)
            self._freeze_at_midnight(end)

    def _freeze_at_midnight(self, at: datetime) -> None:
        """Freeze the registers when ``at`` is the local midnight (steps end on minutes)."""
        local = (at + timedelta(minutes=self.profile.utc_offset_minutes)).replace(tzinfo=None)
        if local.hour or local.minute or local.second or local.microsecond:
            return
        self.daily_freeze = DailyFreeze(
            local,
            _kwh(self.import_uj),
            {band: _kwh(self.tou_uj[band]) for band in TOU_BANDS},
        )

    def _integrate(self, minute: int, span: timedelta) -> None:
        power = self.profile.power_w(minute)
        if self.overload_kw is not None and power > self.overload_kw * 1000:
            self._cut("overload", self._t, "power above the overload limit")
            self._emit(self._t, "overload", detail=f"{power} W")
            return
        microseconds = span // timedelta(microseconds=1)
        energy = abs(power) * microseconds
        if power >= 0:
            self.import_uj += energy
        else:
            self.export_uj += energy
        billed = energy if power >= 0 or self.config.reverse_adds_to_forward else 0
        if billed:
            self.tou_uj[self._band(minute)] += billed
            self._spent += int(self.price * _PRICE_UNITS) * billed

    @property
    def balance(self) -> Decimal:
        """Money left on the meter (exact; the snapshot shows it to 4 decimals)."""
        if not self._spent:
            return self._base
        return self._base - Decimal(self._spent) / _SPENT_SCALE

    def _set_balance(self, value: Decimal) -> None:
        self._base, self._spent = Decimal(value), 0

    def _evaluate(self, now: datetime) -> None:
        """Alarms and relay from the balance (run after every integration step)."""
        balance = self.balance
        below1, below2 = balance < self.alarm1, balance < self.alarm2
        if below1 and not self._below_alarm1:
            self._emit(now, "alarm1", detail=f"balance {balance:.2f}")
        if below2 and not self._below_alarm2:
            self._emit(now, "alarm2", detail=f"balance {balance:.2f}")
            if not self.protect and not self.force_on and self.config.alarm2_cut_seconds:
                self.alarm2_until = now + timedelta(seconds=self.config.alarm2_cut_seconds)
                self._cut("alarm2", now, "alarm 2 reminder")
        self._below_alarm1, self._below_alarm2 = below1, below2
        if self.alarm2_until is not None and now >= self.alarm2_until:
            self.alarm2_until = None
            self._restore("alarm2", now)
        exhausted = balance <= -self.config.overdraft_limit
        if exhausted and not self.protect and not self.force_on:
            if "credit" not in self.cut_reasons:
                self._emit(now, "credit_exhausted", detail=f"balance {balance:.2f}")
                self._cut("credit", now, "credit exhausted")
        elif not exhausted and "credit" in self.cut_reasons:
            self._restore("credit", now)

    def _cut(self, reason: str, now: datetime, detail: str) -> None:
        was_closed = self.relay_closed
        self.cut_reasons.add(reason)
        if was_closed:
            self.relay_toggles += 1
            self._emit(now, "relay_off", detail=detail)

    def _restore(self, reason: str, now: datetime) -> None:
        if reason not in self.cut_reasons:
            return
        self.cut_reasons.discard(reason)
        if self.relay_closed:
            self.relay_toggles += 1
            self._emit(now, "relay_on", detail=f"{reason} cleared")

    def _emit(self, now: datetime, event: str, *, code: int | None = None, detail=None):
        self.events.append(MeterEvent(now + self.time_offset, event, self.relay, code, detail))

    def drain_events(self) -> list[MeterEvent]:
        """Events since the last call, oldest first."""
        self.advance()
        events = list(self.events)
        self.events.clear()
        return events

    # === READING === #

    def snapshot(self) -> MeterSnapshot:
        self.advance()
        now = self.clock.now()
        minute = int((now - _EPOCH).total_seconds() // 60)
        flowing = self.powered and self.relay_closed
        power_w = self.profile.power_w(minute) if flowing else 0
        voltage = self.profile.voltage_v(minute, self.config.nominal_voltage) if self.powered else 0
        pf = self.profile.power_factor if power_w else Decimal(1)
        current = (
            (Decimal(abs(power_w)) / (Decimal(voltage) * pf)).quantize(Decimal("0.001"))
            if power_w
            else Decimal("0.000")
        )
        billed_reverse = self.export_uj if self.config.reverse_adds_to_forward else 0
        return MeterSnapshot(
            address=self.address,
            ts=now + self.time_offset,
            forward_kwh=_kwh(self.import_uj + billed_reverse),
            reverse_kwh=_kwh(self.export_uj),
            tou_kwh={band: _kwh(uj) for band, uj in self.tou_uj.items()},
            import_kwh=_kwh(self.import_uj),
            voltage_v=Decimal(voltage),
            current_a=current,
            power_kw=(Decimal(power_w) / 1000).quantize(Decimal("0.0001")),
            pf=pf.quantize(Decimal("0.001")),
            balance=self.balance.quantize(Decimal("0.0001")),
            price=self.price,
            relay=self.relay,
            status_word=self.status_word(),
            alarm1=self.alarm1,
            alarm2=self.alarm2,
            protect=self.protect,
            last_token_sequence=self.tokens.last_sequence,
            fault_code=self.fault_code,
            last_token_tid=self.keypad.last_tid if self.keypad else None,
        )

    def status_word(self) -> int:
        word = 0 if self.relay_closed else RELAY_OFF
        word |= ALARM1 if self._below_alarm1 else 0
        word |= ALARM2 if self._below_alarm2 else 0
        word |= EXHAUSTED if "credit" in self.cut_reasons else 0
        word |= PROTECTED if self.protect else 0
        word |= TAMPER_COVER if "cover" in self.tamper else 0
        word |= TAMPER_MAGNET if "magnet" in self.tamper else 0
        word |= FAULT if self.fault_code else 0
        word |= OVERLOAD if "overload" in self.cut_reasons else 0
        word |= POWER_FAIL if not self.powered else 0
        word |= REMOTE_OFF if "remote" in self.cut_reasons else 0
        return word

    # === COMMANDS === #

    def relay_off(self) -> str:
        """Remote (manual) cut: holds until ``relay_on``. Returns the actual state."""
        self.advance()
        self.force_on = False
        self._cut("remote", self._t, "remote command")
        return self.relay

    def relay_on(self) -> str:
        """Remote close at any balance (a manager's force-on); prepaid cut-off resumes on
        the next recharge that brings the balance above zero."""
        self.advance()
        self.force_on = self.balance <= -self.config.overdraft_limit
        self.alarm2_until = None
        for reason in ("remote", "overload", "credit", "alarm2"):
            self._restore(reason, self._t)
        return self.relay

    def set_protect(self, on: bool) -> None:
        """Protect mode never cuts for credit; leaving it resumes prepaid cut-off."""
        self.advance()
        self.protect = bool(on)
        if self.protect:
            self.alarm2_until = None
            self._restore("credit", self._t)
            self._restore("alarm2", self._t)
        self._evaluate(self._t)

    def set_price(self, price: Decimal) -> None:
        self.advance()
        self.price = _check_price(price)

    def set_thresholds(self, alarm1: Decimal, alarm2: Decimal, overload_kw=None) -> None:
        self.advance()
        if alarm1 < alarm2 or alarm2 < 0:
            raise ValueError("alarm 1 must be >= alarm 2 >= 0")
        self.alarm1, self.alarm2 = Decimal(alarm1), Decimal(alarm2)
        if overload_kw is not None:
            self.overload_kw = Decimal(overload_kw)
        self._below_alarm1 = self.balance < self.alarm1
        self._below_alarm2 = self.balance < self.alarm2

    def time_sync(self, when: datetime) -> None:
        self.advance()
        self.time_offset = when - self.clock.now()

    def zero(self) -> None:
        """Reset consumption and balance ("battery reset" in the seed documents)."""
        self.advance()
        self.import_uj = self.export_uj = 0
        self.tou_uj = dict.fromkeys(TOU_BANDS, 0)
        self._set_balance(Decimal(0))
        self._emit(self._t, "zeroed")
        self._below_alarm1 = self._below_alarm2 = False
        self._evaluate(self._t)

    def add_credit(self, amount: Decimal) -> None:
        """Credit applied by a trusted channel (a verified token calls this)."""
        self._base += amount
        self.credited_total += amount
        if self.balance > -self.config.overdraft_limit:
            self.force_on = False
        self._evaluate(self._t)

    def apply_token(self, data: bytes | str) -> Token | sts.StsToken | sts.KeyChange:
        """Verify a token and apply it, once: binary (own format), or 20 digits (STS on an
        STS meter, the own keypad form otherwise). Raises one of ``TOKEN_ERRORS``."""
        self.advance()
        try:
            if isinstance(data, str) and self.keypad is not None:
                accepted = self.keypad.enter(data)
            else:
                accepted = self.tokens.accept(data)
        except TOKEN_ERRORS as error:
            self._emit(self._t, "token_rejected", detail=type(error).__name__)
            raise
        if isinstance(accepted, Token):
            self._apply_own_token(accepted)
        else:
            self._apply_sts_token(accepted)
        self._emit(self._t, "token_accepted", detail=token_detail(accepted))
        return accepted

    def enter_keypad(self, digits: str) -> Token | sts.StsToken | sts.KeyChange:
        """A token typed on the keypad (spaces and dashes between groups ignored)."""
        return self.apply_token(str(digits))

    def _apply_own_token(self, token: Token) -> None:
        if token.kind == TokenKind.CREDIT:
            self.add_credit(token.amount)
        elif token.kind == TokenKind.CLEAR_CREDIT:
            self._clear_credit()
        elif token.kind == TokenKind.SET_PRICE:
            self.price = _check_price(token.amount)
        elif token.kind == TokenKind.CLEAR_TAMPER:
            self._clear_tamper()

    def _apply_sts_token(self, content: sts.StsToken | sts.KeyChange) -> None:
        """Credit (units x the current price), or a management instruction; a key change
        has already replaced the keypad's decoder key."""
        if isinstance(content, sts.KeyChange):
            return
        if content.token_class == sts.CLASS_CREDIT:
            self.add_credit(content.amount * self.price)
        elif content.subclass == sts.Subclass.MAX_POWER_LIMIT:
            self.overload_kw = Decimal(sts.decode_amount(content.value)) / 1000
            self._restore("overload", self._t)
        elif content.subclass == sts.Subclass.CLEAR_CREDIT:
            if self.keypad.clears_credit(content):
                self._clear_credit()
        elif content.subclass == sts.Subclass.CLEAR_TAMPER:
            self._clear_tamper()

    def _clear_credit(self) -> None:
        self._set_balance(Decimal(0))
        self._evaluate(self._t)

    def _clear_tamper(self) -> None:
        if self.tamper:
            self.tamper.clear()
            self._emit(self._t, "tamper_cleared")

    # === FAULTS AND TAMPER (on request) === #

    def inject_tamper(self, kind: str = "cover") -> None:
        if kind not in ("cover", "magnet"):
            raise ValueError("tamper is 'cover' or 'magnet'")
        self.advance()
        if kind not in self.tamper:
            self.tamper.add(kind)
            self._emit(self._t, f"tamper_{kind}")

    def inject_balance_tamper(self, amount: Decimal) -> None:
        """Move the balance by ``amount`` without a token (credit falsified inside the
        meter): the cover tamper is raised, its event says by how much, and the balance
        no longer matches the credit vended minus consumption (reconciliation tests)."""
        self.advance()
        amount = Decimal(amount)
        if not amount.is_finite():
            raise ValueError("the amount must be finite")
        self._base += amount
        self.tamper.add("cover")
        self._emit(self._t, "tamper_cover", detail=f"balance moved by {amount}")
        self._evaluate(self._t)

    def inject_fault(self, code: int) -> None:
        self.advance()
        self.fault_code = int(code)
        self._emit(self._t, "fault", code=self.fault_code)

    def clear_fault(self) -> None:
        self.advance()
        if self.fault_code:
            self.fault_code = 0
            self._emit(self._t, "fault_cleared")

    def power_fail(self) -> None:
        self.advance()
        if self.powered:
            self.powered = False
            self._emit(self._t, "power_fail")

    def power_restore(self) -> None:
        self.advance()
        if not self.powered:
            self.powered = True
            self._emit(self._t, "power_restore")
