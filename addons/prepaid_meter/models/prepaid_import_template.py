"""M9: the templates Odoo's import offers for the records of a site.

Each template is a small CSV file in ``static/xls`` whose columns are field names, with
external IDs (``id``, ``site_id/id``, ...) tying a building to its site, a unit to its
building and a meter to its unit and gateway, so that the files of one site are imported
one after the other without any name being ambiguous.  The models' own constraints name
the refused rows.
"""

from odoo import api, models


class PrepaidImportTemplate(models.AbstractModel):
    """The import template of a model: ``static/xls/<its table>.csv``."""

    _name = "prepaid.import.template"
    _description = "Prepaid Import Template"

    @api.model
    def get_import_templates(self):
        return [
            {
                "label": self.env._("Import Template for %s", self._description),
                "template": f"/prepaid_meter/static/xls/{self._table}.csv",
            }
        ]


class PrepaidSite(models.Model):
    _name = "prepaid.site"
    _inherit = ["prepaid.site", "prepaid.import.template"]


class PrepaidBuilding(models.Model):
    _name = "prepaid.building"
    _inherit = ["prepaid.building", "prepaid.import.template"]


class PrepaidUnit(models.Model):
    _name = "prepaid.unit"
    _inherit = ["prepaid.unit", "prepaid.import.template"]


class PrepaidGateway(models.Model):
    _name = "prepaid.gateway"
    _inherit = ["prepaid.gateway", "prepaid.import.template"]


class PrepaidMeter(models.Model):
    _name = "prepaid.meter"
    _inherit = ["prepaid.meter", "prepaid.import.template"]


class PrepaidTenancy(models.Model):
    _name = "prepaid.tenancy"
    _inherit = ["prepaid.tenancy", "prepaid.import.template"]


class PrepaidMeterModel(models.Model):
    """A meter model is named in files by its code as well as its name."""

    _inherit = "prepaid.meter.model"
    _rec_names_search = ["name", "code"]
