from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..const import BANDS, UTILITIES


class PrepaidConsumptionProduct(models.Model):
    """B9: the product that invoices consumption of a utility (and time-of-use band).

    A line without band serves every band of its utility that has no line of its own.
    Tariff prices are what tenants pay, taxes included: the product's sales taxes must be
    *included in price*, so that an invoice totals exactly the consumption charged."""

    _name = "prepaid.consumption.product"
    _description = "Consumption Product"
    _order = "company_id, utility, band"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    utility = fields.Selection(UTILITIES, required=True, default="electricity")
    band = fields.Selection(BANDS, help="Empty: every band without a product of its own.")
    product_id = fields.Many2one(
        "product.product", required=True, check_company=True, domain=[("sale_ok", "=", True)]
    )
    tax_ids = fields.Many2many(related="product_id.taxes_id", string="Taxes")

    _utility_band_uniq = models.UniqueIndex(
        "(company_id, utility, COALESCE(band, ''))",
        "A utility and band have one consumption product per company.",
    )

    @api.constrains("product_id")
    def _check_taxes_included(self):
        for line in self:
            taxes = line.product_id.taxes_id.filtered(
                lambda tax, company=line.company_id: tax.company_id == company
            )
            if any(not tax.price_include for tax in taxes):
                raise ValidationError(
                    self.env._(
                        "The taxes of %(product)s must be included in the price: tariff "
                        "prices are what the tenant pays.",
                        product=line.product_id.display_name,
                    )
                )

    @api.model
    def _product_for(self, company, utility, band):
        """The product invoicing ``utility`` consumed in ``band`` for ``company``."""
        lines = self.sudo().search([("company_id", "=", company.id), ("utility", "=", utility)])
        line = (
            lines.filtered(lambda p: p.band == band)[:1] or lines.filtered(lambda p: not p.band)[:1]
        )
        if not line:
            raise UserError(
                self.env._(
                    "No consumption product for %(utility)s (%(band)s) in %(company)s: set it in "
                    "Prepaid Energy > Configuration > Consumption Products.",
                    utility=utility,
                    band=band,
                    company=company.display_name,
                )
            )
        return line.product_id
