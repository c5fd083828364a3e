from odoo import api, fields, models
from odoo.exceptions import UserError

from ..const import UTILITIES


class PrepaidConsumptionProduct(models.Model):
    """B9: the product that invoices consumption of a utility (and time-of-use band).

    A line without band serves every band of its utility that has no line of its own.
    The product's sales taxes say whether tariff prices include them: a prepaid balance pays
    prices taxes included (its invoices check it); a postpaid invoice may add them."""

    _name = "prepaid.consumption.product"
    _inherit = ["prepaid.band.product.mixin"]
    _description = "Consumption Product"
    _order = "company_id, utility, band"
    _check_company_auto = True

    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    utility = fields.Selection(UTILITIES, required=True, default="electricity")

    _utility_band_uniq = models.UniqueIndex(
        "(company_id, utility, COALESCE(band, ''))",
        "A utility and band have one consumption product per company.",
    )

    @api.model
    def _product_for(self, company, utility, band, tariff=None, step=0):
        """The product invoicing ``utility`` consumed in ``band`` (and ladder ``step``) for
        ``company``: the ``tariff``'s own for that band or step if it has one."""
        if tariff and (
            found := self.env["prepaid.tariff.product"]._product_for(tariff, band, step)
        ):
            return found
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
