import io
from decimal import Decimal

import xlsxwriter

from odoo import api, fields, models

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class PrepaidReportXlsx(models.AbstractModel):
    """B11: every report of the report centre exports to Excel (xlsxwriter): a header row,
    one row per record, and a totals row for the columns that add up."""

    _name = "prepaid.report.xlsx"
    _description = "Excel Export of Prepaid Reports"

    @api.model
    def _cell(self, record, field):
        value = record[field.name]
        if field.type == "many2one":
            return value.display_name or ""
        if field.type in ("one2many", "many2many"):
            return ", ".join(value.mapped("display_name"))
        if field.type == "selection":
            return dict(field._description_selection(self.env)).get(value, "")
        if field.type == "datetime":
            return (
                fields.Datetime.to_string(fields.Datetime.context_timestamp(record, value))[:16]
                if value
                else ""
            )
        if field.type == "date":
            return fields.Date.to_string(value) if value else ""
        if field.type in ("float", "monetary", "integer"):
            return value or 0
        if field.type == "boolean":
            return bool(value)
        return value or ""

    @api.model
    def _export(self, records, field_names, title):
        """The workbook of ``records`` (columns ``field_names``) as bytes."""
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet(title[:31])
        bold = workbook.add_format({"bold": True})
        number = workbook.add_format({"num_format": "#,##0.00##"})
        total_format = workbook.add_format({"bold": True, "num_format": "#,##0.00##", "top": 1})
        columns = [records._fields[name] for name in field_names]
        summed = {
            col: Decimal(0)
            for col, field in enumerate(columns)
            if field.type in ("float", "monetary", "integer") and field.aggregator == "sum"
        }
        for col, field in enumerate(columns):
            sheet.write(0, col, field._description_string(self.env), bold)
            sheet.set_column(col, col, 14 if field.type in ("float", "monetary") else 22)
        for row, record in enumerate(records, 1):
            for col, field in enumerate(columns):
                value = self._cell(record, field)
                if col in summed:
                    summed[col] += Decimal(str(value))
                if field.type in ("float", "monetary"):
                    sheet.write_number(row, col, value, number)
                else:
                    sheet.write(row, col, value)
        total_row = len(records) + 1
        sheet.write(total_row, 0, self.env._("Total"), bold)
        for col, total in summed.items():
            sheet.write_number(total_row, col, float(total), total_format)
        sheet.freeze_panes(1, 0)
        workbook.close()
        return buffer.getvalue()

    @api.model
    def _export_action(self, records, field_names, title):
        """Export ``records`` and download the file."""
        records.check_access("read")
        attachment = self.env["ir.attachment"].create(
            {
                "name": f"{title} {fields.Date.context_today(self)}.xlsx",
                "raw": self._export(records, field_names, title),
                "mimetype": XLSX_MIMETYPE,
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{attachment.id}?download=true",
            "target": "self",
        }
