"""19.0.1.1.0: each meter's latest state moves to its own narrow table (prepaid.meter.latest).

The ORM created the table and the meters' ``latest_id`` column (left nullable, since existing
meters had no value): give every meter its state record, with the values it had, then drop
the old columns from the meter's wide table."""

from odoo.tools import sql

COLUMNS = (
    "last_reading_at",
    "last_total",
    "baseline_total",
    "baseline_at",
    "last_forward_total",
    "last_reverse_total",
    "last_power",
    "last_meter_balance",
    "last_contact_at",
    "connection_state",
    "actual_relay_state",
    "actual_relay_at",
    "relay_mismatch",
)


def migrate(cr, version):
    if not version or not sql.column_exists(cr, "prepaid_meter", "last_contact_at"):
        return
    columns = ", ".join(COLUMNS)
    cr.execute("ALTER TABLE prepaid_meter_latest ADD COLUMN migrated_meter_id int")
    cr.execute(
        f"""
        INSERT INTO prepaid_meter_latest (migrated_meter_id, {columns})
        SELECT id, {columns} FROM prepaid_meter WHERE latest_id IS NULL
        """
    )
    cr.execute(
        """
        UPDATE prepaid_meter m SET latest_id = l.id
          FROM prepaid_meter_latest l WHERE l.migrated_meter_id = m.id
        """
    )
    cr.execute("ALTER TABLE prepaid_meter_latest DROP COLUMN migrated_meter_id")
    cr.execute("ALTER TABLE prepaid_meter ALTER COLUMN latest_id SET NOT NULL")
    for column in COLUMNS:
        cr.execute(f"ALTER TABLE prepaid_meter DROP COLUMN IF EXISTS {column} CASCADE")
    cr.execute("ALTER TABLE prepaid_meter RESET (fillfactor)")
