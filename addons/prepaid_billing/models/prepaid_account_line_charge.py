from odoo import fields, models


class PrepaidAccountLine(models.Model):
    """B14/B15: a ledger line of a fixed charge names the charge and its cycle, one of a
    common-area split names the split period and the common meter; each is posted once
    (the unique indexes below back it against a killed and rerun or a concurrent run)."""

    _inherit = "prepaid.account.line"

    charge_id = fields.Many2one(
        "prepaid.tariff.charge",
        string="Fixed Charge",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
    )
    charge_period = fields.Date(
        string="Cycle Start", readonly=True, help="First day of the cycle a fixed charge is for."
    )
    common_period_id = fields.Many2one(
        "prepaid.common.area.period",
        string="Common-Area Period",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
    )
    source_meter_id = fields.Many2one(
        "prepaid.meter",
        readonly=True,
        help="The common meter whose cost this line shares.",
    )

    _charge_cycle_uniq = models.UniqueIndex(
        "(account_id, charge_id, charge_period) WHERE charge_id IS NOT NULL",
        "A fixed charge is charged once per account and cycle.",
    )
    _common_period_uniq = models.UniqueIndex(
        "(account_id, common_period_id) WHERE common_period_id IS NOT NULL",
        "A common-area period is shared to an account once.",
    )
