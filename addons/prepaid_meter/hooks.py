from odoo.tools import SQL

from .models.prepaid_meter_reading import STORE
from .models.prepaid_meter_reading_daily import QUEUE


def uninstall_hook(env):
    """Drop what the add-on made in PostgreSQL outside the ORM's tables: the readings store
    (partitioned by month: its partitions, and the ORM's view of it, go with it) and the
    daily freeze's queue.  Odoo drops the tables of the add-on's models itself; these two it
    does not know of."""
    for table in (STORE, QUEUE):
        env.cr.execute(SQL("DROP TABLE IF EXISTS %s CASCADE", SQL.identifier(table)))
