"""B3: the meters' table keeps half of each page free for the deduction's cursor updates
(``prepaid.meter.init``); its rows written before are packed, so it is rewritten once here
(a few seconds for a million meters, during the upgrade)."""


def migrate(cr, version):
    cr.execute("ALTER TABLE prepaid_meter SET (fillfactor = 50)")
    cr.execute("CLUSTER prepaid_meter USING prepaid_meter_pkey")
