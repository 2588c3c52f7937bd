-- Finance lists and rebuild on a store of 1M decisions (issues 6 and 7), as measured by
-- `python -m bench.queries`.

-- The audit-trail index tables are only ever looked up by equality. Compared byte-wise ("C"),
-- the projector's sorted inserts and every btree comparison are memcmp instead of the locale's
-- strcoll: the larger part of a rebuild is these inserts (one row or more per decision).
ALTER TABLE finance.account_decisions ALTER COLUMN account_id TYPE text COLLATE "C";
ALTER TABLE finance.ticket_decisions ALTER COLUMN ticket_id TYPE text COLLATE "C";
ALTER TABLE finance.decision_causes ALTER COLUMN cause_id TYPE text COLLATE "C";
ALTER TABLE finance.timer_origins ALTER COLUMN timer_event_id TYPE text COLLATE "C";

-- Each list's filters, then its order (services/finance/lists.py): a filtered page is a range
-- of one index read in order, however many rows the table holds.
CREATE INDEX IF NOT EXISTS disputes_status ON finance.disputes (status, opened_at, ticket_id);
CREATE INDEX IF NOT EXISTS credit_notes_how ON finance.credit_notes (how, issued_at, credit_note_id);
CREATE INDEX IF NOT EXISTS credit_notes_account ON finance.credit_notes (account_id, issued_at, credit_note_id);
CREATE INDEX IF NOT EXISTS arrears_status ON finance.arrears (status, anchor_at, occurrence_id);
CREATE INDEX IF NOT EXISTS arrears_account ON finance.arrears (account_id, anchor_at, occurrence_id);
CREATE INDEX IF NOT EXISTS late_fees_account ON finance.late_fees (account_id, charged_at, decision_id);
CREATE INDEX IF NOT EXISTS suspensions_outcome ON finance.suspensions (outcome, decided_at, request_id);
-- Also the projector's "latest approved suspension of the account" (projection_rules._OPEN_SUSPENSION).
CREATE INDEX IF NOT EXISTS suspensions_account ON finance.suspensions (account_id, decided_at, request_id);
-- Also the projector's "latest open restoration of the account" (RestorationCompleted).
CREATE INDEX IF NOT EXISTS restorations_account ON finance.restorations (account_id, ordered_at, decision_id);
-- The projector finds the restoration a missed deadline belongs to by its timer (RestorationSlaMissed).
CREATE INDEX IF NOT EXISTS restorations_timer ON finance.restorations (timer_event_id);
CREATE INDEX IF NOT EXISTS card_replacements_outcome ON finance.card_replacements (outcome, decided_at, complaint_id);
CREATE INDEX IF NOT EXISTS card_replacements_outlet ON finance.card_replacements (outlet_id, decided_at, complaint_id);
-- The dashboard's funnel counts the occurrences with a delivered reminder: read in order from
-- here instead of sorting every delivered reminder.
CREATE INDEX IF NOT EXISTS reminders_delivered ON finance.reminders (occurrence_id) WHERE delivered;

-- Reminders by channel: count(DISTINCT occurrence_id) per channel sorted every reminder of the
-- channel (25 ms at 28k reminders); grouping by (channel, occurrence) first hashes them instead.
-- Same columns and values (count() of the groups skips a NULL occurrence, as DISTINCT did).
CREATE OR REPLACE VIEW finance.v_reminders_by_channel AS
    SELECT channel, sum(reminders)::int AS reminders, sum(delivered)::int AS delivered,
           count(occurrence_id)::int AS occurrences
    FROM (SELECT channel, occurrence_id, count(*) AS reminders, count(*) FILTER (WHERE delivered) AS delivered
          FROM finance.reminders GROUP BY channel, occurrence_id) per_occurrence
    GROUP BY channel;
