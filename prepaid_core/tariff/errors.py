"""Errors of the tariff engine: every refusal is a :class:`TariffError` with a message
that says what to correct."""

from prepaid_core.errors import PrepaidError


class TariffError(PrepaidError):
    """A tariff is defined wrongly or cannot price the interval asked."""


class TooManyStepsError(TariffError):
    """A ladder has more than 8 steps."""


class StepLimitError(TariffError):
    """Ladder step limits are not positive and increasing."""


class PriceError(TariffError):
    """A price is missing, negative or not an exact decimal."""


class UnknownBandError(TariffError):
    """A band name is not one of the five time-of-use bands, or has no price."""


class TouScheduleError(TariffError):
    """A time-of-use schedule or season is wrong."""


class TooManySegmentsError(TouScheduleError):
    """A day has more than 14 time-of-use periods."""


class TouCoverageError(TouScheduleError):
    """Time-of-use periods leave a gap in the day or overlap."""


class CycleRuleError(TariffError):
    """The settlement cycle (monthly/annual, billing day) is wrong."""


class VersionOverlapError(TariffError):
    """Two versions of a tariff are in force at the same time."""


class NoVersionError(TariffError):
    """No version of the tariff is in force at a time that must be priced."""


class ConsumptionError(TariffError):
    """A consumption figure is not an exact, finite decimal."""


class NegativeConsumptionError(ConsumptionError):
    """A consumption figure is negative."""


class IntervalError(TariffError):
    """The interval to price is inconsistent (ends before it starts, before the cycle)."""


class AlreadyPricedError(IntervalError):
    """The interval overlaps consumption that has already been charged."""


class PrecisionError(TariffError):
    """A figure has more digits than can be computed exactly."""
