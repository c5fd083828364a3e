"""The deduction's floor: what charging new readings costs with nothing but plain SQL.

Read the new chargeable readings of a time window with their meters' open accounts, write
one ledger row per reading (COPY) and every account's balance (one ``UPDATE ... FROM`` a
COPY-filled staging table), with no pricing (the amount is the consumption).  No charging
can do less work than this, so a benchmark divides the scheduled action's time by it: the
ratio does not depend on how fast the machine is.  Everything is rolled back.

    from floor import measure_floor
    floor = measure_floor(cr, since, until)   # cr: an Odoo cursor; readings in (since, until]
    print(floor.readings, floor.seconds)
"""

import csv
import io
import time
from typing import NamedTuple

_NEW_READINGS = """
    SELECT a.id AS account_id, a.company_id, r.read_at::date AS day, r.consumption
      FROM prepaid_meter_reading_store r
      JOIN prepaid_meter m ON m.id = r.meter_id
      JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
      JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
     WHERE r.read_at > %(since)s AND r.read_at <= %(until)s AND r.chargeable
"""
_LEDGER_COPY = (
    "COPY prepaid_account_line (account_id, company_id, kind, amount, date, posted_at, memo, "
    "create_uid, write_uid, create_date, write_date) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t')"
)


class Floor(NamedTuple):
    readings: int
    seconds: float


def measure_floor(cr, since, until):
    """The floor of charging the readings of ``(since, until]``: how many, in how many
    seconds (wall clock).  ``cr``: an Odoo cursor; its work is rolled back."""
    cr.execute("SAVEPOINT deduction_floor")
    try:
        start = time.perf_counter()
        cr.execute(_NEW_READINGS, {"since": since, "until": until})
        rows = cr.dictfetchall()
        _copy(cr, _LEDGER_COPY, _ledger_rows(rows))
        cr.execute(
            "CREATE TEMP TABLE deduction_floor_moves (id int4, delta numeric) ON COMMIT DROP"
        )
        _copy(
            cr,
            "COPY deduction_floor_moves FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t')",
            ((row["account_id"], -row["consumption"]) for row in rows),
        )
        cr.execute(
            "UPDATE prepaid_account a SET balance = COALESCE(a.balance, 0) + v.delta "
            "FROM (SELECT id, sum(delta) AS delta FROM deduction_floor_moves GROUP BY id) v "
            "WHERE a.id = v.id"
        )
        return Floor(len(rows), time.perf_counter() - start)
    finally:
        cr.execute("ROLLBACK TO SAVEPOINT deduction_floor")


def _ledger_rows(rows):
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    for row in rows:
        yield (
            *(row["account_id"], row["company_id"], "adjustment", -row["consumption"]),
            *(row["day"], now, "floor", 1, 1, now, now),
        )


def _copy(cr, statement, rows):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t").writerows(rows)
    buffer.seek(0)
    cr._obj.copy_expert(statement, buffer)
