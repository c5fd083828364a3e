"""G6: the company's token vending key is stored encrypted with the server's
``prepaid_key_secret`` (a database dump alone does not reveal it), and tokens keep
verifying across the change."""

import base64
from decimal import Decimal
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import SQL, config

from prepaid_core.tokens import TokenAcceptor, derive_meter_key, token_from_text

from .common import MeterGatewayCommon

KEY_HEX = "3c" * 16 + "a5" * 16
LOGGER = "odoo.addons.meter_gateway.models.res_company"


@tagged("post_install", "-at_install")
class TestVendingKey(MeterGatewayCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Company = cls.env["res.company"]
        cls.other = cls.Company.create({"name": "Vending Key Landlord"})

    def _stored(self, company):
        """The key's column as a database dump shows it."""
        self.env.flush_all()
        query = SQL(
            "SELECT prepaid_vending_key AS stored FROM res_company WHERE id = %s", company.id
        )
        return self.env.execute_query_dict(query)[0]["stored"]

    def _store_clear(self, company, key_hex):
        """The column as earlier versions left it: the key in clear."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE res_company SET prepaid_vending_key = %s WHERE id = %s", key_hex, company.id
            )
        )
        company.invalidate_recordset(["prepaid_vending_key"])

    def assertHidden(self, stored, key):
        self.assertTrue(stored.startswith("v1:"), "stored encrypted")
        self.assertNotIn(key.hex(), stored.lower())
        self.assertNotIn(key, base64.b64decode(stored[3:]))

    def test_generated_key_is_stored_encrypted_and_reads_back(self):
        key = self.other._prepaid_vending_key()
        self.assertEqual(len(key), 32)
        stored = self._stored(self.other)
        self.assertHidden(stored, key)
        self.env.invalidate_all()
        self.assertEqual(self.other._prepaid_vending_key(), key)
        self.assertEqual(self._stored(self.other), stored, "generated once, not again")

    def test_hex_key_written_is_stored_encrypted(self):
        companies = self.company | self.other
        companies.write({"prepaid_vending_key": KEY_HEX})
        stored = {company: self._stored(company) for company in companies}
        for company in companies:
            self.assertHidden(stored[company], bytes.fromhex(KEY_HEX))
        self.assertNotEqual(stored[self.company], stored[self.other], "own nonce and company")
        self.env.invalidate_all()
        for company in companies:
            self.assertEqual(company._prepaid_vending_key(), bytes.fromhex(KEY_HEX))
        created = self.Company.create({"name": "Keyed Landlord", "prepaid_vending_key": KEY_HEX})
        self.assertHidden(self._stored(created), bytes.fromhex(KEY_HEX))
        self.assertEqual(created._prepaid_vending_key(), bytes.fromhex(KEY_HEX))

    def test_write_refuses_what_is_not_a_key_of_this_company(self):
        self.other.prepaid_vending_key = KEY_HEX
        for bad in ("not hex", "ab" * 8 + "c", "ab" * 15):
            with self.assertRaisesRegex(UserError, "hexadecimal"):
                self.company.write({"prepaid_vending_key": bad})
        # another company's encrypted text does not open here
        with self.assertRaisesRegex(UserError, "cannot be decrypted"):
            self.company.write({"prepaid_vending_key": self._stored(self.other)})
        # its own encrypted text (e.g. restored) is kept as it is
        stored = self._stored(self.other)
        self.other.write({"prepaid_vending_key": stored})
        self.assertEqual(self._stored(self.other), stored)

    def test_missing_secret_refuses_and_stores_nothing(self):
        self.company.prepaid_vending_key = KEY_HEX
        for secret in ("", "too short"):
            with patch.dict(config.options, {"prepaid_key_secret": secret}):
                with self.assertRaisesRegex(UserError, "prepaid_key_secret.*odoo.conf"):
                    self.other._prepaid_vending_key()
                with self.assertRaisesRegex(UserError, "prepaid_key_secret"):
                    self.other.write({"prepaid_vending_key": KEY_HEX})
                with self.assertRaisesRegex(UserError, "prepaid_key_secret"):
                    self.company._prepaid_vending_key()
            self.assertIsNone(self._stored(self.other), "no key generated, none stored")

    def test_another_secret_does_not_open_the_key(self):
        self.other.prepaid_vending_key = KEY_HEX
        other_secret = "another server's secret, long enough"
        with patch.dict(config.options, {"prepaid_key_secret": other_secret}):
            with self.assertRaisesRegex(UserError, "cannot be decrypted.*prepaid_key_secret"):
                self.other._prepaid_vending_key()

    def test_upgrade_encrypts_clear_keys_and_warns_without_secret(self):
        self._store_clear(self.other, KEY_HEX)
        with patch.dict(config.options, {"prepaid_key_secret": ""}):
            with self.assertLogs(LOGGER, "WARNING") as logs:
                self.assertFalse(self.Company._prepaid_encrypt_clear_vending_keys())
        self.assertIn("prepaid_key_secret", logs.output[0])
        self.assertNotIn(KEY_HEX, "".join(logs.output))
        self.assertEqual(self._stored(self.other), KEY_HEX, "left as it was")
        self.assertIn(self.other, self.Company._prepaid_encrypt_clear_vending_keys())
        self.assertHidden(self._stored(self.other), bytes.fromhex(KEY_HEX))
        self.env.invalidate_all()
        self.assertEqual(self.other._prepaid_vending_key(), bytes.fromhex(KEY_HEX))

    def test_tokens_minted_before_and_after_encryption_verify(self):
        """A key stored in clear keeps minting tokens the meters accept (it is encrypted
        on its first use), and so does the encrypted key after a cache invalidation."""
        self._store_clear(self.company, KEY_HEX)
        acceptor = TokenAcceptor(
            derive_meter_key(bytes.fromhex(KEY_HEX), self.meter.address), self.meter.address
        )
        before = self.Command._queue(self.meter, "credit", "before", payload={"amount": "10"})
        self.assertHidden(self._stored(self.company), bytes.fromhex(KEY_HEX))
        self.env.invalidate_all()
        after = self.Command._queue(self.meter, "credit", "after", payload={"amount": "5"})
        accepted = [
            acceptor.accept(token_from_text(c.token_secret["token"])) for c in before | after
        ]
        self.assertEqual([t.amount for t in accepted], [Decimal(10), Decimal(5)])
