"""The deduction's floor: what charging new readings costs with nothing but plain SQL.

Read the new chargeable readings with their meters' open accounts, write one ledger row per
reading and every account's balance, pricing nothing but one multiplication.  No charging
can do less work than this, so a benchmark divides the scheduled action's time by it: the
ratio does not depend on how fast the machine is.  The rows are adjustments (memo
``floor``): the one consumption line a day of a deduction (a unique index) is the run's.
Two ways, the faster of which is the floor: the readings read to the client, the ledger
rows written with COPY and the balances with one ``UPDATE ... FROM`` (``copy_floor``); one
``INSERT ... SELECT`` and ``UPDATE ... FROM`` statement (``sql_floor``).  Which readings:
those of a time window (``WINDOW``: ``since``, ``until``) or those past the meters' billing
cursors (``PAST_CURSOR``: ``ids``).

    from floor import measure_floor
    floor = measure_floor(cr, since, until)   # cr: an Odoo cursor; readings in (since, until]
    print(floor.readings, floor.seconds)      # the COPY way, rolled back
    floor = measure_floor_anew(registry, since, until)  # the same on a fresh cursor, retried
"""

import csv
import io
import time
from decimal import Decimal
from typing import NamedTuple

from psycopg2.extensions import TransactionRollbackError

#: the floor's flat price a unit (it prices nothing: one multiplication in SQL or Python)
FLOOR_PRICE = Decimal("0.8")
#: the readings of a time window
WINDOW = "r.read_at > %(since)s AND r.read_at <= %(until)s"
#: the readings of the meters ``ids`` past their billing cursors
PAST_CURSOR = "m.id = ANY(%(ids)s) AND r.read_at > COALESCE(m.billing_charged_until, '-infinity')"
_READINGS = """
    SELECT a.id AS account_id, a.company_id, r.read_at, r.consumption
      FROM prepaid_meter_reading_store r
      JOIN prepaid_meter m ON m.id = r.meter_id
      JOIN prepaid_tenancy t ON t.unit_id = m.unit_id AND t.state = 'open'
      JOIN prepaid_account a ON a.tenancy_id = t.id AND a.state = 'open'
     WHERE r.chargeable AND {where}
"""
LEDGER_COLUMNS = (
    "account_id, company_id, kind, amount, quantity, date, posted_at, memo, "
    "create_uid, write_uid, create_date, write_date"
)


class Floor(NamedTuple):
    readings: int
    seconds: float


def copy_floor(cr, where, params):
    """The readings read to the client, a ledger row each written with COPY, the balances
    with one ``UPDATE ... FROM``; returns how many readings."""
    cr.execute(_READINGS.format(where=where), params)
    rows, deltas = [], {}
    for account_id, company_id, read_at, consumption in cr.fetchall():
        amount = -(Decimal(consumption) * FLOOR_PRICE).quantize(Decimal("0.0001"))
        deltas[account_id] = deltas.get(account_id, 0) + amount
        rows.append(
            (account_id, company_id, "adjustment", amount, consumption, read_at.date(), read_at)
        )
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t").writerows(
        (*row, "floor", 1, 1, row[-1], row[-1]) for row in rows
    )
    buffer.seek(0)
    cr._obj.copy_expert(
        f"COPY prepaid_account_line ({LEDGER_COLUMNS}) FROM STDIN WITH (FORMAT csv, "
        "DELIMITER E'\\t')",
        buffer,
    )
    cr.execute(
        "UPDATE prepaid_account a SET balance = COALESCE(a.balance, 0) + v.delta "
        "FROM unnest(%s::int4[], %s::numeric[]) AS v(id, delta) WHERE a.id = v.id",
        [list(deltas), list(deltas.values())],
    )
    return len(rows)


def sql_floor(cr, where, params):
    """The same in one statement: ``INSERT ... SELECT`` of the ledger rows,
    ``UPDATE ... FROM`` of the balances."""
    cr.execute(
        f"""
        WITH readings AS ({_READINGS.format(where=where)}),
        lines AS (
            INSERT INTO prepaid_account_line ({LEDGER_COLUMNS})
            SELECT account_id, company_id, 'adjustment',
                   -round(consumption * %(floor_price)s, 4), consumption, read_at::date,
                   read_at, 'floor', 1, 1, read_at, read_at
              FROM readings
            RETURNING account_id, amount)
        UPDATE prepaid_account a SET balance = COALESCE(a.balance, 0) + s.delta
          FROM (SELECT account_id, sum(amount) AS delta FROM lines GROUP BY account_id) s
         WHERE a.id = s.account_id
        """,
        {**params, "floor_price": FLOOR_PRICE},
    )


def measure_floor(cr, since, until):
    """The floor of charging the readings of ``(since, until]`` (the COPY way): how many,
    in how many seconds (wall clock).  ``cr``: an Odoo cursor; its work is rolled back."""
    cr.execute("SAVEPOINT deduction_floor")
    try:
        start = time.perf_counter()
        readings = copy_floor(cr, WINDOW, {"since": since, "until": until})
        return Floor(readings, time.perf_counter() - start)
    finally:
        cr.execute("ROLLBACK TO SAVEPOINT deduction_floor")


def measure_floor_anew(registry, since, until, tries=5):
    """:func:`measure_floor` on a cursor of its own, in READ COMMITTED: the scheduled actions
    still running (the forecast, the notices) write some of the accounts meanwhile, and a
    balances UPDATE of a million accounts in Odoo's REPEATABLE READ failed to serialize
    five times in a row; here it waits for their row locks instead.  Started again on a
    deadlock with one of them."""
    for attempt in range(1, tries + 1):
        with registry.cursor() as cr:
            try:
                cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                return measure_floor(cr, since, until)
            except TransactionRollbackError:
                if attempt == tries:
                    raise
