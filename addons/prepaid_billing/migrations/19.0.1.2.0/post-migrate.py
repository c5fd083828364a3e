"""B3: the meters' and accounts' tables keep half of each page free for the deduction's
updates of cursors and balances (``init`` of ``prepaid.meter`` and ``prepaid.account``);
their rows written before are packed, so they are rewritten once here (seconds for a
million meters, during the upgrade)."""


def migrate(cr, version):
    for table in ("prepaid_meter", "prepaid_account"):
        cr.execute(f"ALTER TABLE {table} SET (fillfactor = 50)")
        cr.execute(f"CLUSTER {table} USING {table}_pkey")
