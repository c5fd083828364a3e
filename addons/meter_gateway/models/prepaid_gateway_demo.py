"""X3: demo data's preparation of the collectors the simulator answers for."""

from odoo import api, models


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    @api.model
    def _demo_prepare_polling(self, gateway_ids):
        """Poll these collectors every minute; a Modbus meter's unit id is its position on
        the bus (the last digits of its address, as the simulator has it)."""
        gateways = self.browse(gateway_ids)
        gateways.write({"poll_interval": 1, "poll_timeout": 0.5, "poll_retries": 1})
        for meter in gateways.meter_ids.filtered(lambda m: m.bus_id.protocol == "modbus_rtu"):
            meter.modbus_unit_id = int(meter.address[-4:])
        return gateways
