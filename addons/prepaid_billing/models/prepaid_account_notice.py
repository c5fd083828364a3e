import json
import logging

from psycopg2.errors import SerializationFailure

from odoo import api, fields, models
from odoo.tools import SQL

from prepaid_core.alarm import Notice

from ..const import NOTICE_BATCH_SIZE

_logger = logging.getLogger(__name__)


class PrepaidAccountNotice(models.Model):
    """B8: a notice to a tenant, queued where it arises and sent by its own scheduled action.

    The alarm evaluation (inside the deduction run, a recharge, a refund...) only inserts a
    row, in its own transaction: a run rolled back queues nothing, a committed one its notices
    once (unique account and key: an alarm crossing is one key). The scheduled action sends
    them in batches, each marked sent in the transaction that posts it, so a sending job
    killed and run again sends each notice once; one that fails is kept, with its reason,
    and said on the account's chatter."""

    _name = "prepaid.account.notice"
    _description = "Prepaid Notice"
    _order = "id desc"

    account_id = fields.Many2one(
        "prepaid.account", required=True, index=True, ondelete="cascade", readonly=True
    )
    key = fields.Char(required=True, readonly=True, help="One alarm crossing, one key.")
    kind = fields.Char(required=True, readonly=True)
    text = fields.Text(string="Notice", readonly=True, help="The notice's English wording.")
    values = fields.Json(readonly=True)
    state = fields.Selection(
        [("queued", "Queued"), ("sent", "Sent"), ("failed", "Failed")],
        string="Status",
        default="queued",
        required=True,
        readonly=True,
    )
    sent_at = fields.Datetime(string="Sent On", readonly=True)
    error = fields.Text(string="Reason Not Sent", readonly=True)

    _account_key_uniq = models.Constraint(
        "UNIQUE(account_id, key)", "A notice is sent once per account."
    )
    _queued_idx = models.Index("(id) WHERE state = 'queued'")

    # === QUEUE === #
    @api.model
    def _queue(self, notices):
        """Queue ``[(account id, Notice)]`` (a key already queued or sent is skipped) and
        ask the sending action to run once this transaction commits; return how many were
        queued."""
        if not notices:
            return 0
        query = SQL(
            """
            INSERT INTO prepaid_account_notice (account_id, key, kind, text, values, state,
                create_uid, create_date, write_uid, write_date)
            SELECT n.account_id, n.key, n.kind, n.text, n.values::jsonb, 'queued',
                   %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM unnest(%(accounts)s::int4[], %(keys)s::varchar[], %(kinds)s::varchar[],
                          %(texts)s::text[], %(values)s::text[])
                   AS n(account_id, key, kind, text, values)
                ON CONFLICT (account_id, key) DO NOTHING
            RETURNING id
            """,
            uid=self.env.uid,
            now=fields.Datetime.now(),
            accounts=[account_id for account_id, _notice in notices],
            keys=[notice.key for _account, notice in notices],
            kinds=[notice.kind for _account, notice in notices],
            texts=[notice.text for _account, notice in notices],
            # amounts (Decimal) as their text: the wording reads them back with float()
            values=[
                json.dumps(notice.values, default=str) if notice.values else None
                for _account, notice in notices
            ],
        )
        queued = len(self.env.execute_query_dict(query))
        self.env["prepaid.account"].invalidate_model(["notice_ids"])
        if queued:
            for cron in self._sending_crons():
                cron._trigger()
        return queued

    @api.model
    def _sending_crons(self):
        """The active scheduled actions sending the notices: one per cron worker that may
        send at the same time (Odoo runs a scheduled action in one worker at a time; a copy
        of it is one more worker, each notice still sent once: see :meth:`_take`)."""
        return self.env["ir.cron"]._copies_of("_cron_send_notices")

    # === SEND === #
    @api.model
    def _cron_send_notices(self, batch_size=NOTICE_BATCH_SIZE):
        return self._send_queued(batch_size=batch_size, commit=True)

    @api.model
    def _send_queued(self, batch_size=NOTICE_BATCH_SIZE, commit=False):
        """Send the queued notices, oldest first, ``batch_size`` at a time; return how many
        were sent or failed. With ``commit``, each batch is committed with its messages
        (a killed run leaves the batch queued, its messages undone, for the next run), and
        a notice whose SMS went out at once as well (an SMS cannot be undone)."""
        cron = self.env["ir.cron"]
        if commit:
            cron._commit_progress(0, remaining=self._queued_count())
        done, last_id = 0, 0
        while batch := self._queued_batch(batch_size, last_id):
            last_id, pending = batch[-1].id, 0
            for notice in batch:
                if not notice._take():
                    continue  # another run has it, or sent it since the batch was read
                texted = notice._send()
                done, pending = done + 1, pending + 1
                if commit and texted:
                    if not cron._commit_progress(pending):
                        return done
                    pending = 0
            if commit and not cron._commit_progress(pending):
                return done
        return done

    @api.model
    def _queued_batch(self, batch_size, after_id):
        """The next ``batch_size`` queued notices after ``after_id``, in id order."""
        self.flush_model(["state"])
        query = SQL(
            """
            SELECT id FROM prepaid_account_notice
             WHERE state = 'queued' AND id > %s ORDER BY id LIMIT %s
            """,
            after_id,
            batch_size,
        )
        ids = [row["id"] for row in self.env.execute_query_dict(query)]
        # the accounts and their partners of the whole batch are read together
        return self.sudo().browse(ids).with_prefetch(tuple(ids))

    @api.model
    def _queued_count(self):
        self.flush_model(["state"])
        query = SQL("SELECT count(*) AS count FROM prepaid_account_notice WHERE state = 'queued'")
        return self.env.execute_query_dict(query)[0]["count"]

    def _take(self):
        """Lock this notice for this transaction if it is still queued (two runs never
        send one notice: the second finds it locked, or sent). A notice another run sent
        and committed after this transaction began cannot be locked here (PostgreSQL
        refuses to serialize): it is passed over, not a failure of the whole run."""
        self.ensure_one()
        self.flush_model(["state"])
        query = SQL(
            """
            SELECT id FROM prepaid_account_notice
             WHERE id = %s AND state = 'queued' FOR UPDATE SKIP LOCKED
            """,
            self.id,
        )
        try:
            with self.env.cr.savepoint():
                self.env.cr.execute(query, log_exceptions=False)
                return bool(self.env.cr.fetchall())
        except SerializationFailure:
            return False

    def _send(self):
        """Deliver this notice through its account (mail, SMS, the tenant's channels); a
        failure marks it failed, with its reason on the account. True when an SMS went out."""
        self.ensure_one()
        notice = Notice(self.kind, self.key, self.text or "", self.values or None)
        try:
            with self.env.cr.savepoint():
                texted = self.account_id._deliver_notice(notice)
        except Exception as exc:  # any failure is kept on the notice
            _logger.warning(
                "Notice %s of account %s not sent", self.key, self.account_id.id, exc_info=True
            )
            self.write({"state": "failed", "error": str(exc) or type(exc).__name__})
            self.account_id.message_post(
                body=self.env._(
                    "The notice could not be sent (%(error)s): %(text)s",
                    error=self.error,
                    text=self.text,
                ),
                subtype_xmlid="mail.mt_note",
            )
            return False
        self.write({"state": "sent", "sent_at": fields.Datetime.now()})
        return bool(texted)
