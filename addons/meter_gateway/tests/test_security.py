from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import MeterGatewayCommon


@tagged("post_install", "-at_install")
class TestSecurity(MeterGatewayCommon):
    def test_access_by_group_and_company(self):
        command = self.Command._queue(self.meter, "relay_off", "cut")
        accountant = self._user("gw_accountant", "prepaid_meter.group_prepaid_accountant")
        operator = self._user("gw_operator", "prepaid_meter.group_prepaid_user")
        self.assertEqual(command.with_user(accountant).read(["state"])[0]["state"], "queued")
        with self.assertRaises(AccessError):
            self.Command.with_user(accountant).create(
                {"meter_id": self.meter.id, "kind": "relay_on"}
            )
        with self.assertRaises(AccessError):
            command.with_user(operator).write({"state": "confirmed"})
        # an operator queues a newer command: the older one is superseded all the same
        newer = self.Command.with_user(operator)._queue(self.meter, "relay_on", "restore")
        self.assertEqual(command.state, "superseded")
        self.assertEqual(command.superseded_by_id, newer)
        with self.assertRaises(AccessError):
            self.env["meter.gateway.message"].with_user(operator).search([])
        other_company = self.env["res.company"].create({"name": "Other Landlord"})
        stranger = self._user(
            "gw_stranger", "prepaid_meter.group_prepaid_manager", company=other_company
        )
        self.assertFalse(self.Command.with_user(stranger).search([("id", "=", command.id)]))
