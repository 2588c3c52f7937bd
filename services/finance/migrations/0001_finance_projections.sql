-- Finance projections (issue 6): tables rebuilt from the event log by the catch-up projector
-- (services/finance/projector.py). Nothing here is a source of truth: `wuguan projections
-- rebuild` truncates every table below and replays the log from position 0 (A.REPLAY).
-- Ages are not stored: they depend on the as-of time, computed by views and the API.
CREATE SCHEMA IF NOT EXISTS finance;

-- How far the projector has read the log, written in the same transaction as the rows it
-- produced. as_of = the latest business time projected (the "now" of aging, never the wall clock).
CREATE TABLE IF NOT EXISTS finance.checkpoint (
    projector       text        PRIMARY KEY,
    global_position bigint      NOT NULL DEFAULT 0,
    as_of           timestamptz
);
INSERT INTO finance.checkpoint (projector) VALUES ('finance') ON CONFLICT DO NOTHING;

-- D.OPEN, D.HOLD, D.REPLY_15D, D.RESOLVE: one row per ticket.
CREATE TABLE IF NOT EXISTS finance.disputes (
    ticket_id         text        PRIMARY KEY,
    account_id        text        NOT NULL,
    bill_id           text,
    cycle             text,
    channel           text,
    status            text        NOT NULL,   -- TMF621: acknowledged | resolved | closed | cancelled
    owner_id          text,
    pending_owner_id  text,
    opened_at         timestamptz NOT NULL,
    disputed_minor    bigint      NOT NULL,
    held_minor        bigint      NOT NULL,   -- on hold while acknowledged (D.HOLD), 0 after
    reply_due_at      timestamptz,
    replied_at        timestamptz,
    replied_late      boolean     NOT NULL DEFAULT false,
    reply_overdue     boolean     NOT NULL DEFAULT false,
    overdue_at        timestamptz,
    resolution        text,
    credit_minor      bigint      NOT NULL DEFAULT 0,
    resolved_at       timestamptz,
    ended_at          timestamptz,            -- closed or cancelled
    last_position     bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS disputes_account ON finance.disputes (account_id, opened_at);
CREATE INDEX IF NOT EXISTS disputes_order ON finance.disputes (opened_at, ticket_id);

CREATE TABLE IF NOT EXISTS finance.credit_notes (
    credit_note_id text        PRIMARY KEY,
    ticket_id      text,
    account_id     text        NOT NULL,
    bill_id        text,
    cycle          text,
    amount_minor   bigint      NOT NULL,
    currency       text        NOT NULL,
    how            text,                       -- automatic (D.AUTO_CREDIT) | manual (D.RESOLVE)
    issued_at      timestamptz NOT NULL,
    decision_id    text        NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_notes_order ON finance.credit_notes (issued_at, credit_note_id);

-- DN.OCCURRENCE: arrears occurrences; aging buckets are by anchor (the bill's due date).
CREATE TABLE IF NOT EXISTS finance.arrears (
    occurrence_id   text        PRIMARY KEY,
    account_id      text        NOT NULL,
    bill_id         text        NOT NULL,
    anchor_at       timestamptz NOT NULL,
    status          text        NOT NULL,      -- open | closed | withdrawn
    overdue_minor   bigint      NOT NULL,      -- latest undisputed overdue amount seen
    held_minor      bigint      NOT NULL DEFAULT 0,
    offence_count   integer     NOT NULL,
    suspension_requested_at timestamptz,
    closed_at       timestamptz,
    last_position   bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS arrears_order ON finance.arrears (anchor_at, occurrence_id);

-- Reminders handed to a channel (dunning.ReminderDue) and their delivery (DeliveryRecorded).
CREATE TABLE IF NOT EXISTS finance.reminders (
    reminder_id   text        PRIMARY KEY,     -- the ReminderDue decision id
    occurrence_id text,
    account_id    text        NOT NULL,
    channel       text        NOT NULL,
    offence_count integer,
    due_at        timestamptz NOT NULL,
    delivered     boolean     NOT NULL DEFAULT false,
    delivery_outcome text
);
CREATE INDEX IF NOT EXISTS reminders_occurrence ON finance.reminders (occurrence_id);

-- DN.LATE_FEE
CREATE TABLE IF NOT EXISTS finance.late_fees (
    decision_id   text        PRIMARY KEY,
    occurrence_id text,
    account_id    text        NOT NULL,
    bill_id       text,
    fee_minor     bigint      NOT NULL,
    total_fee_minor bigint    NOT NULL,
    days_overdue  integer     NOT NULL,
    charged_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS late_fees_order ON finance.late_fees (charged_at, decision_id);

-- CP4: one row per suspension decision (approved or denied), restoration linked to it.
CREATE TABLE IF NOT EXISTS finance.suspensions (
    request_id      text        PRIMARY KEY,
    decision_id     text        NOT NULL,
    account_id      text        NOT NULL,
    bill_id         text,
    outcome         text        NOT NULL,      -- approved | denied
    reason_codes    text        NOT NULL,
    decided_at      timestamptz NOT NULL,
    overdue_minor   bigint      NOT NULL,
    undisputed_minor bigint     NOT NULL,
    late_fee_minor  bigint      NOT NULL,
    restoration_ordered_at timestamptz,
    termination_eligible_at timestamptz
);
CREATE INDEX IF NOT EXISTS suspensions_order ON finance.suspensions (decided_at, request_id);

-- CP4.RESTORE_48H: ordered restorations and whether the 48 h SLA was missed.
CREATE TABLE IF NOT EXISTS finance.restorations (
    decision_id   text        PRIMARY KEY,
    account_id    text        NOT NULL,
    payment_id    text,
    ordered_at    timestamptz NOT NULL,
    restore_by    timestamptz NOT NULL,
    timer_event_id text,                        -- the input id the deadline timer fires with
    sla_missed_at timestamptz,                  -- the deadline fired before any completion
    completed_at  timestamptz,                  -- the network reported the line restored
    completion    text                          -- withinSla | late
);
CREATE INDEX IF NOT EXISTS restorations_order ON finance.restorations (ordered_at, decision_id);

-- C.REPLACE_NOW / C.STOCK / C.NOT_ELIGIBLE: one row per complaint outcome.
CREATE TABLE IF NOT EXISTS finance.card_replacements (
    complaint_id      text        PRIMARY KEY,
    outlet_id         text        NOT NULL,
    outcome           text        NOT NULL,    -- replaced | escalated | referred
    old_card_serial   text,
    new_card_serial   text,
    transferred_minor bigint      NOT NULL DEFAULT 0,
    decided_at        timestamptz NOT NULL,
    decision_id       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS card_replacements_order ON finance.card_replacements (decided_at, complaint_id);

-- Indexes over the log for the audit trails (A.EVENT), kept here rather than on `events`.
CREATE TABLE IF NOT EXISTS finance.account_decisions (
    account_id      text   NOT NULL,
    global_position bigint NOT NULL,
    PRIMARY KEY (account_id, global_position)
);
CREATE TABLE IF NOT EXISTS finance.ticket_decisions (
    ticket_id       text   NOT NULL,
    global_position bigint NOT NULL,
    PRIMARY KEY (ticket_id, global_position)
);
-- cause_id: an input id in a decision's causedBy (another decision's id, or a timer's input id).
CREATE TABLE IF NOT EXISTS finance.decision_causes (
    cause_id        text   NOT NULL,
    global_position bigint NOT NULL,
    PRIMARY KEY (cause_id, global_position)
);
-- A timer's input id -> the decision that scheduled it, so a timer-caused decision leads back.
CREATE TABLE IF NOT EXISTS finance.timer_origins (
    timer_event_id  text   PRIMARY KEY,
    global_position bigint NOT NULL
);

-- The role the API runs as: reads the log, writes only its own projections.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wuguan_finance') THEN
        CREATE ROLE wuguan_finance NOLOGIN;
    END IF;
    BEGIN
        EXECUTE format('GRANT wuguan_finance TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'could not grant wuguan_finance to %: %', current_user, SQLERRM;
    END;
END $$;
GRANT SELECT ON events TO wuguan_finance;
GRANT USAGE ON SCHEMA finance TO wuguan_finance;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA finance TO wuguan_finance;
