"""M9/G1: the commissioning check of a gateway, *Test Connection*.

A TCP collector polled by Odoo has every meter of its buses (draft or in service) read
once through the poll's own bus drivers (DL/T645, Modbus-RTU, DLMS), with no command;
meters of 4G/MQTT gateways, Bluetooth bridges and collectors served by a gateway runner
(which holds the buses) are shown as last seen.  Nothing is stored but the result: a
check made while a site is commissioned must not start billing baselines, connection
counters or online/lost states before the meters are put in service; the first scheduled
poll stores their first readings.
"""

from odoo import fields, models

from odoo.addons.prepaid_meter.utils import selection_label

from .prepaid_gateway_poll import _run_poll_tasks

#: the meters a check reads: all but the removed ones
TESTED_STATES = ("draft", "in_service")


class PrepaidGateway(models.Model):
    _inherit = "prepaid.gateway"

    def action_test_connection(self):
        self.ensure_one()
        if self.gateway_type == "tcp_collector" and not self.served_by_runner:
            lines = self._connection_test_read()
        else:
            lines = self._connection_test_last_seen()
        test = self.env["meter.gateway.connection.test"].create(
            {"gateway_id": self.id, "line_ids": [fields.Command.create(line) for line in lines]}
        )
        return test._open()

    def _connection_test_read(self):
        """Every meter of the collector read once: line values, answered or why not."""
        buses, polled = self._polled_buses_and_meters(states=TESTED_STATES)
        Command = self.env["meter.gateway.command"]
        results = _run_poll_tasks(self._poll_tasks(buses, polled, Command))
        lines = []
        for bus, result in results.items():
            if not result.connected:
                for meter in polled.filtered(lambda m, bus=bus: m.bus_id == bus):
                    lines.append(self._test_line(meter, "unreachable", result.error))
                continue
            for meter_result in result.meters:
                meter = polled.browse(meter_result.meter_id)
                lines.append(self._meter_test_line(meter, meter_result))
        others = self.meter_ids.filtered(lambda m: m.state in TESTED_STATES) - polled
        for meter in others:
            lines.append(self._test_line(meter, "not_polled", self._not_polled_reason(meter)))
        return lines

    def _meter_test_line(self, meter, meter_result):
        if meter_result.ok:
            values = meter_result.values
            detail = self.env._(
                "total %(total)s %(uom)s, relay %(relay)s",
                total=values.get("forward_total"),
                uom=meter.uom_name or "",
                relay=selection_label(meter, "actual_relay_state", values.get("relay_state")),
            )
            return self._test_line(meter, "answered", detail)
        state = "refused" if meter_result.answered else "silent"
        return self._test_line(meter, state, meter_result.error)

    def _not_polled_reason(self, meter):
        if not meter.bus_id:
            return self.env._("no bus: the meter is not wired to this collector")
        if meter.bus_id.driver == "none" or not (
            meter.bus_id.port or meter.bus_id.connection == "serial"
        ):
            return self.env._("bus %s has no driver or no port", meter.bus_id.name)
        return self.env._("no address to reach it by")

    def _connection_test_last_seen(self):
        """Meters that speak for themselves (MQTT, device API, runner): their last contact."""
        lines = []
        for meter in self.meter_ids.filtered(lambda m: m.state in TESTED_STATES):
            if meter.connection_state == "online":
                state, detail = "answered", self.env._("seen recently")
            elif meter.last_contact_at:
                state, detail = "silent", self.env._("lost connection")
            else:
                state, detail = "silent", self.env._("never seen")
            lines.append(self._test_line(meter, state, detail, seen=meter.last_contact_at))
        return lines

    @staticmethod
    def _test_line(meter, state, detail, seen=False):
        return {
            "meter_id": meter.id,
            "bus_id": meter.bus_id.id,
            "address": meter.address or meter.name,
            "state": state,
            "detail": detail,
            "last_seen_at": seen or meter.last_contact_at,
        }
