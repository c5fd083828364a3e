import threading
import time
from datetime import date

from odoo import SUPERUSER_ID, api
from odoo.orm.environments import Transaction
from odoo.tests import TransactionCase, tagged
from odoo.tools import sql

from ..hooks import uninstall_hook
from ..models.prepaid_meter_reading import STORE
from ..models.prepaid_meter_reading_daily import QUEUE


@tagged("post_install", "-at_install")
class TestPartitionConcurrency(TransactionCase):
    """M5: two batches of a month without a partition arrive at once (two gateways pushing
    just after midnight on the 1st): one creates the partition, the other waits for it and
    stores into it; neither fails."""

    MONTH = date(2091, 5, 1)

    def _in_transaction(self, work):
        with self.registry.cursor() as cr:
            cr.execute("SET LOCAL lock_timeout = '20s'")
            # the registry is known: no lookup (its lock is held while tests run)
            cr.transaction = Transaction(self.registry)
            work(api.Environment(cr, SUPERUSER_ID, {})["prepaid.meter.reading"])

    def _drop_partition(self):
        name = f"{STORE}_{self.MONTH:%Y_%m}"  # no query: this snapshot begins after the threads

        def drop(readings):
            readings.env.cr.execute(f'DROP TABLE IF EXISTS "{name}"')

        self._in_transaction(drop)

    def setUp(self):
        super().setUp()
        self._drop_partition()
        self.addCleanup(self._drop_partition)

    def test_two_transactions_create_a_month_partition_once(self):
        created, errors = threading.Event(), []

        def first(readings):
            readings._ensure_partitions([self.MONTH])
            created.set()
            time.sleep(1.0)  # the other transaction now waits for this one to commit

        def second(readings):
            created.wait(20)
            started = time.monotonic()
            readings._ensure_partitions([self.MONTH])
            waited.append(time.monotonic() - started)

        def run(work):
            try:
                self._in_transaction(work)
            except Exception as exc:
                errors.append(exc)
                created.set()

        waited = []
        threads = [threading.Thread(target=run, args=(work,)) for work in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(errors, [])
        self.assertGreater(waited[0], 0.5, "the second transaction waited for the first")
        name = f"{STORE}_{self.MONTH:%Y_%m}"  # no query: this snapshot begins after the threads
        self.assertIn(name, self.env["prepaid.meter.reading"]._partition_names())


@tagged("post_install", "-at_install")
class TestStoreUninstall(TransactionCase):
    """M5: the readings store and the daily freeze's queue are none of the ORM's tables: the
    add-on's uninstall hook drops them, the store's partitions and the ORM's view of it with
    it (Odoo drops the models' own tables).  Rolled back with the test."""

    def test_uninstall_hook_drops_the_store_its_partitions_view_and_queue(self):
        partitions = self.env["prepaid.meter.reading"]._partition_names()
        self.assertIn(f"{STORE}_default", partitions)
        uninstall_hook(self.env)
        for name in (STORE, "prepaid_meter_reading", QUEUE, *partitions):
            self.assertIsNone(sql.table_kind(self.env.cr, name), name)
