from decimal import Decimal

from odoo.tests import tagged

from .common import MockSmsGatewayMixin, PrepaidBillingCommon

#: readings every day from t0 (2026-03-02 00:00): 10 kWh a day, 5.00 at the flat tariff
DAILY = [(day * 24 * 60, 100 + 10 * day) for day in range(4)]


@tagged("post_install", "-at_install")
class TestPresetCredit(MockSmsGatewayMixin, PrepaidBillingCommon):
    """B7: the consumption of a new meter before its account opened is charged against the
    preset credit the account took over, so the balance after the first recharge is the
    recharge minus everything used, whichever day the account opened."""

    def setUp(self):
        super().setUp()
        self._mock_sms_gateway()

    def _site(self, name, preset, opened, mode="server"):
        """A unit with a new meter (``preset`` credit on board) read :data:`DAILY` up to
        2026-03-04, and its account opened on ``opened``."""
        unit = self.env["prepaid.unit"].create(
            {"name": name, "building_id": self.building.id, "floor_id": self.floor.id}
        )
        meter = self._create_meter(f"Power {name}", f"0000000{name[-5:]}", unit)
        meter.write({"preset_credit": preset, "billing_mode": mode})
        self._ingest(meter, *DAILY[:3])
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": unit.id, "date_start": opened}
        )
        tenancy.action_open()
        tenancy.account_id.tariff_id = self.flat
        return meter, tenancy.account_id

    def _ledger_sum(self, account):
        account.line_ids.invalidate_recordset()
        return sum((Decimal(f"{line.amount:.4f}") for line in account.line_ids), Decimal(0))

    def test_pre_opening_use_is_charged_against_the_preset_whatever_the_opening_day(self):
        early_meter, early = self._site("P-00001", 30.0, "2026-03-01")
        late_meter, late = self._site("P-00002", 30.0, "2026-03-04")
        self.assertEqual(late_meter.preset_account_id, late)
        self._deduct(meter_ids=(early_meter | late_meter).ids)
        for account in (early, late):
            # 20 kWh used before any recharge, 10.00 charged against the preset of 30.00
            self.assertEqual(self._balance(account), Decimal("-10.0000"))
            self.assertEqual(account.available_credit, 20.0)
            account._recharge("100")
            self.assertEqual(self._balance(account), Decimal("90.0000"))  # R - U
            self.assertEqual(account.preset_outstanding, 0.0)
        for meter in (early_meter, late_meter):
            self._ingest(meter, DAILY[3])
        self._deduct(meter_ids=(early_meter | late_meter).ids)
        self.assertEqual(self._balance(early), Decimal("85.0000"))
        self.assertEqual(self._balance(late), self._balance(early))
        self.assertEqual(self._ledger_sum(late), self._ledger_sum(early))
        self.assertEqual(self._ledger_sum(late), self._balance(late))
        self.assertEqual(early_meter.billing_charged_amount, 15.0)
        self.assertEqual(late_meter.billing_charged_amount, 15.0)

    def test_without_preset_the_use_before_opening_is_not_the_tenants(self):
        meter, account = self._site("P-00003", 0.0, "2026-03-05")
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(self._balance(account), Decimal("0.0000"))
        self._ingest(meter, DAILY[3])
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(self._balance(account), Decimal("-5.0000"))
        self.assertEqual(meter.billing_charged_amount, 5.0)

    def test_a_meter_balance_meter_starts_from_its_preset_on_board(self):
        """The meter deducts from its preset credit too: 30.00 on board, 10.00 used before
        the account opened, it reports 20.00 and the server agrees."""
        meter, _account = self._site("P-00004", 30.0, "2026-03-04", mode="meter")
        self._ingest(meter, (3 * 24 * 60, 130), meter_balance=15.0)
        self._deduct(meter_ids=meter.ids)
        self.assertEqual(meter.meter_balance_state, "ok")
        self.assertEqual(meter.meter_balance_expected, 15.0)
