"""G2: a register map file (JSON, prepaid_core's plain form of a map) imported into the
backend, or held for download when a map is exported."""

import base64
import binascii
import json

from odoo import fields, models
from odoo.exceptions import UserError


class MeterGatewayRegisterMapTransfer(models.TransientModel):
    """Import a register map from a JSON file (or hold an exported one for download)."""

    _name = "meter.gateway.register.map.transfer"
    _description = "Register Map File"

    file = fields.Binary(required=True, attachment=False)
    filename = fields.Char()

    def action_import(self):
        """Create the map of the file, or replace the registers of the map of that name."""
        self.ensure_one()
        try:
            data = json.loads(base64.b64decode(self.file))
            values = self.env["meter.gateway.register.map"]._values_from_data(data)
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise UserError(
                self.env._("The file is not a register map: %(error)s", error=str(exc))
            ) from None
        Map = self.env["meter.gateway.register.map"]
        regmap = Map.with_context(active_test=False).search([("code", "=", values["code"])])
        if regmap:
            regmap.write(values)
        else:
            regmap = Map.create(values)
        return {
            "type": "ir.actions.act_window",
            "res_model": Map._name,
            "res_id": regmap.id,
            "view_mode": "form",
        }
