"""The company's token vending keys (G6), kept encrypted at rest.

Every meter's token key derives from a vending key (the project's own format's, and the
STS one for meters taking STS tokens), so each is stored as ``v1:<base64>``
(``prepaid_core.secrets_box``): encrypted with the ``prepaid_key_secret`` option of the Odoo
server's configuration file and bound to the company id (and to its field), so a database
dump alone does not reveal it. A hex key written on a field (web API, demo, tests) is
encrypted before it reaches the database; nothing logs a key.
"""

import logging
import secrets
from typing import NamedTuple

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import config

from prepaid_core import secrets_box

_logger = logging.getLogger(__name__)

SECRET_OPTION = "prepaid_key_secret"
VENDING_KEY_BYTES = 32
MIN_VENDING_KEY_BYTES = 16


class KeyField(NamedTuple):
    """An encrypted key field: its length rule, whether it is generated on first use, and
    what binds its encrypted text to it (beside the company id)."""

    min_bytes: int
    max_bytes: int | None
    generated: bool
    context: str


#: the fields holding a vending key, all stored encrypted the same way
KEY_FIELDS = {
    "prepaid_vending_key": KeyField(MIN_VENDING_KEY_BYTES, None, True, ""),
    # DKGA02 takes a DES key; it comes from the meters' key management, never generated
    "prepaid_sts_vending_key": KeyField(8, 8, False, ":sts"),
}


class ResCompany(models.Model):
    _name = "res.company"
    _inherit = ["res.company", "prepaid.secret.mixin"]
    _secret_fields = tuple(KEY_FIELDS)

    prepaid_vending_key = fields.Char(
        string="Token Vending Key",
        groups="base.group_system",
        copy=False,
        help="Secret from which each meter's token key is derived, stored encrypted with "
        "the server's prepaid_key_secret option. Write a hex key (at least 16 bytes) to set "
        "it; generated on first use; meters must be keyed with it.",
    )
    prepaid_sts_vending_key = fields.Char(
        string="STS Vending Key",
        groups="base.group_system",
        copy=False,
        help="The 8-byte vending key (hex) from which the decoder key of each STS meter is "
        "derived (DKGA02), as the meters' key management issued it; stored encrypted with "
        "the server's prepaid_key_secret option.",
    )

    # === SECRETS: a hex key is encrypted before it is stored (prepaid.secret.mixin) === #

    def _secret_context(self, name):
        self.ensure_one()
        return f"res.company:{self.id}{KEY_FIELDS[name].context}".encode("ascii")

    def _secret_plain(self, name, value):
        try:
            key = bytes.fromhex(value)
        except (TypeError, ValueError):
            key = b""
        spec = KEY_FIELDS[name]
        if len(key) < spec.min_bytes or (spec.max_bytes and len(key) > spec.max_bytes):
            raise UserError(
                self.env._(
                    "A token vending key is written in hexadecimal, at least %(length)s bytes.",
                    length=spec.min_bytes,
                )
                if not spec.max_bytes
                else self.env._(
                    "An STS vending key is written in hexadecimal, exactly %(length)s bytes.",
                    length=spec.max_bytes,
                )
            )
        return key

    def _secret_error(self, name, exc):
        return UserError(
            self.env._(
                "The token vending key of %(company)s cannot be decrypted with the "
                "server's %(option)s (%(reason)s). Configure the secret it was "
                "encrypted with.",
                company=self.display_name,
                option=SECRET_OPTION,
                reason=exc,
            )
        )

    # === BUSINESS METHODS === #

    def _prepaid_vending_key(self):
        """The company's vending key as bytes (generated and stored encrypted on first use)."""
        return self._prepaid_key("prepaid_vending_key")

    def _prepaid_sts_vending_key(self):
        """The company's STS vending key as bytes, or a ``UserError`` saying where to set it."""
        return self._prepaid_key("prepaid_sts_vending_key")

    def _prepaid_key(self, name):
        """The key of field ``name`` as bytes: generated and stored encrypted on first use
        when its field says so, else a ``UserError`` while it is not set."""
        self.ensure_one()
        company = self.sudo()
        secret = company._prepaid_key_secret()
        stored = company[name]
        if not stored and KEY_FIELDS[name].generated:
            key = secrets.token_bytes(VENDING_KEY_BYTES)
            company[name] = key.hex()
            return key
        if not stored:
            raise UserError(
                self.env._(
                    "%(company)s has no %(key)s: a manager sets it in the company's settings.",
                    company=company.display_name,
                    key=company._fields[name]._description_string(self.env),
                )
            )
        if not secrets_box.is_encrypted(stored):
            # a key stored in clear before encryption at rest: encrypted on first use
            company[name] = stored
            return bytes.fromhex(stored)
        return company._secret_open(secret, name, stored)

    def _prepaid_key_secret(self):
        """The server's ``prepaid_key_secret``, or a ``UserError`` saying where to set it."""
        secret = config.get(SECRET_OPTION)
        if not isinstance(secret, str) or len(secret.strip()) < secrets_box.MIN_SECRET_LENGTH:
            raise UserError(
                self.env._(
                    "Token vending keys and meter keys are kept encrypted with a secret "
                    "of the Odoo server, and none is configured: add a line "
                    "“%(option)s = <a random text of at least %(length)s characters>” to the "
                    "[options] section of the server's configuration file (odoo.conf), then "
                    "restart Odoo. Keep it safe: the stored key cannot be read without it.",
                    option=SECRET_OPTION,
                    length=secrets_box.MIN_SECRET_LENGTH,
                )
            )
        return secret

    @api.model
    def _prepaid_encrypt_clear_vending_keys(self):
        """Encrypt the vending keys still stored in clear (upgrade); without a configured
        secret, leave them and warn (they are encrypted on first use once it is set)."""
        companies = self.sudo().with_context(active_test=False).search([])
        clear = companies.filtered(
            lambda c: c.prepaid_vending_key and not secrets_box.is_encrypted(c.prepaid_vending_key)
        )
        if not clear:
            return clear
        try:
            self._prepaid_key_secret()
        except UserError:
            _logger.warning(
                "%s companies keep their token vending key in clear: set %s in the server's "
                "configuration file to have it encrypted",
                len(clear),
                SECRET_OPTION,
            )
            return clear.browse()
        for company in clear:
            company.prepaid_vending_key = company.prepaid_vending_key
        return clear
