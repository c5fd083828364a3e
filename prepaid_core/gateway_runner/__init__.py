"""The gateway runner: long-lived device connections outside the Odoo workers (G1, G2, G5).

Like OCA queue_job's job runner, it is a separate process that talks to Odoo over HTTP
only (the device API of the ``meter_gateway`` add-on) and never imports Odoo:

- ``mqtt``: a persistent MQTT 5 subscription (QoS 1, manual acknowledgements) for 4G
  meters; readings, events and command answers are posted in batches and acknowledged to
  the broker only after the device API confirmed that the batch is committed; pending
  commands are fetched and published to the meters' ``cmd`` topics;
- ``ble``: a Bluetooth bridge near the meters that reads them and delivers pending credit
  tokens over BLE GATT with bleak;
- ``api``: the device API client (API key or HMAC, retries with the same message id).

Run it with ``python -m prepaid_core.gateway_runner --help``.
"""

from prepaid_core.gateway_runner.api import DeviceApiClient, DeviceApiError, DeviceApiUnavailable

__all__ = ["DeviceApiClient", "DeviceApiError", "DeviceApiUnavailable"]
