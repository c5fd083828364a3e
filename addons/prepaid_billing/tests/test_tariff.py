from datetime import datetime, time
from decimal import Decimal

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from prepaid_core import tariff as engine

from .common import PrepaidBillingCommon


@tagged("post_install", "-at_install")
class TestTariff(PrepaidBillingCommon):
    def test_views_load(self):
        """The tariff screens open: their fields, the time zone list included, describe
        themselves (the web client's get_views)."""
        views = self.env["prepaid.tariff"].get_views([(False, "list"), (False, "form")])
        timezones = dict(views["models"]["prepaid.tariff"]["fields"]["timezone"]["selection"])
        self.assertIn("Europe/Paris", timezones)
        self.assertIn(self.flat.timezone, timezones)

    def test_flat_compiles(self):
        definition = self.flat._engine_definition()
        self.assertEqual(definition.versions[0].prices, {"flat": (Decimal("0.5"),)})
        compiled = self.flat._compiled()
        self.assertIs(compiled, self.flat._compiled(), "compiled tariff is cached")
        result = compiled.price_interval(
            None, datetime(2026, 3, 2), datetime(2026, 3, 2, 1), Decimal("10")
        )
        self.assertEqual(result.amount, Decimal("5.0000"))

    def test_ladder_8_steps_with_tou(self):
        steps = [
            {"limit_qty": 100 * i, "price_peak": 1 + i / 10, "price_valley": 0.5 + i / 10}
            for i in range(1, 8)
        ] + [{"price_peak": 2.0, "price_valley": 1.5}]
        tariff = self._create_tariff(
            "Ladder TOU", steps, [(8, 22, "peak"), (22, 8, "valley")], billing_day=5
        )
        version = tariff.version_ids
        self.assertEqual(version.tariff_type, "ladder_tou")
        definition = tariff._engine_definition()
        self.assertEqual(definition.versions[0].steps, 8)
        self.assertEqual(definition.cycle.billing_day, 5)
        self.assertEqual(
            definition.versions[0].tou.seasons[0].segments[1],
            engine.TouSegment(time(22), time(8), "valley"),
        )
        # 150 kWh in one peak hour: 100 in step 1 at 1.1, 50 in step 2 at 1.2
        result = tariff._compiled().price_interval(
            None, datetime(2026, 3, 6, 9), datetime(2026, 3, 6, 10), Decimal("150")
        )
        self.assertEqual(result.amount, Decimal("170.0000"))

    def test_nine_steps_refused(self):
        steps = [{"limit_qty": 10 * i, "price_flat": 1} for i in range(1, 9)] + [{"price_flat": 1}]
        with self.assertRaises(ValidationError):
            self._create_tariff("Too many", steps)

    def test_tou_gap_refused(self):
        with self.assertRaises(ValidationError):
            self._create_tariff("Gap", [{"price_peak": 1}], [(8, 20, "peak")])

    def test_new_version_changes_price(self):
        self.flat.write(
            {
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2026, 3, 2, 12),
                            "code": "v2",
                            "step_ids": [Command.create({"price_flat": 0.8})],
                        }
                    )
                ]
            }
        )
        compiled = self.flat._compiled()
        self.assertEqual(compiled.version_at(datetime(2026, 3, 2, 11)).code, "v1")
        self.assertEqual(compiled.version_at(datetime(2026, 3, 2, 13)).code, "v2")

    def test_timezone_local_versions(self):
        tariff = self._create_tariff("Shanghai", [{"price_flat": 1}], timezone="Asia/Shanghai")
        # stored 2020-01-01 00:00 UTC is 08:00 in Shanghai
        version = tariff._engine_definition().versions[0]
        self.assertEqual(version.valid_from, datetime(2020, 1, 1, 8))

    # === B1: seasons === #
    def _seasonal_tariff(self):
        """Winter (the periods without a season, from 1 January): flat all day; summer from
        1 March: valley before 08:00, peak after."""
        tariff = self._create_tariff(
            "Seasonal",
            [{"price_flat": 0.5, "price_peak": 1.0, "price_valley": 0.3}],
            segments=[(0, 24, "flat")],
        )
        tariff.version_ids.write(
            {
                "season_ids": [
                    Command.create(
                        {
                            "name": "Summer",
                            "start_month": 3,
                            "start_day": 1,
                            "segment_ids": [
                                Command.create({"hour_from": 0, "hour_to": 8, "band": "valley"}),
                                Command.create({"hour_from": 8, "hour_to": 24, "band": "peak"}),
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "name": "Autumn",
                            "start_month": 10,
                            "start_day": 1,
                            "segment_ids": [
                                Command.create({"hour_from": 0, "hour_to": 24, "band": "flat"})
                            ],
                        }
                    ),
                ]
            }
        )
        return tariff

    def test_seasons_change_the_periods(self):
        compiled = self._seasonal_tariff()._compiled()
        self.assertEqual(compiled.band_at(datetime(2026, 2, 27, 7)), "flat")
        self.assertEqual(compiled.band_at(datetime(2026, 3, 2, 7)), "valley")
        self.assertEqual(compiled.band_at(datetime(2026, 3, 2, 9)), "peak")
        self.assertEqual(compiled.band_at(datetime(2026, 10, 2, 7)), "flat")
        self.assertEqual(compiled.band_at(datetime(2027, 1, 2, 7)), "flat")

    def test_seasonal_deduction(self):
        """The same 10 kWh from 07:00 to 09:00 costs 5 in winter and 6.5 in summer."""
        self.account.tariff_id = self._seasonal_tariff()
        self.account._recharge("100")
        self._ingest(self.meter, (-3 * 24 * 60 + 420, 1000), (-3 * 24 * 60 + 540, 1010))
        self._deduct()
        self.assertEqual(self._balance(), Decimal("95.0000"))
        self._ingest(self.meter, (420, 1010), (540, 1020))
        self._deduct()
        # 2026-02-27 09:00 -> 2026-03-02 07:00 used nothing; then 5 valley + 5 peak
        self.assertEqual(self._balance(), Decimal("88.5000"))

    def test_season_must_cover_the_day(self):
        tariff = self._seasonal_tariff()
        summer = tariff.version_ids.season_ids.filtered(lambda s: s.name == "Summer")
        with self.assertRaises(ValidationError):
            summer.segment_ids.filtered(lambda s: s.band == "peak").hour_to = 20

    # === B1, B12: prices and thresholds held by meters that price locally === #
    def test_device_settings_follow_the_tariff_and_season(self):
        self.account.tariff_id = self._seasonal_tariff()
        self.assertTrue(self.meter.device_settings_at, "a tariff change asks for an issuance")
        summer = self.meter._device_settings(at=datetime(2026, 7, 1, 12))
        self.assertEqual(summer["alarm1"], "20.0000")
        self.assertIsNone(summer["overload_kw"])
        self.assertEqual(summer["tariff"]["name"], "Seasonal")
        self.assertEqual(
            summer["tariff"]["prices"], {"flat": ["0.5"], "peak": ["1"], "valley": ["0.3"]}
        )
        self.assertEqual(
            summer["tariff"]["periods"], [["00:00", "08:00", "valley"], ["08:00", "00:00", "peak"]]
        )
        winter = self.meter._device_settings(at=datetime(2026, 2, 1, 12))
        self.assertEqual(winter["tariff"]["periods"], [["00:00", "00:00", "flat"]])
        self.meter.write(
            {
                "alarm_own_thresholds": True,
                "alarm1_threshold": 50,
                "alarm2_threshold": 10,
                "overload_limit": 6.5,
            }
        )
        own = self.meter._device_settings()
        self.assertEqual((own["alarm1"], own["overload_kw"]), ("50.0000", "6.5000"))

    def test_price_change_marks_the_meters_it_prices(self):
        lone = self._create_meter("Lone", "000000000777", self.unit2)
        self.env.cr.execute("UPDATE prepaid_meter SET device_settings_at = NULL")
        self.env["prepaid.meter"].invalidate_model(["device_settings_at"])
        self.flat.write(
            {
                "version_ids": [
                    Command.create(
                        {
                            "valid_from": datetime(2026, 4, 1),
                            "code": "v2",
                            "step_ids": [Command.create({"price_flat": 0.6})],
                        }
                    )
                ]
            }
        )
        self.assertTrue(self.meter.device_settings_at)
        self.assertFalse(lone.device_settings_at, "not priced by this tariff")
        self.assertEqual(
            self.meter._device_settings(at=datetime(2026, 4, 2))["tariff"]["prices"],
            {"flat": ["0.6"]},
        )
        lone.action_issue_settings()
        self.assertTrue(lone.device_settings_at)
