"""Test support (not a test): real concurrency against PostgreSQL for the reliability
requirements (R1, R11, ...).

The data of such a test must be visible to other connections: it is committed through
cursors of their own (never the test's) and removed again at the end.  Each contender runs
in a thread with a database connection of its own, as two Odoo workers would, and starts at
the same moment as the others (a barrier).

The test runner holds the registry lock while tests run: code in a contender that looks the
registry up (a post-commit hook opening a cursor of its own, such as the customer rank of a
partner invoiced twice) waits for the end of the tests; :meth:`ConcurrencyCase._race` then
reports a hang and prints where each thread stands."""

import faulthandler
import random
import threading
import time
from contextlib import closing

from psycopg2 import IntegrityError, OperationalError

from odoo import SUPERUSER_ID, api, sql_db
from odoo.modules.registry import Registry
from odoo.orm.environments import Transaction
from odoo.tests import BaseCase
from odoo.tests.common import get_db_name
from odoo.tools import SQL


def run_like_a_worker(func, make_env, tries=5):
    """What an Odoo worker does with a request (``odoo.service.model.retrying``): run,
    commit; on a serialization failure roll back and run again in a fresh environment.
    Returns how many times it had to start again."""
    for attempt in range(tries):
        env = make_env()
        try:
            func(env)
            env.cr.commit()
            return attempt
        except (OperationalError, IntegrityError):
            env.cr.rollback()
            time.sleep(random.uniform(0.05, 0.3))
    raise AssertionError("still failing to serialize")


def purge(cr, table, ids):
    """Delete rows of ``table`` and, first, the rows that reference them and would block it
    (the append-only ledger and the partitioned readings have no ORM way out)."""
    if not ids:
        return
    cr.execute(
        """
        SELECT c.conrelid::regclass::text, a.attname
          FROM pg_constraint c
          JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND c.confdeltype IN ('a', 'r')
           AND a.attname NOT IN ('create_uid', 'write_uid')
        """,
        [table],
    )
    for ref_table, column in cr.fetchall():
        cr.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'id'",
            [ref_table],
        )
        if not cr.fetchone():  # a relation table of a many2many
            cr.execute(
                SQL(
                    "DELETE FROM %s WHERE %s = ANY(%s)",
                    SQL.identifier(ref_table),
                    SQL.identifier(column),
                    list(ids),
                )
            )
            continue
        cr.execute(
            SQL(
                "SELECT id FROM %s WHERE %s = ANY(%s)",
                SQL.identifier(ref_table),
                SQL.identifier(column),
                list(ids),
            )
        )
        purge(cr, ref_table, [row[0] for row in cr.fetchall()])
    cr.execute(SQL("DELETE FROM %s WHERE id = ANY(%s)", SQL.identifier(table), list(ids)))


def purge_meters(cr, meter_ids):
    """Delete meters with what hangs on them: their readings, their latest states and
    their units (and, through :func:`purge`, whatever references those)."""
    cr.execute("DELETE FROM prepaid_meter_reading_store WHERE meter_id = ANY(%s)", [meter_ids])
    cr.execute("SELECT latest_id, unit_id FROM prepaid_meter WHERE id = ANY(%s)", [meter_ids])
    rows = cr.fetchall()
    purge(cr, "prepaid_meter", meter_ids)
    purge(cr, "prepaid_meter_latest", [latest for latest, _unit in rows if latest])
    purge(cr, "prepaid_unit", sorted({unit for _latest, unit in rows if unit}))


def forget(cr, model, ids):
    """Delete the chatter (messages, followers) of the ``model`` records ``ids``: it has
    no foreign key to them."""
    cr.execute("DELETE FROM mail_message WHERE model = %s AND res_id = ANY(%s)", [model, ids])
    cr.execute("DELETE FROM mail_followers WHERE res_model = %s AND res_id = ANY(%s)", [model, ids])


class ConcurrencyCase(BaseCase):
    """Runs outside the test transaction: subclasses commit their records in
    :meth:`_create` (through :meth:`_committed`) and remove them in :meth:`_cleanup`."""

    def setUp(self):
        super().setUp()
        self.env_dbname = get_db_name()
        self.registry_obj = Registry(self.env_dbname)
        self.created = {}
        with closing(self._connect()) as cr:
            self._create(self._env(cr))
            cr.commit()  # pylint: disable=invalid-commit
        self.addCleanup(self._committed, self._cleanup)

    def _create(self, env):
        raise NotImplementedError

    def _cleanup(self, env):
        raise NotImplementedError

    def _env(self, cr):
        # the test runner holds the registry lock: hand each connection the registry
        # object instead of letting the worker threads look it up
        cr.transaction = Transaction(self.registry_obj)
        return api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})

    def _connect(self):
        return sql_db.db_connect(self.env_dbname).cursor()

    def _committed(self, func):
        """Run ``func(env)`` on a connection of its own and commit; return its result."""
        with closing(self._connect()) as cr:
            result = func(self._env(cr))
            cr.commit()  # pylint: disable=invalid-commit
            return result

    def _query(self, query, args=()):
        """Rows of ``query`` as committed now."""
        with closing(self._connect()) as cr:
            cr.execute(query, args)
            return cr.fetchall()

    def _race(self, *contenders, timeout=120):
        """Run each ``contender(env)`` in a thread and a connection of its own, all starting
        at once, each like a worker (:func:`run_like_a_worker`); return how many times each
        had to start again (in the order given)."""
        barrier = threading.Barrier(len(contenders))
        errors, attempts = [], [None] * len(contenders)

        def worker(index, func):
            try:
                with closing(self._connect()) as cr:
                    barrier.wait(timeout=30)
                    attempts[index] = run_like_a_worker(func, lambda: self._env(cr))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, args=(index, func))
            for index, func in enumerate(contenders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=timeout)
        if any(thread.is_alive() for thread in threads):
            faulthandler.dump_traceback(all_threads=True)  # where it hangs, in the log
            self.fail("a worker hangs")
        self.assertFalse(errors, errors)
        return attempts
