"""Small helpers shared by the suite's add-ons."""

from psycopg2.errors import SerializationFailure


def selection_label(record, field_name, value):
    """The label of ``value`` of the selection field ``field_name`` of ``record``'s model,
    in the language of ``record``'s environment (the value itself when it has none): what a
    message shows instead of a technical value."""
    selection = record._fields[field_name]._description_selection(record.env)
    return dict(selection).get(value, value or "")


def schedule_manager_activity(record, wording):
    """M10: a to-do on ``record`` for a prepaid manager of its company (the administrator
    when the company has none), unless the same one is still open there: work that needs a
    person, scheduled once however often the cause repeats.  ``wording(env)`` gives the
    ``(summary, note)``, worded in the manager's language."""
    record = record.sudo()
    user = _manager_of(record)
    summary, note = wording(record.with_context(lang=user.lang).env)
    if record.activity_ids.filtered(lambda a: a.summary == summary and a.user_id == user):
        return record.env["mail.activity"]
    return record.activity_schedule(
        "mail.mail_activity_data_todo", summary=summary, note=note, user_id=user.id
    )


def close_manager_activities(record, wording, feedback=""):
    """Mark done the open to-dos ``wording`` scheduled on ``record`` (the cause went away)."""
    record = record.sudo()
    user = _manager_of(record)
    summary, _note = wording(record.with_context(lang=user.lang).env)
    activities = record.activity_ids.filtered(lambda a: a.summary == summary)
    if activities:
        activities.action_feedback(feedback=feedback)


def _manager_of(record):
    """The prepaid manager who gets ``record``'s to-dos: the first of its company."""
    managers = record.env.ref("prepaid_meter.group_prepaid_manager").user_ids
    company = record.company_id if "company_id" in record._fields else record.env.company
    user = managers.filtered(lambda u: company in u.company_ids)[:1]
    return user or record.env.ref("base.user_admin")


def again_if_changed(env, work, tries, before_again=None):
    """``work()`` in the current transaction; when another transaction changed its rows
    meanwhile (a serialization failure), the transaction is rolled back and ``work()`` runs
    again on a new snapshot, ``tries`` times at most.  ``before_again()`` runs after each
    rollback; when it returns False, nothing runs again and None is returned.  For the
    scheduled actions that commit batch by batch on rows the desk and other actions write
    too: one such batch would otherwise fail the whole run."""
    for attempt in range(1, tries + 1):
        try:
            return work()
        except SerializationFailure:
            if attempt == tries:
                raise
            env.cr.rollback()
            env.invalidate_all()
            if before_again is not None and not before_again():
                return None
    return None
