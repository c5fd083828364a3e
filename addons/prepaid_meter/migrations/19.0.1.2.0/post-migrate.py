"""19.0.1.2.0: CT and PT entered as nameplate pairs; power, current and voltage stored on
the primary side.

The ORM added the pair columns with their default (1/1): each meter and meter model gets
the pair ``ratio/1`` of the ratios it had.  Readings stored before held power, current and
voltage as the meter reported them: they are scaled by the meter's ratios (those it has
now: the store kept no older ones), as are the latest power and each day's highest power,
so that every figure and the overload comparison are on the primary side.  Energy stays as
it was (registers as read, totals already primary)."""

SCALED = "m.ct_ratio IS DISTINCT FROM 1 OR m.pt_ratio IS DISTINCT FROM 1"
#: the ratios as exact numbers (float8 to numeric: its 15 significant digits)
CT = "COALESCE(m.ct_ratio, 1)::numeric"
PT = "COALESCE(m.pt_ratio, 1)::numeric"


def migrate(cr, version):
    if not version:
        return
    for table in ("prepaid_meter", "prepaid_meter_model"):
        cr.execute(
            f"""
            UPDATE {table}
               SET ct_primary = COALESCE(ct_ratio, 1), ct_secondary = 1,
                   pt_primary = COALESCE(pt_ratio, 1), pt_secondary = 1
            """
        )
    cr.execute(
        f"""
        UPDATE prepaid_meter_reading_store r
           SET power = r.power * {CT} * {PT},
               current = r.current * {CT},
               voltage = r.voltage * {PT}
          FROM prepaid_meter m
         WHERE m.id = r.meter_id AND ({SCALED})
           AND (r.power IS NOT NULL OR r.current IS NOT NULL OR r.voltage IS NOT NULL)
        """
    )
    # the highest powers kept apart from the readings: the latest one, each day's
    for table, column, join in (
        ("prepaid_meter_latest", "last_power", "m.latest_id = t.id"),
        ("prepaid_meter_reading_daily", "max_power", "m.id = t.meter_id"),
    ):
        cr.execute(
            f"""
            UPDATE {table} t SET {column} = t.{column} * {CT} * {PT}
              FROM prepaid_meter m
             WHERE {join} AND t.{column} IS NOT NULL AND ({SCALED})
            """
        )
