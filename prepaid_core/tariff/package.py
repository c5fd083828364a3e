"""A monthly package (B14, 包月): a quantity included in the package's fee each settlement
cycle, then a price beyond it, as a tariff version the engine prices like any ladder.

The included quantity becomes a first ladder step priced at zero: the engine's ladder
already accumulates consumption per settlement cycle, splits an interval that crosses a
step limit exactly and restarts at the next cycle, so the package needs no other rule.
Beyond the included quantity the version's own prices apply (its ladder moved up by the
included quantity), or one ``overage`` price in every band when the package has one.
"""

from __future__ import annotations

import dataclasses

from prepaid_core.tariff.definitions import ZERO, TariffVersion, _as_decimal
from prepaid_core.tariff.errors import PriceError, StepLimitError


def with_included_quantity(
    version: TariffVersion, included: object, overage: object | None = None
) -> TariffVersion:
    """``version`` with its first ``included`` units of each cycle free (see module)."""
    quantity = _as_decimal(included, "The included quantity", StepLimitError)
    if quantity <= 0:
        raise StepLimitError(f"The included quantity must be more than zero, not {quantity}.")
    if overage is None:
        limits = (quantity, *(quantity + limit for limit in version.step_limits))
        prices = {band: (ZERO, *band_prices) for band, band_prices in version.prices.items()}
    else:
        price = _as_decimal(overage, "The price beyond the included quantity")
        if price < 0:
            raise PriceError(f"The price beyond the included quantity ({price}) is negative.")
        limits = (quantity,)
        prices = dict.fromkeys(version.prices, (ZERO, price))
    return dataclasses.replace(version, step_limits=limits, prices=prices)
