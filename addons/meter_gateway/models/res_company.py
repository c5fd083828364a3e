"""The company's token vending key (G6), kept encrypted at rest.

Every meter's token key derives from this key, so it is stored as ``v1:<base64>``
(``prepaid_core.secrets_box``): encrypted with the ``prepaid_key_secret`` option of the Odoo
server's configuration file and bound to the company id, so a database dump alone does not
reveal it. A hex key written on the field (web API, demo, tests) is encrypted before it
reaches the database; nothing logs the key.
"""

import logging
import secrets

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import config

from prepaid_core import secrets_box

_logger = logging.getLogger(__name__)

SECRET_OPTION = "prepaid_key_secret"
VENDING_KEY_BYTES = 32
MIN_VENDING_KEY_BYTES = 16


class ResCompany(models.Model):
    _inherit = "res.company"

    prepaid_vending_key = fields.Char(
        string="Token Vending Key",
        groups="base.group_system",
        copy=False,
        help="Secret from which each meter's token key is derived (G6), stored encrypted with "
        "the server's prepaid_key_secret option. Write a hex key (at least 16 bytes) to set "
        "it; generated on first use; meters must be keyed with it.",
    )

    # === CRUD: a hex key is encrypted before it is stored === #

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [dict(vals) for vals in vals_list]
        keys = [vals.pop("prepaid_vending_key", False) for vals in vals_list]
        companies = super().create(vals_list)
        for company, key in zip(companies, keys, strict=True):
            if key:
                company.write({"prepaid_vending_key": key})
        return companies

    def write(self, vals):
        if "prepaid_vending_key" not in vals:
            return super().write(vals)
        vals = dict(vals)
        key = vals.pop("prepaid_vending_key")
        result = super().write(vals) if vals else True
        for company in self:
            stored = company._prepaid_encrypt_vending_key(key)
            super(ResCompany, company).write({"prepaid_vending_key": stored})
        return result

    # === BUSINESS METHODS === #

    def _prepaid_vending_key(self):
        """The company's vending key as bytes (generated and stored encrypted on first use)."""
        self.ensure_one()
        company = self.sudo()
        secret = company._prepaid_key_secret()
        stored = company.prepaid_vending_key
        if not stored:
            key = secrets.token_bytes(VENDING_KEY_BYTES)
            company.prepaid_vending_key = key.hex()
            return key
        if not secrets_box.is_encrypted(stored):
            # a key stored in clear before encryption at rest: encrypted on first use
            company.prepaid_vending_key = stored
            return bytes.fromhex(stored)
        return company._prepaid_decrypt_vending_key(secret, stored)

    def _prepaid_key_secret(self):
        """The server's ``prepaid_key_secret``, or a ``UserError`` saying where to set it."""
        secret = config.get(SECRET_OPTION)
        if not isinstance(secret, str) or len(secret.strip()) < secrets_box.MIN_SECRET_LENGTH:
            raise UserError(
                self.env._(
                    "The token vending key is kept encrypted with a secret of the Odoo "
                    "server, and none is configured: add a line "
                    "“%(option)s = <a random text of at least %(length)s characters>” to the "
                    "[options] section of the server's configuration file (odoo.conf), then "
                    "restart Odoo. Keep it safe: the stored key cannot be read without it.",
                    option=SECRET_OPTION,
                    length=secrets_box.MIN_SECRET_LENGTH,
                )
            )
        return secret

    def _prepaid_key_context(self):
        """Associated data of the encrypted key: it opens only on this company."""
        self.ensure_one()
        return f"res.company:{self.id}".encode("ascii")

    def _prepaid_encrypt_vending_key(self, value):
        """The stored form of ``value`` (a hex key, or this company's encrypted text)."""
        self.ensure_one()
        if not value:
            return False
        secret = self._prepaid_key_secret()
        if secrets_box.is_encrypted(value):
            self._prepaid_decrypt_vending_key(secret, value)  # opens here, or UserError
            return value
        try:
            key = bytes.fromhex(value)
        except (TypeError, ValueError):
            key = b""
        if len(key) < MIN_VENDING_KEY_BYTES:
            raise UserError(
                self.env._(
                    "A token vending key is written in hexadecimal, at least %(length)s bytes.",
                    length=MIN_VENDING_KEY_BYTES,
                )
            )
        return secrets_box.encrypt(secret, key, self._prepaid_key_context())

    def _prepaid_decrypt_vending_key(self, secret, stored):
        try:
            return secrets_box.decrypt(secret, stored, self._prepaid_key_context())
        except secrets_box.SecretBoxError as exc:
            raise UserError(
                self.env._(
                    "The token vending key of %(company)s cannot be decrypted with the "
                    "server's %(option)s (%(reason)s). Configure the secret it was "
                    "encrypted with.",
                    company=self.display_name,
                    option=SECRET_OPTION,
                    reason=exc,
                )
            ) from exc

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
