"""Pure logic of the prepaid energy suite.

Nothing in this package imports Odoo: the add-ons under ``addons/`` call it, and its tests
run on any Python 3.10+.  One module per feature of SPEC.md:

- ``tariff``      B1  tariff versions, ladder steps, time-of-use bands, interval pricing
- ``balance``     B2 B6 B7  ledger kinds, recharge settlement order, refunds
- ``exact``       B1 B2 B8  exact decimal input (no floats, finite) for prices, amounts, thresholds
- ``alarm``       B8  alarm levels and the desired supply (relay) state
- ``readings``    M5  reading validation (rollback, rollover, spike, gap)
- ``reading_batch`` M5  a batch of readings: parse, judge, COPY text (the store's kernel)
- ``protocols``   G2  DL/T645-2007/1997, Modbus-RTU register maps, MQTT schema
- ``tokens``      G6  secure credit tokens
- ``device_auth`` G5  device API gateway keys and request signatures
- ``secrets_box`` G6  secrets encrypted at rest with a key from the server configuration
- ``simulator``   G7  virtual meters, collectors, 4G and Bluetooth meters
"""

__version__ = "19.0.1.0.0"
