"""Meter simulator (G7): virtual meters behind TCP collectors, over MQTT and Bluetooth.

- ``clock``      simulated time (``ManualClock`` for tests, ``AcceleratedClock`` for fleets)
- ``meter``      ``VirtualMeter``: load profile, registers, on-meter prepaid logic (pure)
- ``keypad``     ``StsKeypad``: the STS tokens a keypad meter takes, once
- ``collector``  TCP serial servers with RS-485 buses speaking DL/T645-2007 / Modbus-RTU
- ``mqtt_meter`` 4G meters as MQTT clients (``prepaid_core.protocols.mqtt_schema``)
- ``ble``        Bluetooth meters behind a fake bleak backend
- ``cli``        ``python -m prepaid_core.simulator``: start a fleet
"""
