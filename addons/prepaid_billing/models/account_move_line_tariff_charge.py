from odoo import fields, models


class AccountMoveLine(models.Model):
    """B14/B15: an invoice line billing a fixed charge or a common-area share names its
    ledger line, so that the next invoice bills only what is new. A fixed charge's ledger
    line is its price with the product's taxes: its invoice line bills its total."""

    _inherit = "account.move.line"

    prepaid_line_id = fields.Many2one(
        "prepaid.account.line",
        string="Ledger Line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
        help="The fixed charge or common-area share this invoice line bills.",
    )

    def _prepaid_billed_amount(self):
        self.ensure_one()
        if self.prepaid_line_id.kind == "fixed_charge":
            return self.price_total
        return super()._prepaid_billed_amount()
