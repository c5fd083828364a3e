"""Fields kept encrypted at rest (G6, G9): a model lists its secret fields; a clear value
written on one (form, web API, demo, tests) is turned into its stored, encrypted form by
the model's ``_secret_stored`` before it reaches the database."""

from odoo import api, models


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
        (False to clear it); a ``UserError`` for a value that cannot be a secret of it."""
        raise NotImplementedError
