"""Meter protocols (G2): pure codecs, no I/O.

Encoders return ``bytes``; decoders take ``bytes`` and return ``(used, frame)`` or typed
values.  Transport (serial, TCP collectors, MQTT) lives in the gateway and the simulator.

- ``ble``          Bluetooth GATT profile of the prepaid meter: UUIDs, formats, decoding,
                   the bridge's read and token exchanges over a bleak client
- ``dlt645``       DL/T645-2007 and -1997 frames: codec, stream ``Framer``, master requests
                   and reply parsing, slave-side request parsing and reply building
- ``dlt645_data``  DL/T645 data identifiers (DI table with BCD formats and units), BCD
                   helpers, status word 3, the ``DLT645Error`` hierarchy
- ``modbus``       Modbus-RTU on pymodbus: read requests coalesced from a register map,
                   response decoding with scales and CT/PT multipliers, relay writes,
                   slave-side answers for simulated meters, ``ModbusCodecError`` hierarchy
- ``modbus_maps``  register maps per meter model (data, no code)
- ``modbus_registers``  the types the maps are written in (``Field``, ``RegisterMap``)
- ``mqtt_schema``  MQTT topics and JSON payloads of 4G meters
"""
