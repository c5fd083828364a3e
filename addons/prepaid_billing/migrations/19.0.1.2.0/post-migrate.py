"""B3: the meters' and accounts' tables keep half of each page free for the deduction's
updates of cursors and balances (``init`` of ``prepaid.meter`` and ``prepaid.account``);
their rows written before are packed, so they are rewritten once here (seconds for a
million meters, during the upgrade)."""

from odoo.addons.prepaid_billing.const import HOT_UPDATE_FILLFACTOR


def migrate(cr, version):
    for table in ("prepaid_meter", "prepaid_account"):
        cr.execute(f"ALTER TABLE {table} SET (fillfactor = {HOT_UPDATE_FILLFACTOR})")
        cr.execute(f"CLUSTER {table} USING {table}_pkey")
