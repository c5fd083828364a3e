"""Fields kept encrypted at rest (G6, G9): a model lists its secret fields; a clear value
written on one (form, web API, demo, tests) is encrypted (``prepaid_core.secrets_box``,
the server's ``prepaid_key_secret``) before it reaches the database, bound to the record
and the field, and opened only where it is used.  A model says how a clear value becomes
bytes (``_secret_plain``), what binds it (``_secret_context``) and how a text that does not
open is reported (``_secret_error``)."""

from odoo import api, models

from prepaid_core import secrets_box


class PrepaidSecretMixin(models.AbstractModel):
    _name = "prepaid.secret.mixin"
    _description = "Fields Stored Encrypted"

    #: the names of the model's fields stored encrypted
    _secret_fields = ()

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [dict(vals) for vals in vals_list]
        clear = [
            {name: vals.pop(name) for name in self._secret_fields if vals.get(name)}
            for vals in vals_list
        ]
        records = super().create(vals_list)
        for record, secrets in zip(records, clear, strict=True):
            if secrets:
                record.write(secrets)
        return records

    def write(self, vals):
        names = [name for name in self._secret_fields if name in vals]
        if not names:
            return super().write(vals)
        vals = dict(vals)
        clear = {name: vals.pop(name) for name in names}
        result = super().write(vals) if vals else True
        for record in self:
            stored = {name: record._secret_stored(name, value) for name, value in clear.items()}
            super(PrepaidSecretMixin, record).write(stored)
        return result

    def _secret_stored(self, name, value):
        """The stored form of ``value`` written on the secret field ``name`` of this record
        (False to clear it): encrypted, or this record's own encrypted text, checked."""
        self.ensure_one()
        if not value:
            return False
        secret = self.env.company._prepaid_key_secret()
        if secrets_box.is_encrypted(value):
            self._secret_open(secret, name, value)  # opens on this record's field, or error
            return value
        plain = self._secret_plain(name, value)
        return secrets_box.encrypt(secret, plain, self._secret_context(name))

    def _secret_open(self, secret, name, stored):
        """The bytes of the encrypted text ``stored`` of field ``name``; a ``UserError``
        (``_secret_error``) when it does not open here."""
        try:
            return secrets_box.decrypt(secret, stored, self._secret_context(name))
        except secrets_box.SecretBoxError as exc:
            raise self._secret_error(name, exc) from exc

    def _secret_plain(self, name, value):
        """The bytes a clear ``value`` of field ``name`` stands for; a ``UserError`` when it
        cannot be a secret of that field."""
        raise NotImplementedError

    def _secret_context(self, name):
        """Associated data of field ``name``'s encrypted text: it opens only there."""
        raise NotImplementedError

    def _secret_error(self, name, exc):
        """The ``UserError`` for a text of field ``name`` that does not open (``exc``)."""
        raise NotImplementedError
