"""19.0.1.2.0: each meter model gets the register map record of the shipped map it named
(G2); models whose name matches no shipped map keep the default map."""

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL, sql


def migrate(cr, version):
    if not version or not sql.column_exists(cr, "prepaid_meter_model", "modbus_register_map_name"):
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    rows = env.execute_query_dict(
        SQL(
            "SELECT id, modbus_register_map_name AS name FROM prepaid_meter_model "
            "WHERE modbus_register_map_name IS NOT NULL"
        )
    )
    for row in rows:
        regmap = env.ref(f"meter_gateway.register_map_{row['name']}", raise_if_not_found=False)
        if regmap:
            env["prepaid.meter.model"].browse(row["id"]).modbus_register_map = regmap
    cr.execute(SQL("ALTER TABLE prepaid_meter_model DROP COLUMN modbus_register_map_name"))
