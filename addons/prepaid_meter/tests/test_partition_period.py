from datetime import date, datetime

from odoo.tests import TransactionCase, tagged

from ..models.prepaid_meter_reading import STORE


@tagged("post_install", "-at_install")
class TestPartitionPeriod(TransactionCase):
    """M5: the store is cut by month, week or day (a system parameter); partitions made for
    another period are kept, a new one stops where they begin or end, and retention drops
    whatever ends before its day, whole."""

    def setUp(self):
        super().setUp()
        self.readings = self.env["prepaid.meter.reading"]
        self.params = self.env["ir.config_parameter"].sudo()

    def _bounds(self, year):
        return {
            p.name: (p.start, p.end) for p in self.readings._partitions() if p.start.year == year
        }

    def test_weeks_and_days_next_to_a_month(self):
        self.readings._ensure_partitions([date(2093, 3, 15)])  # by month (the default)
        self.params.set_param("prepaid_meter.reading_partition_period", "week")
        # 2093-04-01 is a Wednesday: its week would begin in March, which has a partition
        target = self.readings._ensure_partitions([datetime(2093, 4, 1, 0, 15)])
        self.assertEqual(target, f"{STORE}_2093_04_01")
        self.readings._ensure_partitions([date(2093, 4, 7), date(2093, 4, 6)])
        self.params.set_param("prepaid_meter.reading_partition_period", "day")
        self.assertEqual(
            self.readings._ensure_partitions([date(2093, 4, 13)]), f"{STORE}_2093_04_13"
        )
        # days of two partitions go to the partitioned store
        self.assertEqual(
            self.readings._ensure_partitions([date(2093, 4, 5), date(2093, 4, 6)]), STORE
        )
        self.assertEqual(
            self._bounds(2093),
            {
                f"{STORE}_2093_03": (date(2093, 3, 1), date(2093, 4, 1)),
                f"{STORE}_2093_04_01": (date(2093, 4, 1), date(2093, 4, 6)),
                f"{STORE}_2093_04_06": (date(2093, 4, 6), date(2093, 4, 13)),
                f"{STORE}_2093_04_13": (date(2093, 4, 13), date(2093, 4, 14)),
            },
        )
        self.assertEqual(self.readings._partition_name(date(2093, 4, 20)), f"{STORE}_2093_04_20")

    def test_a_day_partition_takes_its_rows_from_the_default_one(self):
        self.params.set_param("prepaid_meter.reading_partition_period", "day")
        self.env.cr.execute(
            f"INSERT INTO {STORE}_default (meter_id, company_id, read_at, source, forward_total) "
            "VALUES (%s, %s, '2094-06-02 10:00', 'import', 1)",
            [1, self.env.company.id],  # (the store has no foreign key)
        )
        self.readings._ensure_partitions([date(2094, 6, 2)])
        self.env.cr.execute(f"SELECT count(*) FROM {STORE}_2094_06_02")
        self.assertEqual(self.env.cr.fetchone()[0], 1)

    def test_retention_drops_partitions_of_any_period_ended_before_its_day(self):
        self.readings._ensure_partitions([date(2095, 1, 10)])
        self.params.set_param("prepaid_meter.reading_partition_period", "day")
        self.readings._ensure_partitions([date(2095, 2, 1), date(2095, 2, 2)])
        dropped = self.readings._drop_partitions_before(date(2095, 2, 2))
        self.assertEqual(dropped[-2:], [f"{STORE}_2095_01", f"{STORE}_2095_02_01"])
        self.assertEqual(list(self._bounds(2095)), [f"{STORE}_2095_02_02"])
