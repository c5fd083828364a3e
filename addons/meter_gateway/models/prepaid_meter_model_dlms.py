"""G9: how the DLMS/COSEM meters of a model are read: the client they are read as and the
security of that association (the meters' own addresses and keys are on each meter)."""

import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError

DLMS_PROTOCOLS = ("dlms_hdlc", "dlms_wrapper")
OBIS_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){5}$")
HEX8_RE = re.compile(r"^[0-9A-Fa-f]{16}$")


class PrepaidMeterModel(models.Model):
    _inherit = "prepaid.meter.model"

    dlms_client_address = fields.Integer(
        string="DLMS Client",
        default=16,
        help="The client address the meters of this model are read as: 16 for the "
        "public client (no security), 1 for the management client, or the one the meter "
        "maker gives.",
    )
    dlms_authentication = fields.Selection(
        [
            ("none", "None"),
            ("low", "Low (Password)"),
            ("high_gmac", "High (GMAC)"),
        ],
        string="DLMS Authentication",
        default="none",
        required=True,
        help="How the association proves the client: no authentication, a password "
        "(LLS) or the HLS GMAC exchange with the meter's keys (security suite 0).",
    )
    dlms_security = fields.Selection(
        [
            ("none", "None"),
            ("authentication", "Authenticated"),
            ("encryption", "Encrypted"),
            ("authentication_encryption", "Authenticated and Encrypted"),
        ],
        string="DLMS Ciphering",
        default="none",
        required=True,
        help="The protection of every request and reply (AES-GCM-128, security suite 0) "
        "with the meter's block cipher and authentication keys.",
    )
    dlms_system_title = fields.Char(
        string="DLMS Client System Title",
        default="5050454E45524759",
        help="The 8-byte system title (16 hexadecimal digits) the server presents to "
        "meters in ciphered associations.",
    )
    dlms_invocation_counter_obis = fields.Char(
        string="DLMS Frame Counter",
        default="0.0.43.1.0.255",
        help="The logical name (OBIS) of the meter's frame counter, read by the public "
        "client before a ciphered association so the server's requests count on from it.",
    )

    @api.constrains(
        "protocol",
        "dlms_client_address",
        "dlms_authentication",
        "dlms_security",
        "dlms_system_title",
        "dlms_invocation_counter_obis",
    )
    def _check_dlms(self):
        for model in self.filtered(lambda m: m.protocol in DLMS_PROTOCOLS):
            model._check_dlms_settings()

    def _check_dlms_settings(self):
        if not 1 <= self.dlms_client_address <= 127:
            raise ValidationError(
                self.env._(
                    "DLMS Client of %(model)s: a client address is 1 to 127 (got %(value)s).",
                    model=self.display_name,
                    value=self.dlms_client_address,
                )
            )
        ciphered = self.dlms_security != "none" or self.dlms_authentication == "high_gmac"
        if ciphered and not HEX8_RE.match(self.dlms_system_title or ""):
            raise ValidationError(
                self.env._(
                    "DLMS Client System Title of %(model)s: 16 hexadecimal digits (8 bytes) "
                    "are needed by ciphered associations.",
                    model=self.display_name,
                )
            )
        obis = self.dlms_invocation_counter_obis or ""
        if ciphered and not (OBIS_RE.match(obis) and all(int(n) <= 255 for n in obis.split("."))):
            raise ValidationError(
                self.env._(
                    "DLMS Frame Counter of %(model)s: a logical name is six numbers "
                    "separated by dots, e.g. 0.0.43.1.0.255.",
                    model=self.display_name,
                )
            )
