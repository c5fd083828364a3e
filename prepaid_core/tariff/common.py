"""The common interval (B3), priced with the fewest operations.

Most intervals lie inside one settlement cycle and one tariff version (the compiled
tariff's "window") and have a good ``Decimal`` total (split by time over the time-of-use
periods it covers) or registers that are good decimals of bands the version prices; one
band goes through as many ladder steps as it takes, registers of several bands stay in
one step. :func:`charge_common` charges consecutive such intervals and stops at the first
that is not (priced by the general path); :func:`charge_one_band` is its most common case
alone. All take prices from the version's one table and charge by the one book rule.
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


def charge_common(window, book, total, charged, intervals, begin, floor, lines_out, amounts):
    """Charge ``intervals`` from index ``begin`` on ``book`` (in place) while each is the common
    interval of ``window`` (see the module; from ``floor``, where the state is charged up
    to), appending its lines and amount to ``lines_out`` and ``amounts`` (unless ``None``):
    ``(index of the first that is not, cycle total, cycle charged, lines and amount of the
    last one charged)``. Registers of several bands must stay within one ladder step."""
    cycle_start, _cycle_end, version, _first, last = window
    single, prices = version.single_band, version.prices
    limits, tables = version.limits, version.table
    step = _bisect_right(limits, total)
    table, limit = tables[step], limits[step]
    lines = amount = None
    for index in range(begin, len(intervals)):
        start, end, consumption = intervals[index]
        try:
            if not floor <= start <= end <= last or start == last:
                break
        except TypeError:  # an aware time (converted by the other path)
            break
        split, items = False, None
        if consumption.__class__ is Decimal:
            band, q = single, consumption
            if (q.is_signed() and q) or not q.is_finite():
                break  # (the checks say what is wrong)
            if band is None:
                period = version.period  # (the last one looked up: most often this one)
                if not period[0] <= start < period[1]:
                    period = version.period_at(start)
                band, split = period[2], end > period[1]  # split: over several periods
            added = q
        elif consumption.__class__ is dict:
            band, q, added = None, None, ZERO  # added: the registers' total, in their order
            for name, value in consumption.items():
                if not value:
                    if name in BAND_RANK:
                        continue  # (most registers do not move in an interval)
                elif value.__class__ is Decimal and value.is_finite() and not value.is_signed():
                    if name in prices or (single and name in BAND_RANK):
                        added += value
                        if q is None:
                            band, q = single or name, value
                        elif items is None:  # (entry, q) of several registers
                            items = [(table[band], q), (table[single or name], value)]
                        else:
                            items.append((table[single or name], value))
                        continue
                q = consumption  # a figure or a band for the checks
                break
            if q is consumption:
                break
            if items is not None:
                q = added
                if single:  # one band: one line of the registers' total
                    items = None
        else:
            break
        new_total = total + added
        if q and not split and new_total <= limit:  # (the most common)
            if items is None:
                line, amount = charge_line(book, table[band], q, cycle_start)
                lines = (line,)
                if not amount:  # the interval's amount is ZERO_MONEY + the line's (sign 0)
                    amount = ZERO_MONEY + amount
            else:
                lines, amount = charge_lines(book, items, cycle_start)
        elif items is not None:
            break  # registers of several bands across a step boundary: in time order
        else:  # one band across ladder steps or time-of-use periods, or no consumption
            where = (start, end, split, cycle_start)
            lines, amount, new_total = _charge_other(version, book, total, q, band, where)
        if lines_out is not None:
            lines_out.append(lines)
            amounts.append(amount)
        charged, total, floor = charged + amount, new_total, end
        if total >= limit:  # the next ladder step begins
            step = _bisect_right(limits, total)
            table, limit = tables[step], limits[step]
    else:
        index = len(intervals)  # (all charged)
    return index, total, charged, lines, amount


def charge_one_band(version, book, total, start, end, consumption, cycle_start):
    """The most common interval alone, as :func:`charge_common` charges it: one band (a
    total inside one time-of-use period, or one register that moved) within one ladder
    step, from the same price table by the same book rule: ``(lines, amount, new
    total)``, or ``None`` for :func:`charge_common` to price."""
    if consumption.__class__ is Decimal:
        q = added = consumption
        band = version.single_band
        if band is None:
            period = version.period
            if not period[0] <= start < end <= period[1]:
                return None
            band = period[2]
    elif consumption.__class__ is dict:
        band = q = None
        for name, value in consumption.items():
            if value or name not in BAND_RANK:
                if q is not None:
                    return None
                band, q = name, value
        if q is None or band not in version.prices or q.__class__ is not Decimal:
            return None
        added = ZERO + q
    else:
        return None
    if not q or q.is_signed() or not q.is_finite():
        return None
    step = _bisect_right(version.limits, total)
    new_total = total + added
    if new_total > version.limits[step]:
        return None
    line, amount = charge_line(book, version.table[step][band], q, cycle_start)
    if not amount:  # the interval's amount is ZERO_MONEY + the line's (sign of 0)
        amount = ZERO_MONEY + amount
    return (line,), amount, new_total


def _charge_other(version, book, total, q, band, where):
    """The common interval of one band when it is not in one ladder step and one
    time-of-use period, or has no consumption (:func:`charge_common`): ``(lines, amount,
    new total)``."""
    start, end, split, cycle_start = where
    if not q:  # no consumption: no line
        return (), ZERO_MONEY, total if split else total + (ZERO if q is None else q)
    if split:  # over several time-of-use periods: split by time
        return charge_pieces(book, total, _split_by_time(version, start, end, q), cycle_start)
    return charge_pieces(book, total, [(version, band, q)], cycle_start)  # across steps


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
