"""B8: the notices an account had sent before notices were queued (the keys the account kept,
``notice_keys``) become sent notices of the queue, so that none of them is sent again."""


def migrate(cr, version):
    cr.execute(
        """
        SELECT 1 FROM information_schema.columns
         WHERE table_name = 'prepaid_account' AND column_name = 'notice_keys'
        """
    )
    if not cr.fetchone():
        return
    # a key is "[meter id:]kind#crossing" (or "kind@time"): its kind is what precedes # or @
    cr.execute(
        r"""
        INSERT INTO prepaid_account_notice (account_id, key, kind, state, sent_at,
                                            create_uid, create_date, write_uid, write_date)
        SELECT a.id, k.key,
               regexp_replace(regexp_replace(k.key, '^\d+:', ''), '[#@].*$', ''),
               'sent', a.write_date, 1, now() at time zone 'UTC', 1, now() at time zone 'UTC'
          FROM prepaid_account a
         CROSS JOIN LATERAL jsonb_array_elements_text(a.notice_keys::jsonb) AS k(key)
         WHERE jsonb_typeof(a.notice_keys::jsonb) = 'array'
            ON CONFLICT (account_id, key) DO NOTHING
        """
    )
