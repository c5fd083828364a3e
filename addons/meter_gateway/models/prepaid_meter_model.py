from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.prepaid_meter.const import CREDIT_CHANNELS

from prepaid_core.protocols.dlt645_data import WAKE_UP_BYTES

from ..const import TOKEN_FORMATS


class PrepaidMeterModel(models.Model):
    _inherit = "prepaid.meter.model"

    modbus_register_map = fields.Many2one(
        "meter.gateway.register.map",
        default=lambda self: self.env.ref(
            "meter_gateway.register_map_acrel_prepaid_1p", raise_if_not_found=False
        ),
        ondelete="restrict",
        help="Register layout of the model's Modbus-RTU meters.",
    )
    billing_register = fields.Selection(
        [
            ("combined", "Combined Active Total"),
            ("forward", "Forward Active Total"),
            ("forward_reverse", "Forward + Reverse Active"),
        ],
        default="combined",
        required=True,
        help="The energy register a DL/T645 poll reads for billing: the combined "
        "active total, the forward active total, or forward and reverse active totals "
        "(both stored; a bidirectional model adds reverse to forward). DL/T645-1997 meters "
        "have no combined total: they bill their forward register.",
    )
    # G2: DL/T645 habits that differ from one meter to another, kept as data
    dlt645_read_way = fields.Selection(
        [
            ("auto", "Block, Else Single Items"),
            ("block", "Blocks Only"),
            ("items", "Single Items Only"),
        ],
        string="DL/T645 Energy Read",
        default="auto",
        required=True,
        help="How a DL/T645 poll reads the energy of meters of this model: as one block "
        "(total and tariffs in one request) and, when a meter refuses blocks, item by item, "
        "the way that worked asked first next time; or only one way, for meters that "
        "answer the other wrongly.",
    )
    dlt645_wake_up_bytes = fields.Integer(
        string="DL/T645 Wake-up Bytes",
        default=4,
        required=True,
        help="How many FEH bytes (0 to 4) open every DL/T645 frame sent to meters of "
        "this model, to wake their receiver; some meters miss a frame without them, "
        "others refuse them.",
    )
    holds_settings = fields.Boolean(
        string="Prices Held by the Meter",
        help="Meters of this model price locally: their prices and alarm thresholds are "
        "issued to them (price and thresholds commands) whenever they change: tariff, "
        "account or meter thresholds, Issue Prices and Thresholds.",
    )
    token_format = fields.Selection(
        TOKEN_FORMATS,
        default="own",
        required=True,
        help="How tokens for meters of this model are made: the project's own "
        "format (a sequence number per meter) or STS (IEC 62055-41, keypad meters only).",
    )
    credit_channel = fields.Selection(
        CREDIT_CHANNELS,
        default="device",
        required=True,
        help="How a credit token reaches meters of this model: over the meter's own "
        "connection (4G, Bluetooth bridge, collector), typed on its keypad by the tenant, "
        "or written to its IC card at the desk.",
    )

    @api.constrains("dlt645_wake_up_bytes")
    def _check_dlt645_wake_up_bytes(self):
        for model in self:
            if model.dlt645_wake_up_bytes not in WAKE_UP_BYTES:
                raise ValidationError(
                    self.env._(
                        "DL/T645 wake-up bytes of %(model)s must be 0 to 4 (got %(bytes)s).",
                        model=model.display_name,
                        bytes=model.dlt645_wake_up_bytes,
                    )
                )

    def _modbus_register_map_data(self):
        """The model's register map in prepaid_core's plain form (the shipped Acrel
        single-phase map's name when none is set)."""
        self.ensure_one()
        if not self.modbus_register_map:
            return "acrel_prepaid_1p"
        return self.modbus_register_map._register_map_data()
