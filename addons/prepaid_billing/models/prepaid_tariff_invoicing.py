from odoo import api, fields, models

TAX_MODES = [
    ("included", "Taxes included"),
    ("added", "Taxes added"),
    ("mixed", "Some taxes included"),
]


class PrepaidTariffProduct(models.Model):
    """B1/B9: the product that invoices one time-of-use band and/or ladder step of a
    tariff, instead of the company's consumption product of the utility and band.  Its
    sales taxes say whether the tariff's prices include them."""

    _name = "prepaid.tariff.product"
    _inherit = ["prepaid.band.product.mixin"]
    _description = "Tariff Invoicing Product"
    _order = "tariff_id, band, step"
    _check_company_auto = True

    tariff_id = fields.Many2one("prepaid.tariff", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="tariff_id.company_id", store=True)
    step = fields.Integer(string="Ladder Step", help="Step number (1 is the first); 0: every step.")

    _tariff_band_step_uniq = models.UniqueIndex(
        "(tariff_id, COALESCE(band, ''), step)",
        "A band and step of a tariff have one invoicing product.",
    )

    @api.model
    def _product_for(self, tariff, band, step):
        """The product of ``tariff`` for ``band`` and ``step``: the most specific line
        (band and step, then band, then step, then neither), or an empty record."""
        lines = self.sudo().search([("tariff_id", "=", tariff.id)])
        for wanted_band, wanted_step in ((band, step), (band, 0), (False, step), (False, 0)):
            line = lines.filtered(
                lambda ln, b=wanted_band, s=wanted_step: (ln.band or False) == b and ln.step == s
            )[:1]
            if line:
                return line.product_id
        return self.env["product.product"]


class PrepaidTariff(models.Model):
    """B1/B9/B14: how a tariff's consumption is invoiced: the products of its bands and
    steps, whether its prices include taxes (from those products' taxes, shown on the
    tariff and the receipts), the overdue policy of its postpaid accounts."""

    _inherit = "prepaid.tariff"

    postpaid_cut_days = fields.Integer(
        string="Cut Supply After (days overdue)",
        help="Postpaid accounts on this tariff: supply is cut when the oldest unpaid invoice "
        "is overdue by more than this many days; 0: the company's policy.",
    )
    invoice_product_ids = fields.One2many(
        "prepaid.tariff.product", "tariff_id", string="Invoicing Products"
    )
    tax_mode = fields.Selection(
        TAX_MODES,
        string="Prices",
        compute="_compute_tax_mode",
        help="Whether the tariff's prices include the sales taxes of the products invoicing "
        "them (the tariff's own, else the company's consumption products).",
    )

    @api.depends("invoice_product_ids.product_id.taxes_id.price_include", "utility", "company_id")
    def _compute_tax_mode(self):
        for tariff in self:
            products = tariff.invoice_product_ids.product_id | (
                self.env["prepaid.consumption.product"]
                .sudo()
                .search(
                    [
                        ("company_id", "=", (tariff.company_id or self.env.company).id),
                        ("utility", "=", tariff.utility),
                    ]
                )
                .product_id
            )
            taxes = products.sudo().taxes_id.filtered(
                lambda tax, t=tariff: tax.company_id == (t.company_id or self.env.company)
            )
            included = {bool(tax.price_include) for tax in taxes} or {True}
            tariff.tax_mode = (
                "mixed" if len(included) > 1 else "included" if True in included else "added"
            )
