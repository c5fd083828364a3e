import base64
import time

from odoo import api, fields, models
from odoo.exceptions import UserError

from prepaid_core.onboarding import check_workbook, example_workbook, read_workbook

from .prepaid_site_workbook_loader import SiteWorkbookLoader, problem_values

EXAMPLE_FILENAME = "site_workbook_example.xlsx"


class PrepaidSiteWorkbook(models.TransientModel):
    """M9: a whole site from one Excel workbook (sites, buildings, units, gateways and
    their buses, meters, tenants and their tenancies), created in one transaction or not
    at all; every refused row is listed with its sheet, row number and column."""

    _name = "prepaid.site.workbook"
    _description = "Site Workbook Import"

    file = fields.Binary(string="Workbook", help="An .xlsx file laid out as the example.")
    filename = fields.Char()
    state = fields.Selection(
        [("draft", "To Import"), ("failed", "Refused"), ("done", "Imported")],
        default="draft",
        required=True,
    )
    error_ids = fields.One2many("prepaid.site.workbook.error", "workbook_id", string="Errors")
    error_count = fields.Integer(compute="_compute_error_count")
    summary = fields.Text(readonly=True)
    example_file = fields.Binary(compute="_compute_example_file", string="Example Workbook")
    example_filename = fields.Char(default=EXAMPLE_FILENAME)

    @api.depends("error_ids")
    def _compute_error_count(self):
        for wizard in self:
            wizard.error_count = len(wizard.error_ids)

    def _compute_example_file(self):
        example = base64.b64encode(example_workbook())
        for wizard in self:
            wizard.example_file = example

    def action_download_example(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/example_file/{EXAMPLE_FILENAME}"
            "?download=true",
            "target": "download",
        }

    def action_import(self):
        """Read, check and create everything; a single problem leaves nothing created.
        A workbook of more rows than the system parameter says is checked without
        creating anything and, when nothing is wrong, queued and imported in the
        background instead (``prepaid.site.import``)."""
        self.ensure_one()
        if not self.file:
            raise UserError(self.env._("Choose the workbook to import."))
        started = time.monotonic()
        data = base64.b64decode(self.file)
        workbook = read_workbook(data)
        problems, counts = workbook.problems, {}
        Job = self.env["prepaid.site.import"]
        if not problems and workbook.row_count > Job._background_rows():
            problems = self._check(workbook)
            if not problems:
                return Job._queue(self.filename, data, workbook).action_open()
        elif not problems:
            problems, counts = self._load(workbook)
        self.error_ids.unlink()
        if problems:
            self._record_problems(problems)
        else:
            self.write(
                {"state": "done", "summary": self._summary(counts, time.monotonic() - started)}
            )
        return self._reopen()

    def _check(self, workbook):
        """The problems found before creating anything (references, numbers, dates,
        choices) in a workbook to import in the background."""
        loader = SiteWorkbookLoader(self.env, workbook)
        loader.load_existing()
        return check_workbook(workbook, loader.known())

    def _load(self, workbook):
        """The loader run in a savepoint, rolled back when it found any problem."""
        loader = SiteWorkbookLoader(self.env, workbook)
        savepoint = self.env.cr.savepoint()
        try:
            problems = loader.load()
        except Exception:
            savepoint.close(rollback=True)
            raise
        savepoint.close(rollback=bool(problems))
        return problems, loader.counts

    def _record_problems(self, problems):
        self.write(
            {
                "state": "failed",
                "summary": self.env._(
                    "Nothing was imported: %(count)s errors to correct in the workbook.",
                    count=len(problems),
                ),
                "error_ids": [
                    fields.Command.create(problem_values(self.env, problem)) for problem in problems
                ],
            }
        )

    def _summary(self, counts, seconds):
        lines = [
            self.env._("%(count)s rows of sheet %(sheet)s", count=count, sheet=sheet)
            for sheet, count in counts.items()
        ]
        lines.append(self.env._("imported in %(seconds).1f s", seconds=seconds))
        return "\n".join(lines)

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "name": self.env._("Import Site Workbook"),
        }


class PrepaidSiteWorkbookError(models.TransientModel):
    """One problem of a refused site workbook: where it is and what is wrong."""

    _name = "prepaid.site.workbook.error"
    _description = "Site Workbook Error"
    _order = "id"

    workbook_id = fields.Many2one("prepaid.site.workbook", required=True, ondelete="cascade")
    sheet = fields.Char()
    row = fields.Integer()
    column = fields.Char()
    message = fields.Text()
