import json

from odoo import api, fields, models

from prepaid_core.readings import shown

#: the longest payload kept of a rejected item (its JSON, cut there)
MAX_PAYLOAD = 4000
#: the longest address and reason kept
MAX_ADDRESS = 64
MAX_REASON = 1000

REJECTED_KINDS = [
    ("reading", "Reading"),
    ("event", "Event"),
    ("daily_frozen", "Daily Freeze"),
    ("clock", "Clock"),
]


def safe_payload(item):
    """``item`` (anything a device sent) as text PostgreSQL stores: JSON in ASCII (NUL and
    unpaired surrogates escaped), cut at :data:`MAX_PAYLOAD` characters."""
    try:
        text = json.dumps(item, default=str, sort_keys=True)
    except (ValueError, TypeError, RecursionError):  # (nested too deep, odd keys)
        text = ascii(shown(item))
    if len(text) > MAX_PAYLOAD:
        text = text[: MAX_PAYLOAD - 3] + "..."
    return text


def _storable(text, limit):
    """``text`` without NUL or unpaired surrogates (escaped), cut at ``limit``."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]


class PrepaidMeterReadingRejection(models.Model):
    """X1: an item a device sent that could not be stored (a reading, an event, a daily
    freeze, a clock), kept with its reason for an operator; the rest of its batch was
    stored."""

    _name = "prepaid.meter.reading.rejection"
    _description = "Rejected Meter Reading"
    _order = "id desc"

    kind = fields.Selection(REJECTED_KINDS, required=True, default="reading", index=True)
    meter_id = fields.Many2one("prepaid.meter", index=True, ondelete="cascade")
    gateway_id = fields.Many2one(
        "prepaid.gateway", index="btree_not_null", ondelete="set null", help="Who sent it."
    )
    company_id = fields.Many2one("res.company", index=True, default=lambda self: self.env.company)
    address = fields.Char()
    source = fields.Char()
    reason = fields.Char(required=True)
    payload = fields.Text(help="The item as it was received (JSON, cut short when long).")

    @api.model
    def _record(self, rejections, rows, source=None, kind="reading", gateway=None):
        """Keep ``rejections`` (``{"index", "reason", "meter_id"}``) of the items ``rows``
        (of ``kind``, from ``gateway`` when known, else the ``gateway_id`` a row names)."""
        meters = self.env["prepaid.meter"].sudo()
        items = [rows[r["index"]] if 0 <= r["index"] < len(rows) else {} for r in rejections]
        named = [item if isinstance(item, dict) else {} for item in items]
        gateways = set(
            self.env["prepaid.gateway"]
            .sudo()
            .browse({n["gateway_id"] for n in named if type(n.get("gateway_id")) is int})
            .exists()
            .ids
        )
        meter_ids = [r.get("meter_id") for r in rejections]
        wanted = {meter_id for meter_id in meter_ids if type(meter_id) is int}
        known = {meter.id: meter for meter in meters.browse(wanted).exists()}
        vals_list = []
        for meter_id, rejection, item, values in zip(
            meter_ids, rejections, items, named, strict=True
        ):
            meter = known.get(meter_id, meters) if type(meter_id) is int else meters
            address = values.get("address")
            gateway_id = gateway.id if gateway else values.get("gateway_id")
            row_source = values.get("source")
            vals_list.append(
                {
                    "kind": kind,
                    "meter_id": meter.id,
                    "gateway_id": gateway_id if gateway or gateway_id in gateways else False,
                    "company_id": meter.company_id.id or self.env.company.id,
                    "address": _storable(address, MAX_ADDRESS)
                    if isinstance(address, str) and address
                    else meter.address,
                    "source": source or (row_source if isinstance(row_source, str) else False),
                    "reason": _storable(rejection["reason"], MAX_REASON),
                    "payload": safe_payload(item),
                }
            )
        return self.sudo().create(vals_list)
