"""M5 under real concurrency: readings stored by two workers at the same moment, on committed
data, through two database connections (as Odoo's workers store two gateways' pushes).

- two gateways' fleet batches at once, each copied before either updates its meters' latest
  states (the large-batch way, which reads the latest states back from the store by the
  batch's reading ids): each batch stores its own rows and each meter's latest state is its
  own reading, with no retry;
- the same batch from two workers at once (a gateway's retry racing its first delivery): each
  reading is stored once, the other delivery's rows are rejected as duplicates and kept in
  the rejected readings, the meters' latest states are those of the stored rows."""

import threading
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import mute_logger

from ..models import prepaid_meter_reading as reading_module
from .concurrency import ConcurrencyCase, purge, purge_meters

T0 = datetime(2090, 3, 1, 10, 0)  # a month of its own: its partition is dropped afterwards


@tagged("post_install", "-at_install")
class TestIngestConcurrency(ConcurrencyCase):
    def _create(self, env):
        site = env["prepaid.site"].create({"name": "Ingest Concurrency Park", "code": "ICP"})
        building = env["prepaid.building"].create({"name": "IC", "site_id": site.id})
        model = env.ref("prepaid_meter.meter_model_ddsy_5_60")
        gateways, meters = [], {}
        for g in range(2):
            gateway = env["prepaid.gateway"].create(
                {"name": f"IC collector {g}", "site_id": site.id, "gateway_type": "mqtt"}
            )
            gateways.append(gateway.id)
            for index in range(4):
                unit = env["prepaid.unit"].create(
                    {"name": f"IC-{g}-{index}", "building_id": building.id}
                )
                meter = env["prepaid.meter"].create(
                    {
                        "name": f"Power IC-{g}-{index}",
                        "address": f"00880000{g:02d}{index:02d}",
                        "model_id": model.id,
                        "unit_id": unit.id,
                        "gateway_id": gateway.id,
                        "state": "in_service",
                    }
                )
                meters.setdefault(gateway.id, []).append(meter.id)
        self.created.update(site=site.id, building=building.id, gateways=gateways, meters=meters)
        # the month's partition exists, as it does for most batches (a batch that creates it
        # holds the store's lock until it commits: the other waits, see test_partition)
        env["prepaid.meter.reading"]._ensure_partitions([T0.date()])

    def _cleanup(self, env):
        ids, cr = self.created, env.cr
        purge_meters(cr, [m for meters in ids["meters"].values() for m in meters])
        purge(cr, "prepaid_gateway", ids["gateways"])
        purge(cr, "prepaid_building", [ids["building"]])
        purge(cr, "prepaid_site", [ids["site"]])
        readings = env["prepaid.meter.reading"]
        cr.execute(f'DROP TABLE IF EXISTS "{readings._partition_name(T0)}"')
        cr.execute(
            "DELETE FROM prepaid_meter_reading_daily_queue WHERE first_at >= %s AND first_at < %s",
            [T0.replace(day=1, hour=0), T0.replace(month=T0.month + 1, day=1, hour=0)],
        )

    def setUp(self):
        super().setUp()
        # the large-batch ways (meters looked up in a helper thread, latest states read back
        # from the store by the batch's reading ids) for these few meters
        for name in ("LARGE_BATCH", "FLEET_LOOKUP"):
            large = patch.object(reading_module, name, 2)
            large.start()
            self.addCleanup(large.stop)
        self.results = []

    def _push(self, meter_ids, at, total):
        """A worker's request: a gateway's fleet batch, one reading per meter."""

        def push(env):
            batch = [
                {"meter_id": meter_id, "read_at": at, "forward_total": total + n}
                for n, meter_id in enumerate(meter_ids)
            ]
            self.results.append(env["prepaid.meter.reading"]._ingest(batch))

        return push

    def _latest(self, meter_ids):
        return self._query(
            "SELECT m.id, l.last_reading_at, l.last_forward_total, l.baseline_total, "
            "l.connection_state FROM prepaid_meter m "
            "JOIN prepaid_meter_latest l ON l.id = m.latest_id "
            "WHERE m.id = ANY(%s) ORDER BY m.id",
            [meter_ids],
        )

    def _stored(self, meter_ids):
        return self._query(
            "SELECT meter_id, read_at, forward_total, consumption, flags "
            "FROM prepaid_meter_reading_store WHERE meter_id = ANY(%s) "
            "ORDER BY meter_id, read_at",
            [meter_ids],
        )

    def test_two_gateways_batches_stored_at_once(self):
        first, second = self.created["meters"].values()
        model = self.registry_obj["prepaid.meter.reading"]
        update_meters = model._update_meters
        for round_, (at, total) in enumerate(((T0, 100.0), (T0 + timedelta(minutes=30), 101.0))):
            copied = threading.Barrier(2, timeout=30)

            def update_when_both_copied(self, *args, copied=copied, **kwargs):
                # both batches' rows are in the store, neither committed: each update reads
                # back its own rows only
                copied.wait()
                return update_meters(self, *args, **kwargs)

            self.results.clear()
            with (
                patch.object(model, "_update_meters", update_when_both_copied),
                # each reads its own rows back: none falls back to staging the states
                patch.object(model, "_update_latest_staged", side_effect=AssertionError("staged")),
            ):
                attempts = self._race(self._push(first, at, total), self._push(second, at, total))
            self.assertEqual(attempts, [0, 0], f"round {round_}: no worker had to start again")
            self.assertEqual(sorted(r["stored"] for r in self.results), [4, 4])
            self.assertEqual([r["rejected"] for r in self.results], [[], []])
        later = T0 + timedelta(minutes=30)
        for meters in (first, second):
            self.assertEqual(
                self._latest(meters),
                [(m, later, 101.0 + n, 101.0 + n, "online") for n, m in enumerate(meters)],
            )
            self.assertEqual(
                self._stored(meters),
                [
                    row
                    for n, m in enumerate(meters)
                    for row in (
                        (m, T0, 100.0 + n, 0.0, "baseline"),
                        (m, later, 101.0 + n, 1.0, None),
                    )
                ],
            )

    @mute_logger("odoo.sql_db")  # (the serialization failure of the delivery that retries)
    def test_same_batch_from_two_workers_stored_once(self):
        meters = next(iter(self.created["meters"].values()))
        self._race(self._push(meters, T0, 100.0), self._push(meters, T0, 100.0))
        self.assertEqual(sorted(r["stored"] for r in self.results[-2:]), [0, 4])
        refused = next(r for r in self.results[-2:] if not r["stored"])
        self.assertEqual(
            [(item["index"], item["reason"]) for item in refused["rejected"]],
            [(n, "Duplicate reading.") for n in range(4)],
        )
        self.assertEqual(
            self._stored(meters),
            [(m, T0, 100.0 + n, 0.0, "baseline") for n, m in enumerate(meters)],
        )
        self.assertEqual(
            self._latest(meters),
            [(m, T0, 100.0 + n, 100.0 + n, "online") for n, m in enumerate(meters)],
        )
        kept = self._query(
            "SELECT meter_id, reason FROM prepaid_meter_reading_rejection "
            "WHERE meter_id = ANY(%s) ORDER BY meter_id",
            [meters],
        )
        self.assertEqual(kept, [(m, "Duplicate reading.") for m in meters])
