"""19.0.1.2.0: a meter model's Modbus register map becomes a register map record (G2).

The shipped map's name each model held is kept aside here; post-migrate links the model
to that map's record once the shipped maps are loaded."""

from odoo.tools import sql


def migrate(cr, version):
    if not version:
        return
    column = sql.table_columns(cr, "prepaid_meter_model").get("modbus_register_map")
    if column and column["udt_name"] == "varchar":
        sql.rename_column(
            cr, "prepaid_meter_model", "modbus_register_map", "modbus_register_map_name"
        )
