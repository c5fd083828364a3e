"""M9: a large site workbook imported in the background, a batch at a time.

The wizard checks the file at once and, above a number of rows (system parameter
``prepaid_meter.site_import_background_rows``), queues the workbook here instead of
creating thousands of records in one request.  A scheduled action then creates the rows
batch after batch with the wizard's own loader; each batch commits its records together
with the count of rows done, so a run that is stopped loses only its current batch and the
next run starts after the last one committed: every row is created exactly once.  A row
refused by the models' rules is listed with its sheet, row and column and the other rows
are imported; the user who queued the import is told when it is over.
"""

import logging

from odoo import api, fields, models
from odoo.tools import SQL

from prepaid_core.onboarding import batches, read_workbook

from ..wizards.prepaid_site_workbook_loader import SiteWorkbookLoader, problem_values

_logger = logging.getLogger(__name__)

#: system parameter: more rows than this and the workbook is imported in the background
BACKGROUND_ROWS_PARAM = "prepaid_meter.site_import_background_rows"
BACKGROUND_ROWS = 500
#: system parameter: the rows created and committed at a time
BATCH_ROWS_PARAM = "prepaid_meter.site_import_batch_rows"
BATCH_ROWS = 500


class PrepaidSiteImport(models.Model):
    """A site workbook being imported in the background: its file, how far it got, the
    rows refused and who queued it."""

    _name = "prepaid.site.import"
    _description = "Site Workbook Import Job"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"

    name = fields.Char(required=True, readonly=True)
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, default=lambda self: self.env.company
    )
    user_id = fields.Many2one(
        "res.users",
        string="Queued By",
        required=True,
        readonly=True,
        default=lambda self: self.env.user,
    )
    attachment_id = fields.Many2one("ir.attachment", string="Workbook", readonly=True)
    state = fields.Selection(
        [
            ("queued", "Queued"),
            ("running", "Importing"),
            ("done", "Imported"),
            ("failed", "Failed"),
        ],
        default="queued",
        required=True,
        readonly=True,
        tracking=True,
    )
    rows_total = fields.Integer(string="Rows", readonly=True)
    rows_done = fields.Integer(readonly=True)
    progress = fields.Float(compute="_compute_progress", help="Share of the rows done (%).")
    date_started = fields.Datetime(string="Started", readonly=True)
    date_finished = fields.Datetime(string="Finished", readonly=True)
    error_ids = fields.One2many(
        "prepaid.site.import.error", "import_id", string="Refused Rows", readonly=True
    )
    error_count = fields.Integer(compute="_compute_error_count", string="Rows Refused")
    failure = fields.Text(readonly=True, help="Why the import stopped.")

    @api.depends("rows_done", "rows_total")
    def _compute_progress(self):
        for job in self:
            job.progress = 100.0 * job.rows_done / job.rows_total if job.rows_total else 0.0

    @api.depends("error_ids")
    def _compute_error_count(self):
        counts = dict(
            self.env["prepaid.site.import.error"]._read_group(
                [("import_id", "in", self.ids)], ["import_id"], ["__count"]
            )
        )
        for job in self:
            job.error_count = counts.get(job, 0)

    # === QUEUEING === #
    @api.model
    def _background_rows(self):
        """More rows than this and a workbook is imported in the background."""
        param = self.env["ir.config_parameter"].sudo().get_param(BACKGROUND_ROWS_PARAM)
        return int(param or BACKGROUND_ROWS)

    @api.model
    def _queue(self, filename, data, workbook):
        """A job for the workbook ``data`` (already read and checked as ``workbook``),
        its file attached, the scheduled action woken up."""
        job = self.create(
            {
                "name": filename or self.env._("Site workbook"),
                "rows_total": workbook.row_count,
            }
        )
        job.attachment_id = self.env["ir.attachment"].create(
            {
                "name": filename or "site_workbook.xlsx",
                "raw": data,
                "res_model": self._name,
                "res_id": job.id,
            }
        )
        job.message_post(
            body=self.env._(
                "%(rows)s rows queued for import in the background.", rows=workbook.row_count
            ),
            attachment_ids=job.attachment_id.ids,
        )
        self.env.ref("prepaid_meter.ir_cron_prepaid_site_import")._trigger()
        return job

    def action_open(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
            "name": self.name,
        }

    # === THE SCHEDULED ACTION === #
    @api.model
    def _cron_import(self):
        """Every queued or interrupted import, oldest first; a failed one is marked as
        such and the others go on."""
        for job in self.search([("state", "in", ("queued", "running"))], order="id"):
            try:
                finished = job._import_batches(commit=True)
            except Exception as error:  # any error stops only this job
                _logger.exception("site import %s stopped", job.id)
                self.env.cr.rollback()
                job._fail(error)
                self.env["ir.cron"]._commit_progress(0)
                continue
            if not finished:
                # out of time: the scheduled action runs again, from the rows committed
                self.env.ref("prepaid_meter.ir_cron_prepaid_site_import")._trigger()
                return
            self.env["ir.cron"]._commit_progress(0)  # the job's end, before the next job

    def _lock(self):
        """Whether this job's row could be locked until the next commit: the scheduler
        never runs its action twice at once, this keeps any other caller out of the batch
        being created (a killed run's lock ends with its connection)."""
        self.env.cr.execute(
            SQL(
                "SELECT id FROM %s WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED",
                SQL.identifier(self._table),
                self.id,
            )
        )
        return bool(self.env.cr.fetchall())

    def _import_batches(self, batch_size=None, max_batches=None, commit=False):
        """Create the rows after those done, batch after batch (each batch committed with
        the rows done when ``commit``); stop after ``max_batches``.  True when the job
        is over (or over already, or imported by another run now), False when the run
        stopped before its end."""
        self.ensure_one()
        if not self._lock() or self.state in ("done", "failed"):
            return True
        param = self.env["ir.config_parameter"].sudo().get_param(BATCH_ROWS_PARAM)
        batch_size = batch_size or int(param or BATCH_ROWS)
        job = self.with_user(self.user_id).with_company(self.company_id)
        job = job.with_context(lang=self.user_id.lang)
        workbook = read_workbook(self.attachment_id.raw)
        loader = SiteWorkbookLoader(job.env, workbook)
        loader.load_existing()
        if self.state == "queued":
            self.write({"state": "running", "date_started": fields.Datetime.now()})
        for count, batch in enumerate(batches(workbook, batch_size, self.rows_done), 1):
            job._import_batch(loader, batch)
            left = self.rows_total - self.rows_done
            if commit and not self.env["ir.cron"]._commit_progress(len(batch.rows), remaining=left):
                return False
            if max_batches and count >= max_batches:
                return not left and self._finish()
        return self._finish()

    def _import_batch(self, loader, batch):
        """One batch's records and refused rows, with the rows done, in one transaction."""
        known = len(loader.problems)
        loader.load_rows(batch.sheet, batch.rows)
        self.sudo().write(
            {
                "rows_done": batch.done + len(batch.rows),
                "error_ids": [
                    fields.Command.create(problem_values(self.env, problem))
                    for problem in loader.problems[known:]
                ],
            }
        )

    # === THE END === #
    def _finish(self):
        """Done: the summary in the chatter, the user told (a to-do when rows were refused)."""
        self.write({"state": "done", "date_finished": fields.Datetime.now()})
        body = self.env._(
            "Import finished: %(done)s rows read, %(errors)s refused.",
            done=self.rows_done,
            errors=self.error_count,
        )
        self._tell_user(body, todo=bool(self.error_count))
        return True

    def _fail(self, error):
        """Stopped by an unexpected error: what was committed stays, the rest is not done."""
        self.write(
            {"state": "failed", "date_finished": fields.Datetime.now(), "failure": str(error)}
        )
        body = self.env._(
            "Import stopped after %(done)s of %(total)s rows: %(error)s",
            done=self.rows_done,
            total=self.rows_total,
            error=str(error),
        )
        self._tell_user(body, todo=True)

    def _tell_user(self, body, todo):
        """``body`` in the chatter, notified to the user who queued the import; a to-do
        for them when something is left to correct."""
        self.message_post(
            body=body,
            partner_ids=self.user_id.partner_id.ids,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        if todo:
            self.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Correct the rows refused by the site import"),
                note=body,
                user_id=self.user_id.id,
            )


class PrepaidSiteImportError(models.Model):
    """A row of a background import refused by the models' rules: where and why."""

    _name = "prepaid.site.import.error"
    _description = "Site Workbook Import Refused Row"
    _order = "id"

    import_id = fields.Many2one(
        "prepaid.site.import", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="import_id.company_id", store=True)
    sheet = fields.Char()
    row = fields.Integer()
    column = fields.Char()
    message = fields.Text()
