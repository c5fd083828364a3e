from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import MeterGatewayCommon

KEY = "000102030405060708090A0B0C0D0E0F"
AUTH_KEY = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"


@tagged("post_install", "-at_install")
class TestDlmsSettings(MeterGatewayCommon):
    """G9: a DLMS meter's addresses and secrets: checked, stored encrypted, decrypted only
    into a poll's job."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dlms_model = cls.env["prepaid.meter.model"].create(
            {
                "name": "DLMS meter",
                "code": "DLMS-T",
                "protocol": "dlms_hdlc",
                "dlms_client_address": 1,
                "dlms_authentication": "high_gmac",
                "dlms_security": "authentication_encryption",
            }
        )
        cls.hdlc_bus = cls.env["prepaid.gateway.bus"].create(
            {"gateway_id": cls.gateway.id, "number": 7, "port": 1, "protocol": "dlms_hdlc"}
        )

    def _dlms_meter(self, name, physical, **values):
        return self.env["prepaid.meter"].create(
            {
                "name": name,
                "model_id": self.dlms_model.id,
                "gateway_id": self.gateway.id,
                "bus_id": self.hdlc_bus.id,
                "state": "in_service",
                "dlms_physical_address": physical,
                **values,
            }
        )

    def _stored(self, meter, name):
        self.env.flush_all()
        self.env.cr.execute(f"SELECT {name} FROM prepaid_meter WHERE id = %s", (meter.id,))
        return self.env.cr.fetchone()[0]

    def test_secrets_are_stored_encrypted_and_decrypted_into_the_job(self):
        meter = self._dlms_meter(
            "DLMS 1",
            17,
            dlms_password="12345678",
            dlms_block_cipher_key=KEY,
            dlms_authentication_key=AUTH_KEY,
        )
        for name, clear in (
            ("dlms_password", "12345678"),
            ("dlms_block_cipher_key", KEY),
            ("dlms_authentication_key", AUTH_KEY),
        ):
            stored = self._stored(meter, name)
            self.assertTrue(stored.startswith("v1:"), name)
            self.assertNotIn(clear, stored)
            self.assertNotIn(clear.lower(), stored)
        settings = meter._dlms_settings("hdlc")
        self.assertEqual(settings.password, b"12345678")
        self.assertEqual(settings.block_cipher_key, bytes.fromhex(KEY))
        self.assertEqual(settings.authentication_key, bytes.fromhex(AUTH_KEY))
        self.assertEqual((settings.client_address, settings.physical_address), (1, 17))
        self.assertEqual((settings.logical_address, settings.interface), (1, "hdlc"))
        self.assertEqual(settings.authentication, "high_gmac")
        self.assertEqual(settings.system_title, bytes.fromhex("5050454E45524759"))
        self.assertNotIn(KEY.lower(), repr(meter.read(["dlms_block_cipher_key"])).lower())

    def test_encrypted_text_copied_to_another_meter_does_not_open(self):
        first = self._dlms_meter("DLMS 1", 17, dlms_block_cipher_key=KEY)
        second = self._dlms_meter("DLMS 2", 18)
        with self.assertRaisesRegex(UserError, "cannot be decrypted"):
            second.dlms_block_cipher_key = self._stored(first, "dlms_block_cipher_key")
        # rewriting a meter's own encrypted text (a form saved unchanged) keeps it
        first.dlms_block_cipher_key = self._stored(first, "dlms_block_cipher_key")
        self.assertEqual(first._dlms_settings("hdlc").block_cipher_key, bytes.fromhex(KEY))

    def test_bad_key_and_addresses_name_the_field(self):
        with self.assertRaisesRegex(UserError, "DLMS Block Cipher Key.*32 hexadecimal"):
            self._dlms_meter("DLMS 1", 17, dlms_block_cipher_key="00FF")
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address.*1 to 16383"):
            self._dlms_meter("DLMS 2", 0)
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address.*1 to 16383"):
            self._dlms_meter("DLMS 3", 16384)
        self._dlms_meter("DLMS 4", 40)
        with self.assertRaisesRegex(ValidationError, "DLMS Physical Address 40 is already"):
            self._dlms_meter("DLMS 5", 40)
        for n, (values, error) in enumerate(
            (
                ({"dlms_client_address": 200}, "client address is 1 to 127"),
                ({"dlms_system_title": "ABC"}, "System Title.*16 hexadecimal"),
                ({"dlms_invocation_counter_obis": "0.0.43.1.0.256"}, "Frame Counter.*six numbers"),
            )
        ):
            with self.assertRaisesRegex(ValidationError, error):
                self.dlms_model.copy({"code": f"DLMS-X{n}", **values})

    def test_dlms_bus_gets_the_dlms_driver_and_polls_meters_without_address(self):
        self.gateway.gateway_type = "tcp_collector"
        self.hdlc_bus._compute_driver()
        self.assertEqual(self.hdlc_bus.driver, "dlms")
        self.assertEqual(
            (self.hdlc_bus.baud_rate, self.hdlc_bus.parity, self.hdlc_bus.stop_bits),
            ("9600", "N", "1"),
        )
        meter = self._dlms_meter("DLMS 1", 17)
        self.assertFalse(meter.address)
        _buses, polled = self.gateway._polled_buses_and_meters()
        self.assertIn(meter, polled)
