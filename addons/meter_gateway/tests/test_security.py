import re

from odoo.exceptions import AccessError
from odoo.tests import tagged

from prepaid_core import device_auth

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

    def test_gateway_key_shown_once_to_managers_and_stored_as_verifiers_only(self):
        """G5: a manager generates the gateway key and sees it once; what Odoo keeps (its
        hash, the signing public key) is for system administrators only, and an operator
        can neither replace the key nor let the gateway send it unsigned."""
        manager = self._user("gw_key_manager", "prepaid_meter.group_prepaid_manager")
        operator = self._user("gw_key_operator", "prepaid_meter.group_prepaid_user")
        with self.assertRaises(AccessError):
            self.gateway.with_user(operator).action_generate_api_key()
        with self.assertRaises(AccessError):
            self.gateway.with_user(operator).write({"api_accept_unsigned": True})
        self.assertFalse(self.gateway.api_key_set)
        action = self.gateway.with_user(manager).action_generate_api_key()
        key = re.search(r"key (\S+) --", action["params"]["message"]).group(1)
        self.assertTrue(self.gateway.api_key_set)
        for field in ("api_key_hash", "api_signing_public_key"):
            with self.assertRaises(AccessError):
                self.gateway.with_user(manager).read([field])
        stored = self.gateway.sudo()
        self.assertEqual(stored.api_key_hash, device_auth.key_hash(key))
        self.assertEqual(stored.api_signing_public_key, device_auth.public_key_hex(key))
        body = b"{}"
        stamp, signature = device_auth.sign_request(
            device_auth.signing_key(key), "POST", "/meter_gateway/api/v1/push", "m-1", body
        )
        check = (signature, stamp, "m-1", body, "POST", "/meter_gateway/api/v1/push")
        self.assertTrue(self.gateway._check_signature(*check))
        # a new key replaces the old one: the old key's signatures are refused
        self.gateway.with_user(manager).action_generate_api_key()
        self.assertFalse(self.gateway._check_signature(*check))
        self.assertFalse(self.gateway._check_api_key(key))
