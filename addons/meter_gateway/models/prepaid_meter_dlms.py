"""G9: a DLMS/COSEM meter's addresses and secrets.

On an HDLC bus (RS-485 behind a collector) each meter answers to its physical address; a
meter or DLMS gateway on TCP (wrapper) to its logical device.  Its password (LLS) and its
block cipher and authentication keys (HLS GMAC, ciphering) are stored encrypted, like the
companies' vending keys (``prepaid_core.secrets_box``, the server's ``prepaid_key_secret``),
bound to the meter and the field: a database dump alone reveals none, a text copied to
another meter does not open.  They are decrypted only to build a poll's job."""

import re

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from prepaid_core import device_push
from prepaid_core.buses.common import DlmsSettings

from .prepaid_meter_model_dlms import DLMS_PROTOCOLS

KEY_RE = re.compile(r"^[0-9A-Fa-f]{32}$")
#: the meter's secret fields: field -> whether it holds a 16-byte AES key (else a password)
SECRET_FIELDS = {
    "dlms_password": False,
    "dlms_block_cipher_key": True,
    "dlms_authentication_key": True,
}
#: the largest HDLC address (logical or physical: 14 bits in four-byte addressing)
MAX_HDLC_ADDRESS = 0x3FFF


class PrepaidMeter(models.Model):
    _name = "prepaid.meter"
    _inherit = ["prepaid.meter", "prepaid.secret.mixin"]
    _secret_fields = tuple(SECRET_FIELDS)

    dlms_logical_address = fields.Integer(
        string="DLMS Logical Device",
        default=1,
        help="The meter's logical device (1: the management logical device).",
    )
    dlms_physical_address = fields.Integer(
        string="DLMS Physical Address",
        help="The meter's own HDLC address on its RS-485 bus (1-16383), unique on the "
        "bus; often printed on the meter or derived from its serial number.",
    )
    dlms_password = fields.Char(
        string="DLMS Password",
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="The password of low-level authentication; stored encrypted.",
    )
    dlms_block_cipher_key = fields.Char(
        string="DLMS Block Cipher Key",
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="The meter's global unicast encryption key (32 hexadecimal digits); stored encrypted.",
    )
    dlms_authentication_key = fields.Char(
        string="DLMS Authentication Key",
        copy=False,
        groups="prepaid_meter.group_prepaid_manager",
        help="The meter's authentication key (32 hexadecimal digits); stored encrypted.",
    )

    # === CONSTRAINTS === #

    @api.constrains("dlms_logical_address", "dlms_physical_address", "bus_id", "state")
    def _check_dlms_addresses(self):
        """G9: addresses within HDLC's range, and unique on the bus as the bus's kind of
        DLMS needs them (physical on HDLC, logical behind a wrapper)."""
        for meter in self.filtered(lambda m: m.bus_id.protocol in DLMS_PROTOCOLS):
            meter._check_dlms_address_range()
            hdlc = meter.bus_id.protocol == "dlms_hdlc"
            name = "dlms_physical_address" if hdlc else "dlms_logical_address"
            if meter.state != "removed" and self.search_count(
                [
                    ("id", "!=", meter.id),
                    ("bus_id", "=", meter.bus_id.id),
                    (name, "=", meter[name]),
                    ("state", "!=", "removed"),
                ],
                limit=1,
            ):
                raise ValidationError(
                    self.env._(
                        "%(field)s %(value)s is already used on the bus of %(meter)s.",
                        field=self._fields[name]._description_string(self.env),
                        value=meter[name],
                        meter=meter.display_name,
                    )
                )

    def _check_dlms_address_range(self):
        hdlc = self.bus_id.protocol == "dlms_hdlc"
        checks = [("dlms_logical_address", 0 if not hdlc else 1)]
        if hdlc:
            checks.append(("dlms_physical_address", 1))
        for name, lowest in checks:
            if not lowest <= self[name] <= MAX_HDLC_ADDRESS:
                raise ValidationError(
                    self.env._(
                        "%(field)s of %(meter)s must be %(low)s to %(high)s (got %(value)s).",
                        field=self._fields[name]._description_string(self.env),
                        meter=self.display_name,
                        low=lowest,
                        high=MAX_HDLC_ADDRESS,
                        value=self[name],
                    )
                )

    # === SECRETS: encrypted before they are stored (prepaid.secret.mixin) === #

    def _secret_context(self, name):
        self.ensure_one()
        return f"prepaid.meter:{self.id}:{name}".encode("ascii")

    def _secret_plain(self, name, value):
        """A key is 32 hexadecimal digits; a password, its text."""
        if not SECRET_FIELDS[name]:
            return value.encode()
        if not KEY_RE.match(value):
            raise UserError(
                self.env._(
                    "%(field)s: a DLMS key is 32 hexadecimal digits (16 bytes).",
                    field=self._fields[name]._description_string(self.env),
                )
            )
        return bytes.fromhex(value)

    def _secret_error(self, name, exc):
        return UserError(
            self.env._(
                "%(field)s of %(meter)s cannot be decrypted with the server's "
                "prepaid_key_secret (%(reason)s): write it again, or configure the "
                "secret it was encrypted with.",
                field=self._fields[name]._description_string(self.env),
                meter=self.display_name,
                reason=exc,
            )
        )

    # === FOR THE DLMS DRIVER === #

    def _device_key(self):
        """A DLMS meter without address is named to the gateway runner by its bus and
        addresses (``dlms:<bus>:<logical>:<physical>``, physical 0 behind a wrapper)."""
        key = super()._device_key()
        if key or self.model_id.protocol not in DLMS_PROTOCOLS or not self.bus_id:
            return key
        hdlc = self.bus_id.protocol == "dlms_hdlc"
        physical = self.dlms_physical_address if hdlc else 0
        return device_push.dlms_key(self.bus_id.number, self.dlms_logical_address, physical)

    def _dlms_settings(self, interface):
        """The plain settings (``DlmsSettings``) of this meter's association on a bus of
        ``interface`` (``hdlc`` or ``wrapper``), its secrets decrypted for the poll."""
        self.ensure_one()
        model = self.model_id
        meter = self.sudo()
        stored = {name: meter[name] for name in SECRET_FIELDS}
        plain = dict.fromkeys(SECRET_FIELDS, b"")
        if any(stored.values()):
            secret = self.env.company._prepaid_key_secret()
            plain.update(
                {
                    name: meter._secret_open(secret, name, value)
                    for name, value in stored.items()
                    if value
                }
            )
        return DlmsSettings(
            interface=interface,
            client_address=model.dlms_client_address,
            logical_address=self.dlms_logical_address,
            physical_address=self.dlms_physical_address,
            authentication=model.dlms_authentication,
            security=model.dlms_security,
            password=plain["dlms_password"],
            system_title=bytes.fromhex(model.dlms_system_title or ""),
            block_cipher_key=plain["dlms_block_cipher_key"],
            authentication_key=plain["dlms_authentication_key"],
            invocation_counter_obis=model.dlms_invocation_counter_obis or "",
        )
