import dataclasses
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from prepaid_core import charges
from prepaid_core import tariff as engine
from prepaid_core.tariff.package import with_included_quantity

CHARGE_TYPES = [(kind, charges.CHARGE_TYPE_LABELS[kind]) for kind in charges.CHARGE_TYPES]


class PrepaidTariffCharge(models.Model):
    """B14: a fixed charge of a tariff, charged to each open account on the tariff once per
    monthly cycle from the tariff's billing day (``prepaid.account._cron_fixed_charges``).

    A service fee is its price each cycle; a demand charge its price per kVA/kW of the
    account's contracted capacity; a monthly package its fee, and its included quantity
    is free in the tariff's pricing (:meth:`prepaid.tariff._engine_definition`). Taxes
    come from the product: the ledger line is the price with them."""

    _name = "prepaid.tariff.charge"
    _description = "Tariff Fixed Charge"
    _order = "tariff_id, sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    tariff_id = fields.Many2one(
        "prepaid.tariff", required=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="tariff_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    charge_type = fields.Selection(CHARGE_TYPES, string="Type", required=True)
    price = fields.Float(
        digits=(16, 4),
        required=True,
        help="Each cycle; per kVA/kW of contracted capacity for a demand charge. Taxes of the "
        "product are added.",
    )
    product_id = fields.Many2one(
        "product.product",
        check_company=True,
        help="Its customer taxes are added to the price.",
    )
    included_qty = fields.Float(
        string="Included Quantity",
        digits=(16, 6),
        help="Monthly package: kWh or m³ per cycle and meter priced at zero.",
    )
    overage_price = fields.Float(
        string="Price Beyond",
        digits=(16, 6),
        help="Monthly package: the price per kWh or m³ beyond the included quantity; empty "
        "for the tariff's own prices.",
    )
    date_start = fields.Date(
        string="Charged From",
        required=True,
        default=fields.Date.context_today,
        help="No cycle before this day is charged.",
    )
    line_ids = fields.One2many("prepaid.account.line", "charge_id", string="Ledger Lines")

    @api.constrains("price", "included_qty", "overage_price")
    def _check_figures(self):
        for charge in self:
            if charge.price < 0 or charge.included_qty < 0 or charge.overage_price < 0:
                raise ValidationError(
                    self.env._("Charge %(name)s: figures cannot be negative.", name=charge.name)
                )

    @api.constrains("charge_type", "included_qty", "tariff_id", "active")
    def _check_package(self):
        for tariff in self.filtered(lambda c: c.charge_type == "package").tariff_id:
            packages = tariff.charge_ids.filtered(lambda c: c.charge_type == "package")
            if len(packages) > 1:
                raise ValidationError(
                    self.env._("Tariff %(tariff)s has one monthly package.", tariff=tariff.name)
                )
            if packages.included_qty <= 0:
                raise ValidationError(self.env._("A monthly package needs an included quantity."))
            if tariff.cycle_period != "monthly":
                raise ValidationError(
                    self.env._(
                        "Tariff %(tariff)s: a monthly package needs a monthly settlement cycle.",
                        tariff=tariff.name,
                    )
                )
            tariff._engine_definition()  # a ladder with room for the free step

    def _package_rule(self):
        """``(included, overage or None)`` of this package as exact decimals."""
        self.ensure_one()
        included = Decimal(f"{self.included_qty:.6f}")
        overage = Decimal(f"{self.overage_price:.6f}") if self.overage_price else None
        return included, overage

    def _gross(self, amount, partner):
        """``amount`` (Decimal, 4 decimals) with the product's customer taxes added
        (a tax included in the price adds nothing)."""
        self.ensure_one()
        company = self.company_id
        taxes = self.product_id.taxes_id._filter_taxes_by_company(company)
        if not taxes or not amount:
            return amount
        result = taxes.compute_all(
            float(amount),
            currency=company.currency_id,
            product=self.product_id,
            partner=partner,
        )
        return Decimal(f"{result['total_included']:.4f}")


class PrepaidTariff(models.Model):
    _inherit = "prepaid.tariff"

    charge_ids = fields.One2many(
        "prepaid.tariff.charge", "tariff_id", string="Fixed Charges", context={"active_test": False}
    )

    @api.constrains("cycle_period")
    def _check_package_cycle(self):
        self.charge_ids._check_package()

    def _engine_definition(self):
        """B14: with a monthly package, each version prices the included quantity of a
        cycle at zero (:func:`prepaid_core.tariff.package.with_included_quantity`)."""
        definition = super()._engine_definition()
        package = self.charge_ids.filtered(lambda c: c.active and c.charge_type == "package")[:1]
        if not package:
            return definition
        included, overage = package._package_rule()
        try:
            versions = tuple(
                with_included_quantity(version, included, overage)
                for version in definition.versions
            )
            return dataclasses.replace(definition, versions=versions)
        except engine.TariffError as exc:
            raise ValidationError(
                self.env._("Tariff %(tariff)s: %(error)s", tariff=self.name, error=exc)
            ) from exc
