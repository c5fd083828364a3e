from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    prepaid_accounting = fields.Boolean(related="company_id.prepaid_accounting", readonly=False)
    prepaid_journal_cash_id = fields.Many2one(
        related="company_id.prepaid_journal_cash_id", readonly=False
    )
    prepaid_journal_bank_id = fields.Many2one(
        related="company_id.prepaid_journal_bank_id", readonly=False
    )
    prepaid_journal_card_id = fields.Many2one(
        related="company_id.prepaid_journal_card_id", readonly=False
    )
    prepaid_journal_online_id = fields.Many2one(
        related="company_id.prepaid_journal_online_id", readonly=False
    )
    prepaid_sale_journal_id = fields.Many2one(
        related="company_id.prepaid_sale_journal_id", readonly=False
    )
    prepaid_meter_balance_tolerance = fields.Float(
        related="company_id.prepaid_meter_balance_tolerance", readonly=False
    )

    def action_prepaid_consumption_products(self):
        return self.env["ir.actions.act_window"]._for_xml_id(
            "prepaid_billing.prepaid_consumption_product_action"
        )
