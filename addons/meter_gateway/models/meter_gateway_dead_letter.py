from odoo import api, fields, models

from prepaid_core.device_push import DeviceApiError, device_text
from prepaid_core.protocols import mqtt_schema

#: letters per device API message, and the longest text kept of each field
MAX_LETTERS = 1000
MAX_PAYLOAD_CHARS = 65536
MAX_TOPIC_CHARS = 256
MAX_REASON_CHARS = 2000


def _topic_address(topic):
    """The meter address of a schema topic (``prepaid/v1/<address>/<kind>``), else
    ``False``."""
    try:
        address, _kind = mqtt_schema.parse_topic(topic)
    except mqtt_schema.SchemaError:
        return False
    return address if address.isascii() else False


class MeterGatewayDeadLetter(models.Model):
    """R12/X1: a device message the gateway runner could not get stored (malformed, or
    refused by the device API even alone), acknowledged to the broker so that it no
    longer holds the meters' other messages, and kept here for an operator."""

    _name = "meter.gateway.dead.letter"
    _description = "Dead Letter"
    _order = "id desc"
    _rec_name = "topic"

    gateway_id = fields.Many2one(
        "prepaid.gateway", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="gateway_id.company_id", store=True, index=True)
    topic = fields.Char(readonly=True, help="Where the device published the message.")
    address = fields.Char(
        string="Meter Address", readonly=True, index=True, help="From the topic, when valid."
    )
    meter_id = fields.Many2one("prepaid.meter", readonly=True, index="btree_not_null")
    reason = fields.Text(readonly=True, required=True, help="Why the message was set aside.")
    payload = fields.Text(
        readonly=True,
        help="The message as received (bytes that are not UTF-8 shown as \\x.. escapes).",
    )
    received_at = fields.Datetime(readonly=True, help="When the gateway runner received it.")

    # === DEVICE API (G5) === #
    @api.model
    def _api_record(self, gateway, payload):
        """Store the letters of one device API message; answer what was stored and which
        letters were refused (with their reason), the others stored all the same."""
        if not isinstance(payload, dict) or not isinstance(payload.get("letters"), list):
            raise DeviceApiError("bad_payload", 'the body must be {"letters": [...]}')
        letters = payload["letters"]
        if len(letters) > MAX_LETTERS:
            raise DeviceApiError("batch_too_large", f"at most {MAX_LETTERS} letters per message")
        vals_list, rejected = [], []
        for index, letter in enumerate(letters):
            vals = self._letter_vals(gateway, letter)
            if isinstance(vals, str):
                rejected.append({"letters": index, "reason": vals})
            else:
                vals_list.append(vals)
        self._link_meters(gateway, vals_list)
        self.sudo().create(vals_list)
        return {"stored": len(vals_list), "rejected": rejected}

    @api.model
    def _letter_vals(self, gateway, letter):
        """The values of one letter, or the reason it cannot be kept (a string)."""
        if not isinstance(letter, dict):
            return "a letter must be an object"
        texts = {key: letter.get(key) for key in ("topic", "payload", "reason")}
        if not all(isinstance(value, str) for value in texts.values()):
            return "'topic', 'payload' and 'reason' must be strings"
        if not texts["reason"].strip():
            return "a letter needs its reason"
        topic = device_text(texts["topic"], MAX_TOPIC_CHARS)
        return {
            "gateway_id": gateway.id,
            "topic": topic,
            "address": _topic_address(topic),
            "payload": device_text(texts["payload"], MAX_PAYLOAD_CHARS),
            "reason": device_text(texts["reason"], MAX_REASON_CHARS),
            "received_at": self._received_at(letter.get("received_at")),
        }

    @staticmethod
    def _received_at(value):
        """When the runner received the letter; now when it does not say it clearly."""
        text = value.replace("T", " ").removesuffix("Z")[:19] if isinstance(value, str) else ""
        try:
            return fields.Datetime.to_datetime(text) or fields.Datetime.now()
        except ValueError:
            return fields.Datetime.now()

    @api.model
    def _link_meters(self, gateway, vals_list):
        addresses = {vals["address"] for vals in vals_list if vals["address"]}
        if not addresses:
            return
        meters = gateway._api_meters_by_address(addresses)
        for vals in vals_list:
            vals["meter_id"] = meters.get(vals["address"], False)
