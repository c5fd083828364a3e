from odoo.addons.prepaid_meter.tests.common import PrepaidMeterCommon


class MeterGatewayCommon(PrepaidMeterCommon):
    """prepaid_meter's small site plus helpers for commands."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Command = cls.env["meter.gateway.command"]
        cls.meter2 = cls._create_meter("Power T-102", "000000000102", cls.unit2)

    def _active(self, meter, purpose="relay"):
        return self.Command.search(
            [
                ("meter_id", "=", meter.id),
                ("purpose", "=", purpose),
                ("state", "in", ("queued", "sent")),
            ]
        )
