"""Clocks for the simulator: a manual clock for tests, an accelerated clock for fleets.

Every virtual meter reads time from a ``Clock``; nothing in the simulator calls
``datetime.now()`` itself, so tests decide what time it is and a fleet can run a day
in a minute (``AcceleratedClock(speed=1440)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["AcceleratedClock", "Clock", "ManualClock", "utc"]


def utc(*args: int) -> datetime:
    """``utc(2025, 1, 31, 12)``: an aware UTC datetime."""
    return datetime(*args, tzinfo=timezone.utc)


class Clock(Protocol):
    """Simulated time: ``now()`` is an aware UTC datetime; ``sleep`` waits simulated seconds."""

    speed: float

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class ManualClock:
    """A clock that moves only when told (``advance``); ``sleep`` advances it."""

    speed = float("inf")

    def __init__(self, start: datetime | None = None):
        self._now = start or utc(2025, 1, 1)
        if self._now.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0) -> datetime:
        delta = timedelta(seconds=seconds, minutes=minutes, hours=hours)
        if delta < timedelta(0):
            raise ValueError("time does not go back")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError("time does not go back")
        self._now = when

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


class AcceleratedClock:
    """Simulated time running ``speed`` times faster than the real monotonic clock."""

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start or datetime.now(timezone.utc).replace(microsecond=0)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    def real_seconds(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of simulated time take."""
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds / self.speed))
