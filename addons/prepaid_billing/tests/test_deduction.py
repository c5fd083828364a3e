from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from unittest.mock import patch

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..const import DEDUCTION_LOCK_KEY, DEDUCTION_SHARDS_PARAM
from ..models.prepaid_account_deduction import PrepaidAccount
from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestDeduction(PrepaidBillingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account._recharge("100")

    def test_readings_charged_once(self):
        # baseline at 0, then 10 and 4 kWh at 0.5
        self._ingest(self.meter, (0, 1000), (60, 1010), (120, 1014))
        self.assertEqual(self._deduct(), 2)
        self.assertEqual(self._balance(), Decimal("93.0000"))
        self.assertEqual(self._deduct(), 0, "nothing left to charge")
        self.assertEqual(self._balance(), Decimal("93.0000"))
        self.assertEqual(self.meter.billing_charged_until, self.t0 + timedelta(minutes=120))
        self.assertFalse(self.account._audit_balance())

    def test_pages_keep_room_for_the_cursors_and_balances(self):
        """Every run rewrites each charged meter's cursor and its account's balance: both
        tables keep half of each page free so that the new row version stays on its page
        (a HOT update, no write to the indexes; ``bench_deduction.py`` measures it)."""
        for table in ("prepaid_meter", "prepaid_account"):
            self.env.cr.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [table])
            self.assertIn("fillfactor=50", self.env.cr.fetchone()[0] or [], table)
        cursors = {
            "billing_charged_until",
            "billing_base_at",
            "billing_state",
            "billing_tariff_id",
            "billing_charged_amount",
        }
        self.env.cr.execute(
            """
            SELECT a.attname FROM pg_index i
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
             WHERE i.indrelid = 'prepaid_meter'::regclass
            """
        )
        indexed = {row[0] for row in self.env.cr.fetchall()}
        self.assertFalse(cursors & indexed, "an indexed cursor column makes no update HOT")

    def test_new_readings_trigger_the_deduction_at_once(self):
        """B3/X3: stored readings ask the scheduler for a deduction run now (once, however
        many batches arrive before it runs); the run itself charges them."""
        cron = self.env.ref("prepaid_billing.ir_cron_prepaid_deduction")
        Trigger = self.env["ir.cron.trigger"].sudo()
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._ingest(self.meter, (120, 1014))
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        self.assertEqual(len(triggers), 1)
        self.assertLessEqual(triggers.call_at, fields.Datetime.now())
        self.assertEqual(self._deduct(), 2)
        self.assertEqual(self._balance(), Decimal("93.0000"))

    def test_readings_stored_during_a_run_ask_for_another(self):
        """B3: Odoo removes a run's trigger only when the run ends, and the run took its
        meters when it began: a batch stored meanwhile asks for a run of its own."""
        cron = self.env.ref("prepaid_billing.ir_cron_prepaid_deduction")
        Trigger = self.env["ir.cron.trigger"].sudo()
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        self._ingest(self.meter, (0, 1000))
        progress = self.env["ir.cron.progress"].sudo().create({"cron_id": cron.id})
        # the run began (its progress) after the trigger it is taking
        Trigger.search([("cron_id", "=", cron.id)]).call_at = progress.create_date - timedelta(
            seconds=1
        )
        self._ingest(self.meter, (60, 1010))
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), 2)

    def test_one_consumption_line_per_day_updated_in_place(self):
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        self._ingest(self.meter, (120, 1014), (180, 1020))
        self._deduct()
        lines = self.account.line_ids.filtered(lambda line: line.kind == "deduction")
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines.amount, -10.0)
        self.assertEqual(lines.quantity, 20.0)
        self.assertEqual(lines.reading_count, 3)
        self.assertEqual(lines.reading_to, self.t0 + timedelta(minutes=180))
        self.assertEqual(lines.detail["meters"][str(self.meter.id)][2], 3)
        self.assertEqual(lines.detail["lines"]["v1|flat|1|electricity"][:2], ["20", "10.0000"])
        # next day: a second line
        self._ingest(self.meter, (24 * 60 + 30, 1030))
        self._deduct()
        lines = self.account.line_ids.filtered(lambda line: line.kind == "deduction")
        self.assertEqual(len(lines), 2)
        self.assertEqual(self._balance(), Decimal("85.0000"))
        self.assertFalse(self.account._audit_balance())

    def test_flagged_reading_not_charged(self):
        # a rollback is stored, flagged and never charged; the next reading is charged
        # from the last good one
        self._ingest(self.meter, (0, 1000), (60, 1010), (120, 1005), (180, 1012))
        self.assertEqual(self._deduct(), 2)
        self.assertEqual(self._balance(), Decimal("94.0000"))

    def test_meter_tariff_wins_over_account_tariff(self):
        dear = self._create_tariff("Dear", [{"price_flat": 2}])
        self.meter.tariff_id = dear
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("80.0000"))

    def test_mid_cycle_tariff_change(self):
        """A new version from 01:30 prices what follows; nothing already charged is repriced."""
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("95.0000"))
        self.flat.write(
            {
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": self.t0 + timedelta(minutes=90),
                            "code": "v2",
                            "step_ids": [Command.create({"price_flat": 1.0})],
                        }
                    )
                ]
            }
        )
        # 01:00 -> 02:00: 10 kWh, half before the change at 0.5, half after at 1.0
        self._ingest(self.meter, (120, 1020))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("87.5000"))

    def test_ladder_cycle_rollover_on_billing_day(self):
        """Ladder 10 kWh at 1, then 2; billing day 3: the cycle restarts at 00:00 on the 3rd."""
        ladder = self._create_tariff(
            "Ladder", [{"limit_qty": 10, "price_flat": 1}, {"price_flat": 2}], billing_day=3
        )
        self.account.tariff_id = ladder
        self._ingest(self.meter, (0, 1000), (60, 1008), (120, 1012))
        self._deduct()
        # 8 at 1, then 2 at 1 and 2 at 2
        self.assertEqual(self._balance(), Decimal("86.0000"))
        # up to 2026-03-03 00:00 still the old cycle (step 2), then a new cycle from step 1
        self._ingest(self.meter, (24 * 60, 1014), (24 * 60 + 60, 1016))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("80.0000"))
        state = self.meter.billing_state
        self.assertEqual(state["cycle_start"], datetime(2026, 3, 3).isoformat())
        self.assertEqual(Decimal(state["consumption"]), Decimal("2"))
        self.assertFalse(self.account._audit_balance())

    def test_crash_mid_batch_then_rerun_equals_clean_run(self):
        """R11: a run killed in its second batch, run again, leaves the balances of a clean run."""
        meters = self.meter
        for index in range(3):
            unit = self.env["prepaid.unit"].create(
                {"name": f"C-{index}", "building_id": self.building.id, "floor_id": self.floor.id}
            )
            meter = self._create_meter(f"C-{index}", f"00000000090{index}", unit, bus=self.bus2)
            tenancy = self.env["prepaid.tenancy"].create(
                {"partner_id": self.tenant.id, "unit_id": unit.id, "date_start": "2026-01-01"}
            )
            tenancy.action_open()
            tenancy.account_id.write({"tariff_id": self.flat.id})
            tenancy.account_id._recharge("50")
            meters |= meter
        for meter in meters:
            self._ingest(meter, (0, 100), (60, 110), (120, 113))
        accounts = meters.account_id
        # one shard: the batches follow the meters' order (the first two, then the others)
        self.env["ir.config_parameter"].set_param(DEDUCTION_SHARDS_PARAM, 1)
        calls = []
        original = PrepaidAccount._deduct_store_meters

        def crash_in_second_batch(model, rows):
            calls.append(rows)
            if len(calls) == 2:
                raise RuntimeError("killed")
            return original(model, rows)

        # (not assertRaises: Odoo's rolls the whole block back, batches committed included)
        with patch.object(PrepaidAccount, "_deduct_store_meters", crash_in_second_batch):
            crashed = False
            try:
                self._deduct(batch_size=2)
            except RuntimeError:
                crashed = True
            self.assertTrue(crashed, "the injected crash did not happen")
        # the first batch (2 meters) was committed, the second rolled back
        self.assertEqual(
            [self._balance(a) for a in accounts.sorted("id")],
            [Decimal("93.5"), Decimal("43.5"), Decimal("50"), Decimal("50")],
        )
        self.assertEqual(self._deduct(batch_size=2), 4)
        self.assertEqual(self._deduct(batch_size=2), 0)
        self.assertEqual(
            sorted(self._balance(a) for a in accounts),
            sorted([Decimal("93.5")] + [Decimal("43.5")] * 3),
        )
        self.assertFalse(accounts._audit_balance())

    def test_concurrent_run_refused(self):
        """R11: while another connection runs the deduction, a manual run is refused and a
        scheduled one charges nothing; afterwards the readings are charged once."""
        self._ingest(self.meter, (0, 1000), (60, 1010))
        shards = range(self.env["prepaid.account"]._deduction_shard_count())
        with self._shards_held_elsewhere(shards):
            with self.assertRaises(UserError):
                self._deduct(manual=True)
            self.assertEqual(self.env["prepaid.account"]._cron_deduct(), 0)
            self.assertEqual(self._balance(), Decimal("100.0000"))
        self.assertEqual(self._deduct(), 1)
        self.assertEqual(self._deduct(), 0)
        self.assertEqual(self._balance(), Decimal("95.0000"))

    @contextmanager
    def _shards_held_elsewhere(self, shards):
        """Another connection holds the locks of ``shards``, as another node's run would."""
        with self.env.registry.cursor() as other:
            for shard in shards:
                other.execute("SELECT pg_advisory_lock(%s, %s)", [DEDUCTION_LOCK_KEY, shard])
            try:
                yield
            finally:
                other.execute("SELECT pg_advisory_unlock_all()")

    def _open_account(self, unit, date_start, credit):
        """The tenant's open account on ``unit`` from ``date_start``, on the flat tariff."""
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": unit.id, "date_start": date_start}
        )
        tenancy.action_open()
        account = tenancy.account_id
        account.tariff_id = self.flat
        account._recharge(credit)
        return account

    def _second_account(self):
        """A second tenant's account and meter, in another shard than the first one's (the
        shard count is set so)."""
        meter = self._create_meter("T-102", "000000000222", self.unit2)
        account = self._open_account(self.unit2, "2026-01-01", "100")
        count = abs(account.id - self.account.id) + 1
        self.env["ir.config_parameter"].set_param(DEDUCTION_SHARDS_PARAM, count)
        return account, meter, count

    def test_shards_cover_every_account_once(self):
        """Each meter with readings to charge is in exactly one shard, with every other
        meter of its account; together the shards hold every candidate."""
        account, meter, _count = self._second_account()
        third = self._create_meter("T-101 ter", "000000000103", self.unit)
        for each in (self.meter, meter, third):
            self._ingest(each, (0, 100), (60, 110))
        Account = self.env["prepaid.account"]
        everyone = Account._deduction_candidates()[0]
        for count in (1, 2, 3, 7):
            candidates = Account._deduction_candidates(count=count)
            shards = [candidates.get(n, []) for n in range(count)]
            flat = [meter_id for ids in shards for meter_id in ids]
            self.assertEqual(sorted(flat), everyone, "each meter once")
            together = [n for n, ids in enumerate(shards) if {self.meter.id, third.id} & set(ids)]
            self.assertEqual(len(together), 1, "an account's meters share their shard")
            self.assertIn(meter.id, shards[account.id % count])
        self.assertEqual(self._deduct(meter_ids=(self.meter | meter | third).ids), 3)
        self.assertEqual(self._balance(account), Decimal("95.0000"))
        self.assertEqual(self._balance(), Decimal("90.0000"))

    def test_manual_run_refused_only_for_busy_shards(self):
        """While another run charges one shard, a manual run of meters of another shard
        works and a scheduled run charges the free shards; a manual run needing the busy
        shard is refused. Afterwards every reading is charged once."""
        account, meter, count = self._second_account()
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._ingest(meter, (0, 500), (60, 504))
        with self._shards_held_elsewhere([self.account.id % count]):
            with self.assertRaises(UserError):
                self._deduct(meter_ids=self.meter.ids, manual=True)
            self.assertEqual(self._deduct(meter_ids=meter.ids, manual=True), 1)
            self._ingest(meter, (120, 506))
            self.assertEqual(self._deduct(meter_ids=(self.meter | meter).ids), 1)
            self.assertEqual(self._balance(), Decimal("100.0000"), "its shard was busy")
        self.assertEqual(self._balance(account), Decimal("97.0000"))
        self.assertEqual(self._deduct(meter_ids=(self.meter | meter).ids), 1)
        self.assertEqual(self._deduct(meter_ids=(self.meter | meter).ids), 0)
        self.assertEqual(self._balance(), Decimal("95.0000"))

    def test_meter_without_account_waits(self):
        meter = self._create_meter("Lone", "000000000777", self.unit2)
        self._ingest(meter, (0, 10), (30, 20))
        self._deduct()
        self.assertFalse(meter.billing_charged_until)

    def test_water_meter_needs_a_water_tariff(self):
        water = self._create_meter("Water T-101", "000000000188", self.unit, model=self.water)
        with self.assertRaises(ValidationError):
            water.tariff_id = self.flat
        self._ingest(water, (0, 10), (60, 10.5))
        self._deduct()
        self.assertFalse(water.billing_charged_until, "not priced at the electricity tariff")
        water_tariff = self._create_tariff("Water", [{"price_flat": 4}], utility="water")
        water.tariff_id = water_tariff
        self._deduct()
        self.assertEqual(self._balance(), Decimal("98.0000"))

    def test_run_stops_when_another_run_takes_over(self):
        """R11: between two committed batches another run may take the lock; this one then
        stops, and what it left is charged by the next run, once."""
        other = self._create_meter("T-101 bis", "000000000102", self.unit)
        self._ingest(self.meter, (0, 1000), (60, 1010))
        self._ingest(other, (0, 500), (60, 504))
        meters = (self.meter | other).ids  # demo data may have meters of its own to charge
        answers = iter([True, False])
        self.env["ir.config_parameter"].set_param(DEDUCTION_SHARDS_PARAM, 1)
        with patch.object(PrepaidAccount, "_deduction_lock", lambda model, shard: next(answers)):
            self.assertEqual(self._deduct(meter_ids=meters, batch_size=1), 1)
        self.assertEqual(self._balance(), Decimal("95.0000"))
        self.assertEqual(self._deduct(meter_ids=meters, batch_size=1), 1)
        self.assertEqual(self._deduct(meter_ids=meters, batch_size=1), 0)
        self.assertEqual(self._balance(), Decimal("93.0000"))

    def test_consumption_before_the_tenancy_is_not_charged(self):
        meter = self._create_meter("T-102", "000000000222", self.unit2)
        self._ingest(meter, (0, 100), (60, 110))  # 2026-03-02, before the tenancy
        account = self._open_account(self.unit2, "2026-03-03", "10")
        self._ingest(meter, (24 * 60 + 60, 114))  # 2026-03-03 01:00: 4 kWh since 01:00 the 2nd
        self.assertEqual(self._deduct(meter_ids=meter.ids), 1)
        self.assertEqual(self._balance(account), Decimal("8.0000"))


@tagged("post_install", "-at_install")
class TestDeductionRegisters(PrepaidBillingCommon):
    """B3: a time-of-use tariff prices the meter's TOU registers when the readings carry
    them, and splits the total by time over the periods only when they do not."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tou = cls._create_tariff(
            "Peak/Valley",
            [{"price_valley": 0.3, "price_peak": 1.0, "price_sharp": 2.0}],
            segments=[(0, 8, "valley"), (8, 24, "peak")],
        )
        cls.account.tariff_id = cls.tou
        cls.account._recharge("100")

    def _ingest_rows(self, *points):
        """(minutes after t0, forward total, {register: value} or None) points."""
        return self.env["prepaid.meter.reading"]._ingest(
            [
                {
                    "meter_id": self.meter.id,
                    "read_at": self.t0 + timedelta(minutes=minutes),
                    "forward_total": total,
                    **{f"tou_{band}": value for band, value in (registers or {}).items()},
                }
                for minutes, total, registers in points
            ]
        )

    def _deduction(self):
        return self.account.line_ids.filtered(lambda line: line.kind == "deduction")

    def test_registers_priced_per_band(self):
        # 07:00 -> 09:00, 10 kWh: the registers say 1 in the valley and 9 at peak
        self._ingest_rows(
            (420, 1000, {"peak": 600, "valley": 400}),
            (540, 1010, {"peak": 609, "valley": 401}),
        )
        self.assertEqual(self._deduct(), 1)
        self.assertEqual(self._balance(), Decimal("100") - Decimal("9.3"))
        lines = self._deduction().detail["lines"]
        self.assertEqual(
            [Decimal(v) for v in lines["v1|valley|1|electricity"][:2]], [1, Decimal("0.3")]
        )
        self.assertEqual([Decimal(v) for v in lines["v1|peak|1|electricity"][:2]], [9, 9])
        # the next interval starts from the registers of 09:00
        self._ingest_rows((600, 1012, {"peak": 611, "valley": 401}))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("100") - Decimal("11.3"))
        self.assertFalse(self.account._audit_balance())

    def test_registers_missing_total_split_by_time(self):
        # the same 10 kWh without registers: 5 in the valley hour, 5 in the peak hour
        self._ingest_rows((420, 1000, None), (540, 1010, None))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("100") - Decimal("6.5"))
        lines = self._deduction().detail["lines"]
        self.assertEqual(lines["v1|valley|1|electricity"][:2], ["5", "1.5000"])
        self.assertEqual(lines["v1|peak|1|electricity"][:2], ["5", "5.0000"])

    def test_unusable_registers_split_by_time(self):
        # a register reported at one end only, then a register that ran backwards
        self._ingest_rows(
            (420, 1000, {"peak": 600}),
            (540, 1010, {"peak": 609, "valley": 401}),
            (660, 1012, {"peak": 608, "valley": 402}),
        )
        self._deduct()
        # 07:00-09:00: 5 valley + 5 peak by time; 09:00-11:00: 2 at peak by time
        self.assertEqual(self._balance(), Decimal("100") - Decimal("8.5"))

    def test_register_in_a_band_the_tariff_does_not_price(self):
        """A deep-valley tariff without sharp prices: a moving sharp register cannot be
        priced per band, the total is split by time instead of the meter waiting."""
        valley_only = self._create_tariff(
            "Valley/Flat",
            [{"price_valley": 0.3, "price_flat": 1.0}],
            segments=[(0, 8, "valley"), (8, 24, "flat")],
        )
        self.account.tariff_id = valley_only
        self._ingest_rows(
            (420, 1000, {"sharp": 10, "valley": 400}),
            (540, 1010, {"sharp": 19, "valley": 401}),
        )
        self.assertEqual(self._deduct(), 1)
        self.assertEqual(self._balance(), Decimal("100") - Decimal("6.5"))

    def test_registers_with_ct_multiplier(self):
        """Registers are secondary-side values: x the CT ratio, like the total."""
        self.meter.ct_ratio = 10
        self._ingest_rows(
            (420, 100, {"peak": 60, "valley": 40}),
            (540, 101, {"peak": 60.9, "valley": 40.1}),
        )
        self._deduct()
        self.assertEqual(self._balance(), Decimal("100") - Decimal("9.3"))

    def test_one_run_charges_what_reading_by_reading_charges(self):
        """B3: a meter's new readings are priced in one run (``price_run``): ladder steps,
        period changes, missing registers and a register in a band the tariff does not
        price, charged at once, give the ledger and state of charging them one by one."""
        ladder_tou = self._create_tariff(
            "Ladder x TOU",
            [
                {"limit_qty": 12, "price_valley": 0.3, "price_peak": 1.0},
                {"price_valley": 0.4, "price_peak": 1.25},
            ],
            segments=[(0, 8, "valley"), (8, 24, "peak")],
        )
        points = (
            (420, 1000, {"peak": 600, "valley": 400}),
            (450, 1002, {"peak": 600, "valley": 402}),
            (510, 1006.5, {"peak": 602.5, "valley": 404}),  # across 08:00
            (540, 1009, None),  # no registers: split by time
            (600, 1013, {"peak": 607, "valley": 406}),  # a step boundary
            (660, 1016, {"peak": 609, "valley": 406, "sharp": 1}),  # a new register
            (720, 1017, {"peak": 609, "valley": 406, "sharp": 2}),  # sharp: not priced
            (780, 1017, {"peak": 609, "valley": 406, "sharp": 2}),  # nothing used
            (840, 1022.25, {"peak": 614.25, "valley": 406, "sharp": 2}),
        )
        unit = self.env["prepaid.unit"].create(
            {"name": "One by one", "building_id": self.building.id, "floor_id": self.floor.id}
        )
        other = self._create_meter("One by one", "000000000950", unit, bus=self.bus2)
        tenancy = self.env["prepaid.tenancy"].create(
            {"partner_id": self.tenant.id, "unit_id": unit.id, "date_start": "2026-01-01"}
        )
        tenancy.action_open()
        (self.account | tenancy.account_id).write({"tariff_id": ladder_tou.id})
        tenancy.account_id._recharge("100")

        def ingest(meter, rows):
            self.env["prepaid.meter.reading"]._ingest(
                [
                    {
                        "meter_id": meter.id,
                        "read_at": self.t0 + timedelta(minutes=minutes),
                        "forward_total": total,
                        **{f"tou_{band}": value for band, value in (registers or {}).items()},
                    }
                    for minutes, total, registers in rows
                ]
            )

        ingest(self.meter, points)
        self.assertEqual(self._deduct(meter_ids=self.meter.ids), len(points) - 1)
        for point in points:
            ingest(other, [point])
            self._deduct(meter_ids=other.ids)

        def ledger(account, meter):
            line = account.line_ids.filtered(lambda line: line.kind == "deduction")
            state = meter.billing_state
            return (
                self._balance(account),
                line.amount,
                line.quantity,
                {k: [Decimal(v) for v in values] for k, values in line.detail["lines"].items()},
                Decimal(state["consumption"]),
                Decimal(state["charged"]),
                {(b, s): [Decimal(v) for v in rest] for b, s, *rest in state["lines"]},
            )

        at_once = ledger(self.account, self.meter)
        self.assertEqual(at_once, ledger(tenancy.account_id, other))
        self.assertIn("v1|peak|2|electricity", at_once[3])  # (the step boundary was crossed)
        self.assertFalse(self.account._audit_balance())
