"""The common interval (B3), priced with the fewest operations.

Most intervals of a meter read every few minutes lie inside one settlement cycle and one
tariff version (the compiled tariff's "window"), with their consumption in one band, or
in registers of several bands, within one ladder step. :func:`charge_common` prices
exactly those and refuses the rest (``None``), which the general path prices; both take
prices from the same version table and charge through the same book rule, so an interval
is priced the same whichever path it takes.
"""

from __future__ import annotations

from decimal import Decimal

from prepaid_core.tariff.book import (
    ZERO_MONEY,
    _bisect_right,
    charge_line,
    charge_lines,
    charge_pieces,
)
from prepaid_core.tariff.definitions import BAND_RANK, ZERO
from prepaid_core.tariff.quantities import apportion, check_band, check_quantity, missing_band
from prepaid_core.tariff.versions import MICROSECOND


def charge_common(version, book, total, start, end, consumption, cycle_start):
    """Charge the interval on ``book`` (in place) if it is the common one inside the window
    of ``version``, ``total`` being the cycle's consumption so far: ``(lines, amount, new
    total)``; else ``None``, ``book`` untouched.

    Common: a good ``Decimal`` total (split by time over the time-of-use periods it
    covers), or registers that are good decimals of bands the version prices (zero for
    the others); one band goes through as many ladder steps as it takes, registers of
    several bands must stay within one step (else they are charged in time order).
    """
    if consumption.__class__ is Decimal:
        q = added = consumption
        if (q.is_signed() and q) or not q.is_finite():
            return None  # (the checks say what is wrong)
        band = version.single_band
        if band is None:
            period = version.period  # (the last one looked up: most often this one)
            if not period[0] <= start < period[1]:
                period = version.period_at(start)
            if end > period[1]:  # over several time-of-use periods: split by time
                if not q:
                    return (), ZERO_MONEY, total  # (nothing split adds nothing)
                pieces = _split_by_time(version, start, end, q)
                return charge_pieces(book, total, pieces, cycle_start)
            band = period[2]
        items = None
    elif consumption.__class__ is dict:
        single = version.single_band
        prices = version.prices
        band = q = items = None
        for name, value in consumption.items():
            if not value:
                if name in BAND_RANK:
                    continue  # (most registers do not move in an interval)
                return None
            if value.__class__ is not Decimal or not value.is_finite() or value.is_signed():
                return None
            if not (name in prices or (single and name in BAND_RANK)):
                return None
            if q is None:
                band, q = single or name, value
            elif items is None:
                items = [(band, q), (single or name, value)]
            else:
                items.append((single or name, value))
        if q is None:
            return (), ZERO_MONEY, total + ZERO  # no register moved
        added = ZERO + q
        if items is not None:
            added = _total(items)
            if single:  # one band: one line of the registers' total
                q, items = added, None
    else:
        return None
    if not q:  # no consumption: no line
        return (), ZERO_MONEY, total + added
    step = _bisect_right(version.limits, total)
    new_total = total + added
    if new_total > version.limits[step]:  # a ladder step boundary inside the interval
        if items is not None:
            return None  # registers of several bands: charged in time order
        return charge_pieces(book, total, [(version, band, q)], cycle_start)
    table = version.table[step]
    if items is not None:
        lines, amount = charge_lines(book, [(table[b], v) for b, v in items], cycle_start)
        return lines, amount, new_total
    line, amount = charge_line(book, table[band], q, cycle_start)
    if not amount:  # the interval's amount is ZERO_MONEY + the line's (sign of 0)
        amount = ZERO_MONEY + amount
    return (line,), amount, new_total


def _total(items):
    """The sum of the quantities of ``items`` (band, quantity), from zero."""
    total = ZERO
    for _band, q in items:
        total += q
    return total


def _split_by_time(version, start, end, q):
    """A total over several time-of-use periods of the window: ``(version, band, share)``
    of each period in time order, split at the ends of the periods as the general path
    splits it."""
    period = first = version.period_at(start)
    bands, weights = [], []
    t = start
    while end > period[1]:
        bands.append(period[2])
        weights.append((period[1] - t) // MICROSECOND)
        t = period[1]
        period = version.period_at(t)
    bands.append(period[2])
    weights.append((end - t) // MICROSECOND)
    version.period = first  # (the next meter's interval most likely starts in it too)
    shares = apportion(q, weights)
    return [(version, band, share) for band, share in zip(bands, shares, strict=True)]


def checked_consumption(consumption, version):
    """The consumption with its figures checked in the order the registers come (the
    errors of a wrong figure or band) and converted to ``Decimal``."""
    if consumption.__class__ is Decimal:
        if consumption.is_finite() and not consumption.is_signed():
            return consumption
        return check_quantity(consumption, None)
    checked = {}
    for name, value in consumption.items():
        if not value:
            check_band(name)
        else:
            priced = name in version.prices
            if not priced:
                check_band(name)
            if value.__class__ is not Decimal or not value.is_finite() or value.is_signed():
                value = check_quantity(value, name)
            if not priced and not version.single_band:
                missing_band(name, version)
        checked[name] = value
    return checked
