-- Read-only views over the finance projections, for the API and for BI tools (issue 6).
-- Ages are measured against the checkpoint's as_of (the latest business time projected), not
-- the wall clock, so the same log always gives the same numbers (A.REPLAY).
CREATE OR REPLACE VIEW finance.v_as_of AS
    SELECT global_position, as_of FROM finance.checkpoint WHERE projector = 'finance';

CREATE OR REPLACE VIEW finance.v_disputes AS
    SELECT d.ticket_id, d.account_id, d.bill_id, d.cycle, d.channel, d.status, d.owner_id, d.pending_owner_id,
           d.opened_at,
           greatest(0, floor(extract(epoch FROM (coalesce(d.resolved_at, d.ended_at, c.as_of) - d.opened_at)) / 86400))::int
               AS age_days,
           d.disputed_minor, d.held_minor, d.reply_due_at, d.replied_at, d.replied_late, d.reply_overdue,
           d.overdue_at, d.resolution, d.credit_minor, d.resolved_at, d.ended_at
    FROM finance.disputes d CROSS JOIN finance.v_as_of c;

CREATE OR REPLACE VIEW finance.v_credit_notes AS
    SELECT credit_note_id, ticket_id, account_id, bill_id, cycle, amount_minor, currency, how, issued_at, decision_id
    FROM finance.credit_notes;

-- Buckets: 0-30, 31-60, 61-90, 90+ whole days past the occurrence anchor (services/finance/aging.py).
CREATE OR REPLACE VIEW finance.v_arrears AS
    SELECT a.occurrence_id, a.account_id, a.bill_id, a.anchor_at, a.status, a.overdue_minor, a.held_minor,
           a.offence_count, x.age_days,
           CASE WHEN x.age_days <= 30 THEN '0-30' WHEN x.age_days <= 60 THEN '31-60'
                WHEN x.age_days <= 90 THEN '61-90' ELSE '90+' END AS aging_bucket,
           (SELECT count(*) FROM finance.reminders r WHERE r.occurrence_id = a.occurrence_id)::int AS reminders_due,
           (SELECT count(*) FROM finance.reminders r WHERE r.occurrence_id = a.occurrence_id AND r.delivered)::int
               AS reminders_delivered,
           a.suspension_requested_at, a.closed_at
    FROM finance.arrears a CROSS JOIN finance.v_as_of c
    CROSS JOIN LATERAL (SELECT greatest(0, floor(extract(epoch FROM (coalesce(a.closed_at, c.as_of) - a.anchor_at)) / 86400))::int
                        AS age_days) x;

CREATE OR REPLACE VIEW finance.v_arrears_aging AS
    SELECT b.bucket, count(a.occurrence_id)::int AS occurrences, coalesce(sum(a.overdue_minor), 0)::bigint AS overdue_minor
    FROM (VALUES (1, '0-30'), (2, '31-60'), (3, '61-90'), (4, '90+')) AS b(ord, bucket)
    LEFT JOIN finance.v_arrears a ON a.aging_bucket = b.bucket AND a.status = 'open'
    GROUP BY b.ord, b.bucket ORDER BY b.ord;

CREATE OR REPLACE VIEW finance.v_reminders_by_channel AS
    SELECT channel, count(*)::int AS reminders, count(*) FILTER (WHERE delivered)::int AS delivered,
           count(DISTINCT occurrence_id)::int AS occurrences
    FROM finance.reminders GROUP BY channel;

CREATE OR REPLACE VIEW finance.v_late_fees AS
    SELECT decision_id, occurrence_id, account_id, bill_id, fee_minor, total_fee_minor, days_overdue, charged_at
    FROM finance.late_fees;

CREATE OR REPLACE VIEW finance.v_suspensions AS
    SELECT request_id, decision_id, account_id, bill_id, outcome, reason_codes, decided_at, overdue_minor,
           undisputed_minor, late_fee_minor, restoration_ordered_at, termination_eligible_at
    FROM finance.suspensions;

-- CP4.RESTORE_48H: breached when the deadline fired with no completion, or the completion was late.
CREATE OR REPLACE VIEW finance.v_restorations AS
    SELECT decision_id, account_id, payment_id, ordered_at, restore_by, sla_missed_at, completed_at, completion,
           (sla_missed_at IS NOT NULL OR completion = 'late') AS sla_missed
    FROM finance.restorations;

CREATE OR REPLACE VIEW finance.v_card_replacements AS
    SELECT complaint_id, outlet_id, outcome, old_card_serial, new_card_serial, transferred_minor, decided_at, decision_id
    FROM finance.card_replacements;

CREATE OR REPLACE VIEW finance.v_card_replacements_by_outlet AS
    SELECT outlet_id,
           count(*) FILTER (WHERE outcome = 'replaced')::int AS replaced,
           count(*) FILTER (WHERE outcome = 'escalated')::int AS escalated,
           count(*) FILTER (WHERE outcome = 'referred')::int AS referred,
           coalesce(sum(transferred_minor), 0)::bigint AS transferred_minor
    FROM finance.card_replacements GROUP BY outlet_id;

-- BI tools: a NOLOGIN role that can read the views and nothing else. A login role for a tool
-- is created by the DBA and granted wuguan_reader. Views run with their owner's rights, so the
-- reader needs no right on the tables underneath, and none on `events`.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wuguan_reader') THEN
        CREATE ROLE wuguan_reader NOLOGIN;
    END IF;
    BEGIN
        EXECUTE format('GRANT wuguan_reader TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'could not grant wuguan_reader to %: %', current_user, SQLERRM;
    END;
END $$;
REVOKE ALL ON ALL TABLES IN SCHEMA finance FROM wuguan_reader;
REVOKE ALL ON events FROM wuguan_reader;
GRANT USAGE ON SCHEMA finance TO wuguan_reader;
GRANT SELECT ON finance.v_as_of, finance.v_disputes, finance.v_credit_notes, finance.v_arrears,
    finance.v_arrears_aging, finance.v_reminders_by_channel, finance.v_late_fees, finance.v_suspensions,
    finance.v_restorations, finance.v_card_replacements, finance.v_card_replacements_by_outlet TO wuguan_reader;
GRANT SELECT ON finance.v_as_of, finance.v_disputes, finance.v_credit_notes, finance.v_arrears,
    finance.v_arrears_aging, finance.v_reminders_by_channel, finance.v_late_fees, finance.v_suspensions,
    finance.v_restorations, finance.v_card_replacements, finance.v_card_replacements_by_outlet TO wuguan_finance;
