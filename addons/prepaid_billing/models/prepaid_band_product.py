from odoo import fields, models

from ..const import BANDS


class PrepaidBandProduct(models.AbstractModel):
    """B9: a product invoicing consumption of a time-of-use band (empty: every band without
    a line of its own), whose sales taxes say whether the prices include them: the lines of
    the company's consumption products and of a tariff's own."""

    _name = "prepaid.band.product.mixin"
    _description = "Product Invoicing a Band"

    band = fields.Selection(BANDS, help="Empty: every band without a product of its own.")
    product_id = fields.Many2one(
        "product.product", required=True, check_company=True, domain=[("sale_ok", "=", True)]
    )
    tax_ids = fields.Many2many(related="product_id.taxes_id", string="Taxes")
