"""What each decision does to the finance projections. Pure: a stored event in, SQL operations
out (statement text, parameters, and the row they are about), so the rules are testable without
a database and the projector stays a thin loop (read a page, run the operations, move the
checkpoint).

Statements are idempotent on their own where they can be (inserts ON CONFLICT DO NOTHING,
updates that set rather than add); the checkpoint moving in the same transaction makes the
whole page exactly-once anyway.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.decision_types import guard
from schemas.decision_types import cards as cards_types
from services.common.eventstore.store import COMMIT_ORDER, committed_after
from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339
from schemas.decision_types import dunning as dunning_types

# (SQL, parameters, key). The key names what the operation must stay in order with: the row it
# writes ("occurrence:…", "reminder:…", "dispute:…"), or "cp4:<account>" for suspensions and
# restorations, whose statements pick among the account's rows. Operations of different keys
# commute, so the projector batches them by statement (projector._batches).
Op = tuple[str, tuple, str]

ACCOUNT_STREAM_PREFIXES = ("guard-account-", "dunning-account-")


@dataclass(frozen=True)
class Row:
    """The columns of `events` the projector reads."""
    global_position: int
    event_id: str
    event_type: str
    stream_id: str
    business_time: datetime
    payload: dict  # the decision envelope


def timer_event_id(timer_id: str) -> str:
    """The input id a fired timer carries (services.common.runtime.timers.timer_message)."""
    return derived_id("timer", timer_id)


# The audit-trail indexes (A.EVENT) of every decision in a range of positions, set-based: which
# account and ticket a decision mentions, and what caused it. Every decision gets index rows, so
# this runs in Postgres rather than decoding a million envelopes in Python; what it says:
# - account: the body's accountId when non-empty, else the account of an account stream
#   (guard-account-…, dunning-account-…);
# - ticket: the body's ticketId when non-empty;
# - causes: each id in the envelope's causedBy.
# Each row holds its decision's position, so no two decisions' rows can collide, and the page's
# transaction moves the checkpoint, so no page is applied twice: plain INSERTs (a causedBy naming
# an id twice gives one row), sorted byte-wise as the keys are indexed (migration 0003), which
# Postgres takes about twice as fast as ON CONFLICT in position order.
_TRAIL_COLUMNS = """
           coalesce(nullif(payload->'payload'->>'accountId', ''),
                    CASE WHEN stream_id LIKE 'guard-account-%' THEN substr(stream_id, 15)
                         WHEN stream_id LIKE 'dunning-account-%' THEN substr(stream_id, 17) END) COLLATE "C" AS account_id,
           nullif(payload->'payload'->>'ticketId', '') COLLATE "C" AS ticket_id,
           CASE WHEN jsonb_typeof(payload->'causedBy') = 'array' THEN payload->'causedBy' END AS caused_by"""
# What else a page counts and hands back of every decision: the timer it sets, the channel of a
# scheduled reminder (the dashboard's counts by day and by channel).
_COUNTED_COLUMNS = """tx_id, global_position AS pos, business_time,
           CASE WHEN jsonb_typeof(payload->'payload'->'timer') = 'object'
                THEN nullif(payload->'payload'->'timer'->>'timerId', '') END AS timer_id,
           CASE WHEN event_type = '""" + dunning_types.REMINDER_SCHEDULED + """' THEN payload->'payload'->>'channel' END AS scheduled_channel"""
_DAY = "(business_time AT TIME ZONE 'Asia/Shanghai')::date"

TRAIL_TABLES = ("account_decisions", "ticket_decisions", "decision_causes")


def _trail_inserts(prefix: str) -> str:
    """The CTEs writing the trail rows of the decisions in `page` into finance.<prefix><table>."""
    return f"""accounts AS (
    INSERT INTO finance.{prefix}account_decisions
    SELECT account_id, pos FROM page WHERE account_id IS NOT NULL ORDER BY 1, 2
), tickets AS (
    INSERT INTO finance.{prefix}ticket_decisions
    SELECT ticket_id, pos FROM page WHERE ticket_id IS NOT NULL ORDER BY 1, 2
), causes AS (
    -- Nearly every decision has one cause: taken as it is, where the distinct causes of a longer
    -- list need a hash of the page (a third of a rebuild's page).
    INSERT INTO finance.{prefix}decision_causes
    SELECT cause COLLATE "C", pos FROM (
        SELECT caused_by->>0 AS cause, pos FROM page WHERE jsonb_array_length(caused_by) = 1
        UNION ALL
        SELECT DISTINCT cause, pos FROM page, jsonb_array_elements_text(caused_by) AS cause
        WHERE jsonb_array_length(caused_by) > 1
    ) AS c WHERE cause IS NOT NULL ORDER BY 1, 2
)"""


# A page of the log, set-based: its trail rows (above), its decisions counted by day and its
# scheduled reminders by channel, the checkpoint moved to the end of the page and its as-of to the
# latest business time seen. It hands back what needs Python: the decisions a rule projects (with
# their envelope) and those that set a timer (timer_origin). $1, $2: the checkpoint (tx_id,
# position), the page reading the next $5 events in commit order (store.committed_after); $3 =
# RULE_TYPES; $4 = the projector.
INDEX_PAGE_SQL = """
WITH page AS MATERIALIZED (
    SELECT """ + _COUNTED_COLUMNS + """, event_id, event_type, stream_id,
           CASE WHEN event_type = ANY($3::text[]) THEN payload END AS envelope, """ + _TRAIL_COLUMNS + """
    FROM """ + committed_after("$5") + """
    ORDER BY """ + COMMIT_ORDER + """ LIMIT $5
), """ + _trail_inserts("") + """, days AS (
    INSERT INTO finance.daily_decisions AS d (day, decisions)
    SELECT """ + _DAY + """, count(*) FROM page
    WHERE business_time IS NOT NULL GROUP BY 1
    ON CONFLICT (day) DO UPDATE SET decisions = d.decisions + excluded.decisions
), scheduled AS (
    INSERT INTO finance.scheduled_reminders AS s (channel, scheduled)
    SELECT scheduled_channel, count(*) FROM page WHERE scheduled_channel IS NOT NULL GROUP BY 1
    ON CONFLICT (channel) DO UPDATE SET scheduled = s.scheduled + excluded.scheduled
), checkpoint AS (
    UPDATE finance.checkpoint SET (tx_id, global_position) = (SELECT tx_id, pos FROM page ORDER BY tx_id DESC, pos DESC LIMIT 1),
           as_of = greatest(as_of, (SELECT max(business_time) FROM page))  -- greatest() skips a NULL as_of
    WHERE projector = $4 AND EXISTS (SELECT 1 FROM page)
    RETURNING global_position
)
SELECT * FROM (
    SELECT tx_id, pos AS global_position, event_id::text AS event_id, event_type, stream_id, business_time,
           envelope, timer_id, NULL::bigint AS page_rows
    FROM page WHERE envelope IS NOT NULL OR timer_id IS NOT NULL
    UNION ALL  -- last: how many events the page read, whatever Python has to look at
    SELECT NULL, (SELECT global_position FROM checkpoint), NULL, NULL, NULL, NULL, NULL, NULL,
           (SELECT count(*) FROM page)
) AS result ORDER BY tx_id NULLS LAST, global_position
"""

# A page of what a parallel rebuild's other connection (trail_tables) does with the decisions below
# the rebuild's horizon ($3): those at positions from $1 up to $2. Every decision is in one page,
# whatever its commit order, so the pages read the log by position, as it lies. It writes their
# trail rows into the rebuild's own tables (finance.rebuild_<table>) and the timers they set into
# the session's pg_temp.rebuild_timers (each timer's first in commit order is taken at the end),
# and hands back what INDEX_PAGE_SQL counts and moves: the counts by day and by channel, the
# page's last decision in commit order, its latest business time.
TRAIL_PAGE_SQL = """
WITH page AS MATERIALIZED (
    SELECT """ + _COUNTED_COLUMNS + ", " + _TRAIL_COLUMNS + """
    FROM events WHERE global_position >= $1 AND global_position < $2 AND tx_id < $3::xid8
), """ + _trail_inserts("rebuild_") + """, timers AS (
    INSERT INTO pg_temp.rebuild_timers SELECT timer_id, tx_id, pos FROM page WHERE timer_id IS NOT NULL
),
days AS (SELECT """ + _DAY + """ AS day, count(*) AS n FROM page WHERE business_time IS NOT NULL GROUP BY 1),
channels AS (SELECT scheduled_channel AS channel, count(*) AS n FROM page WHERE scheduled_channel IS NOT NULL GROUP BY 1),
last AS (SELECT tx_id, pos FROM page ORDER BY tx_id DESC, pos DESC LIMIT 1)
SELECT (SELECT count(*) FROM page) AS decisions, (SELECT max(business_time) FROM page) AS as_of,
       (SELECT tx_id FROM last) AS tx_id, (SELECT pos FROM last) AS global_position,
       (SELECT array_agg(day ORDER BY day) FROM days) AS days, (SELECT array_agg(n ORDER BY day) FROM days) AS day_counts,
       (SELECT array_agg(channel ORDER BY channel) FROM channels) AS channels,
       (SELECT array_agg(n ORDER BY channel) FROM channels) AS channel_counts
"""
# Each timer's first decision in commit order, among those TRAIL_PAGE_SQL kept.
FIRST_TIMERS_SQL = "SELECT DISTINCT ON (timer_id) timer_id, pos FROM pg_temp.rebuild_timers ORDER BY timer_id, tx_id, pos"

# What a parallel rebuild's rules apply: every decision a rule projects below the rebuild's horizon
# ($2), in commit order, read through one cursor; every other part of a page is the other
# connection's (TRAIL_PAGE_SQL). $1 = RULE_TYPES. The rule types are the log's rare ones: their
# index finds them and one sort orders them, where pages that each started again from a checkpoint
# would each read them all, with no index on commit order (migration 0014).
RULE_ROWS_SQL = """
SELECT tx_id, global_position, event_id::text AS event_id, event_type, stream_id, business_time,
       payload AS envelope, NULL::text AS timer_id
FROM events WHERE tx_id < $2::xid8 AND event_type = ANY($1::text[])
ORDER BY tx_id, global_position
"""
# The counts a parallel rebuild's other connection made, into the rebuild's empty tables.
DAILY_COUNTS_SQL = "INSERT INTO finance.daily_decisions (day, decisions) SELECT * FROM unnest($1::date[], $2::bigint[])"
CHANNEL_COUNTS_SQL = ("INSERT INTO finance.scheduled_reminders (channel, scheduled)"
                      " SELECT * FROM unnest($1::text[], $2::bigint[])")


def account_of(row: Row) -> str | None:
    """The account a decision concerns, as INDEX_PAGE_SQL reads it."""
    body = row.payload.get("payload") or {}
    if body.get("accountId"):
        return str(body["accountId"])
    for prefix in ACCOUNT_STREAM_PREFIXES:
        if row.stream_id.startswith(prefix):
            return row.stream_id[len(prefix):]
    return None


def timer_origin(global_position: int, timer_id: str) -> tuple[str, int]:
    """A timer's input id -> the decision that set it (uuid5: Postgres has no SHA-1 to derive it)."""
    return (timer_event_id(timer_id), global_position)


TIMER_ORIGINS_SQL = (
    "INSERT INTO finance.timer_origins SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING"
)


def _t(text: str | None) -> datetime | None:
    return parse_rfc3339(text) if text else None


def _fen(money) -> int:
    return int(money["amountMinor"]) if isinstance(money, dict) else 0


# --- billing_guard: disputes (D.*) -------------------------------------------------------------

def _dispute_opened(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.disputes (ticket_id, account_id, bill_id, cycle, channel, status, owner_id,"
        " opened_at, disputed_minor, held_minor, reply_due_at, last_position)"
        " VALUES ($1, $2, $3, $4, $5, 'acknowledged', $6, $7, $8, $8, $9, $10) ON CONFLICT DO NOTHING",
        (b["ticketId"], b["accountId"], b.get("billId"), b.get("cycle"), b.get("channel"), b.get("ownerId"),
         at, int(b["disputedAmountMinor"]), _t(b.get("replyDueAt")), row.global_position),
        f"dispute:{b['ticketId']}",
    )]


def _dispute_update(sets: str, *values):
    def build(row: Row, b: dict, at: datetime) -> list[Op]:
        args = tuple(v(row, b, at) if callable(v) else v for v in values)
        n = len(args)
        return [(f"UPDATE finance.disputes SET {sets}, last_position = ${n + 1} WHERE ticket_id = ${n + 2}",
                 args + (row.global_position, b["ticketId"]), f"dispute:{b['ticketId']}")]
    return build


def _at(row, b, at):
    return at


def _resolved(row: Row, b: dict, at: datetime) -> list[Op]:
    return _dispute_update("status = 'resolved', held_minor = 0, resolution = $1, credit_minor = $2, resolved_at = $3",
                           b["resolution"], int(b["creditMinor"]), at)(row, b, at)


def _credit_note(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.credit_notes (credit_note_id, ticket_id, account_id, bill_id, cycle, amount_minor,"
        " currency, how, issued_at, decision_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT DO NOTHING",
        (b["creditNoteId"], b.get("ticketId"), b["accountId"], b.get("billId"), b.get("cycle"),
         int(b["amountMinor"]), b.get("currency", "CNY"), b.get("how"), at, row.payload["decisionId"]),
        f"credit-note:{b['creditNoteId']}",
    )]


# --- billing_guard: CP4 suspension and restoration ----------------------------------------------

def _suspension(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.suspensions (request_id, decision_id, account_id, bill_id, outcome, reason_codes,"
        " decided_at, overdue_minor, undisputed_minor, late_fee_minor)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
        (b["requestId"], row.payload["decisionId"], b["accountId"], b.get("billId"), row.payload["outcome"],
         ",".join(row.payload.get("reasonCodes") or ()), at, int(b.get("overdueMinor", 0)),
         int(b.get("undisputedOverdueMinor", 0)), int(b.get("lateFeeMinor", 0))),
        f"cp4:{b['accountId']}",
    )]


# The account's latest approved suspension still in force (no restoration ordered yet).
_OPEN_SUSPENSION = (
    "(SELECT request_id FROM finance.suspensions WHERE account_id = $2 AND outcome = 'approved'"
    " AND restoration_ordered_at IS NULL ORDER BY decided_at DESC, request_id DESC LIMIT 1)"
)


def _restoration(row: Row, b: dict, at: datetime) -> list[Op]:
    timer = b.get("timer") or {}
    return [
        ("INSERT INTO finance.restorations (decision_id, account_id, payment_id, ordered_at, restore_by, timer_event_id)"
         " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
         (row.payload["decisionId"], b["accountId"], b.get("paymentId"), at, _t(b["restoreBy"]),
          timer_event_id(timer["timerId"]) if timer.get("timerId") else None), f"cp4:{b['accountId']}"),
        (f"UPDATE finance.suspensions SET restoration_ordered_at = $1 WHERE request_id = {_OPEN_SUSPENSION}",
         (at, b["accountId"]), f"cp4:{b['accountId']}"),
    ]


def _restoration_missed(row: Row, b: dict, at: datetime) -> list[Op]:
    # The miss is caused by the deadline timer the RestorationOrdered decision scheduled.
    causes = [str(c) for c in row.payload.get("causedBy") or ()]
    return [("UPDATE finance.restorations SET sla_missed_at = $1"
             " WHERE timer_event_id = ANY($2::text[]) AND sla_missed_at IS NULL", (at, causes), f"cp4:{account_of(row)}")]


def _restoration_completed(row: Row, b: dict, at: datetime) -> list[Op]:
    outcome = row.payload["outcome"]
    if outcome not in ("withinSla", "late"):
        return []  # "unmatched": no restoration was pending, nothing to complete
    # The order it completes, when the network named it; else the account's latest open one.
    return [("UPDATE finance.restorations SET completed_at = $1, completion = $2 WHERE decision_id ="
             " coalesce($3, (SELECT decision_id FROM finance.restorations WHERE account_id = $4 AND completed_at IS NULL"
             " ORDER BY ordered_at DESC, decision_id DESC LIMIT 1))",
             (_t(b["completedAt"]), outcome, b.get("restorationOrderId"), b["accountId"]), f"cp4:{b['accountId']}")]


def _termination(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(f"UPDATE finance.suspensions SET termination_eligible_at = $1 WHERE request_id = {_OPEN_SUSPENSION}",
             (at, b["accountId"]), f"cp4:{b['accountId']}")]


# --- dunning ------------------------------------------------------------------------------------

def _occurrence_opened(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.arrears (occurrence_id, account_id, bill_id, anchor_at, status, overdue_minor,"
        " held_minor, offence_count, last_position) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING",
        (b["occurrenceId"], b["accountId"], b["billId"], _t(b["anchorDate"]), int(b.get("overdueMinor", 0)),
         int(b.get("heldMinor", 0)), int(b.get("offenceCount", 1)), row.global_position),
        f"occurrence:{b['occurrenceId']}",
    )]


_OCCURRENCE_STATUS = ("UPDATE finance.arrears SET status = $1, closed_at = $2, last_position = $3"
                      " WHERE occurrence_id = $4")
_REMINDER = ("INSERT INTO finance.reminders (reminder_id, occurrence_id, account_id, channel, offence_count, due_at)"
             " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
_OVERDUE = "UPDATE finance.arrears SET overdue_minor = $1, last_position = $2 WHERE occurrence_id = $3"
_DELIVERY = "UPDATE finance.reminders SET delivered = $1, delivery_outcome = $2 WHERE reminder_id = $3"


def _occurrence_status(status: str):
    def build(row: Row, b: dict, at: datetime) -> list[Op]:
        closed = None if status == "open" else at
        return [(_OCCURRENCE_STATUS, (status, closed, row.global_position, b["occurrenceId"]),
                 f"occurrence:{b['occurrenceId']}")]
    return build


def _reminder_due(row: Row, b: dict, at: datetime) -> list[Op]:
    return [
        (_REMINDER,
         (row.payload["decisionId"], b.get("occurrenceId"), b["accountId"], b["channel"], b.get("offenceCount"), at),
         f"reminder:{row.payload['decisionId']}"),
        (_OVERDUE, (int(b.get("overdueMinor", 0)), row.global_position, b.get("occurrenceId")),
         f"occurrence:{b.get('occurrenceId')}"),
    ]


def _delivery(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(_DELIVERY, (bool(b.get("delivered")), b.get("deliveryOutcome"), b["reminderId"]), f"reminder:{b['reminderId']}")]


def _late_fee(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.late_fees (decision_id, occurrence_id, account_id, bill_id, fee_minor, total_fee_minor,"
        " days_overdue, charged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        (row.payload["decisionId"], b.get("occurrenceId"), b["accountId"], b.get("billId"), int(b["feeMinor"]),
         int(b.get("totalFeeMinor", b["feeMinor"])), int(b.get("daysOverdue", 0)), at),
        f"late-fee:{row.payload['decisionId']}",
    )]


def _suspension_requested(row: Row, b: dict, at: datetime) -> list[Op]:
    return [("UPDATE finance.arrears SET suspension_requested_at = $1, overdue_minor = $2, last_position = $3"
             " WHERE occurrence_id = $4", (at, int(b.get("overdueMinor", 0)), row.global_position, b["occurrenceId"]),
             f"occurrence:{b['occurrenceId']}")]


# --- cards ----------------------------------------------------------------------------------------

def _card_outcome(outcome: str):
    def build(row: Row, b: dict, at: datetime) -> list[Op]:
        old = b.get("oldCardSerial") or b.get("cardSerial")
        return [(
            "INSERT INTO finance.card_replacements (complaint_id, outlet_id, outcome, old_card_serial, new_card_serial,"
            " transferred_minor, decided_at, decision_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT DO NOTHING",
            (b["complaintId"], b["outletId"], outcome, old, b.get("newCardSerial"),
             _fen(b.get("transferredValue")), at, row.payload["decisionId"]),
            f"complaint:{b['complaintId']}",
        )]
    return build


RULES = {
    guard.DISPUTE_OPENED: _dispute_opened,
    guard.DISPUTE_TRANSFER_PROPOSED: _dispute_update("pending_owner_id = $1", lambda r, b, a: b["toOwnerId"]),
    guard.DISPUTE_TRANSFER_ACCEPTED: _dispute_update("owner_id = $1, pending_owner_id = NULL",
                                                     lambda r, b, a: b["toOwnerId"]),
    guard.DISPUTE_REPLIED: _dispute_update("replied_at = $1, replied_late = $2", _at,
                                            lambda r, b, a: r.payload["outcome"] == "answeredLate"),
    guard.DISPUTE_REPLY_OVERDUE: _dispute_update("reply_overdue = true, overdue_at = $1", _at),
    guard.DISPUTE_AUTO_CREDITED: _resolved,
    guard.DISPUTE_RESOLVED: _resolved,
    guard.DISPUTE_CLOSED: _dispute_update("status = 'closed', ended_at = $1", _at),
    guard.DISPUTE_CANCELLED: _dispute_update("status = 'cancelled', held_minor = 0, ended_at = $1", _at),
    guard.CREDIT_NOTE_ISSUED: _credit_note,
    guard.SUSPENSION_APPROVED: _suspension,
    guard.SUSPENSION_DENIED: _suspension,
    guard.RESTORATION_ORDERED: _restoration,
    guard.RESTORATION_SLA_MISSED: _restoration_missed,
    guard.RESTORATION_COMPLETED: _restoration_completed,
    guard.TERMINATION_ELIGIBLE: _termination,
    dunning_types.OCCURRENCE_OPENED: _occurrence_opened,
    dunning_types.OCCURRENCE_CLOSED: _occurrence_status("closed"),
    dunning_types.OCCURRENCE_WITHDRAWN: _occurrence_status("withdrawn"),
    dunning_types.OCCURRENCE_REOPENED: _occurrence_status("open"),
    dunning_types.REMINDER_DUE: _reminder_due,
    dunning_types.DELIVERY_RECORDED: _delivery,
    dunning_types.LATE_FEE_CHARGED: _late_fee,
    dunning_types.SUSPENSION_REQUESTED: _suspension_requested,
    cards_types.CARD_REPLACED: _card_outcome("replaced"),
    cards_types.COMPLAINT_ESCALATED: _card_outcome("escalated"),
    cards_types.COMPLAINT_REFERRED: _card_outcome("referred"),
}


def projection_ops(row: Row) -> list[Op]:
    """The projection-table operations for one decision (order matters within a page)."""
    rule = RULES.get(row.event_type)
    if rule is None:
        return []
    body = row.payload.get("payload") or {}
    return rule(row, body, row.business_time)


RULE_TYPES = sorted(RULES)


@dataclass(frozen=True)
class SetForm:
    """A single-row statement done for many rows in one statement: parameter $k is the array of
    the single-row statement's k-th parameter. Equivalent when the rows named by parameter
    `key` are distinct (projector checks); the dunning statements below are most of a rebuild's
    operations (a reminder and its delivery per reminder), ~30 µs each one by one."""
    sql: str
    key: int  # the parameter naming the row


SET_FORMS = {
    _REMINDER: SetForm(
        "INSERT INTO finance.reminders (reminder_id, occurrence_id, account_id, channel, offence_count, due_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::timestamptz[])"
        " ON CONFLICT DO NOTHING", 0),
    _OVERDUE: SetForm(
        "UPDATE finance.arrears a SET overdue_minor = v.overdue, last_position = v.pos"
        " FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(overdue, pos, occurrence_id)"
        " WHERE a.occurrence_id = v.occurrence_id", 2),
    _DELIVERY: SetForm(
        "UPDATE finance.reminders r SET delivered = v.delivered, delivery_outcome = v.outcome"
        " FROM unnest($1::bool[], $2::text[], $3::text[]) AS v(delivered, outcome, reminder_id)"
        " WHERE r.reminder_id = v.reminder_id", 2),
    _OCCURRENCE_STATUS: SetForm(
        "UPDATE finance.arrears a SET status = v.status, closed_at = v.closed, last_position = v.pos"
        " FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[]) AS v(status, closed, pos, occurrence_id)"
        " WHERE a.occurrence_id = v.occurrence_id", 3),
}
