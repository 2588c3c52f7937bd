"""What each decision does to the finance projections. Pure: a stored event in, SQL operations
out (statement text and parameters), so the rules are testable without a database and the
projector stays a thin loop (read a page, run the operations, move the checkpoint).

Statements are idempotent on their own where they can be (inserts ON CONFLICT DO NOTHING,
updates that set rather than add); the checkpoint moving in the same transaction makes the
whole page exactly-once anyway.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common.ids import derived_id
from services.common.timefmt import parse_rfc3339

Op = tuple[str, tuple]  # (SQL, parameters)

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


def account_of(row: Row) -> str | None:
    body = row.payload.get("payload") or {}
    if body.get("accountId"):
        return str(body["accountId"])
    for prefix in ACCOUNT_STREAM_PREFIXES:
        if row.stream_id.startswith(prefix):
            return row.stream_id[len(prefix):]
    return None


def index_ops(row: Row) -> list[Op]:
    """Rows of the audit-trail indexes: which account/ticket a decision mentions, what caused it."""
    body = row.payload.get("payload") or {}
    pos = row.global_position
    ops: list[Op] = []
    account = account_of(row)
    if account:
        ops.append(("INSERT INTO finance.account_decisions VALUES ($1, $2) ON CONFLICT DO NOTHING", (account, pos)))
    if body.get("ticketId"):
        ops.append(("INSERT INTO finance.ticket_decisions VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    (str(body["ticketId"]), pos)))
    for cause in row.payload.get("causedBy") or ():
        ops.append(("INSERT INTO finance.decision_causes VALUES ($1, $2) ON CONFLICT DO NOTHING", (str(cause), pos)))
    timer = body.get("timer")
    if isinstance(timer, dict) and timer.get("timerId"):
        ops.append(("INSERT INTO finance.timer_origins VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    (timer_event_id(timer["timerId"]), pos)))
    return ops


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
    )]


def _dispute_update(sets: str, *values):
    def build(row: Row, b: dict, at: datetime) -> list[Op]:
        args = tuple(v(row, b, at) if callable(v) else v for v in values)
        n = len(args)
        return [(f"UPDATE finance.disputes SET {sets}, last_position = ${n + 1} WHERE ticket_id = ${n + 2}",
                 args + (row.global_position, b["ticketId"]))]
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
          timer_event_id(timer["timerId"]) if timer.get("timerId") else None)),
        (f"UPDATE finance.suspensions SET restoration_ordered_at = $1 WHERE request_id = {_OPEN_SUSPENSION}",
         (at, b["accountId"])),
    ]


def _restoration_missed(row: Row, b: dict, at: datetime) -> list[Op]:
    # The miss is caused by the deadline timer the RestorationOrdered decision scheduled.
    causes = [str(c) for c in row.payload.get("causedBy") or ()]
    return [("UPDATE finance.restorations SET sla_missed_at = $1"
             " WHERE timer_event_id = ANY($2::text[]) AND sla_missed_at IS NULL", (at, causes))]


def _restoration_completed(row: Row, b: dict, at: datetime) -> list[Op]:
    outcome = row.payload["outcome"]
    if outcome not in ("withinSla", "late"):
        return []  # "unmatched": no restoration was pending, nothing to complete
    # The order it completes, when the network named it; else the account's latest open one.
    return [("UPDATE finance.restorations SET completed_at = $1, completion = $2 WHERE decision_id ="
             " coalesce($3, (SELECT decision_id FROM finance.restorations WHERE account_id = $4 AND completed_at IS NULL"
             " ORDER BY ordered_at DESC, decision_id DESC LIMIT 1))",
             (_t(b["completedAt"]), outcome, b.get("restorationOrderId"), b["accountId"]))]


def _termination(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(f"UPDATE finance.suspensions SET termination_eligible_at = $1 WHERE request_id = {_OPEN_SUSPENSION}",
             (at, b["accountId"]))]


# --- dunning ------------------------------------------------------------------------------------

def _occurrence_opened(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.arrears (occurrence_id, account_id, bill_id, anchor_at, status, overdue_minor,"
        " held_minor, offence_count, last_position) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8)"
        " ON CONFLICT DO NOTHING",
        (b["occurrenceId"], b["accountId"], b["billId"], _t(b["anchorDate"]), int(b.get("overdueMinor", 0)),
         int(b.get("heldMinor", 0)), int(b.get("offenceCount", 1)), row.global_position),
    )]


def _occurrence_status(status: str):
    def build(row: Row, b: dict, at: datetime) -> list[Op]:
        closed = None if status == "open" else at
        return [("UPDATE finance.arrears SET status = $1, closed_at = $2, last_position = $3 WHERE occurrence_id = $4",
                 (status, closed, row.global_position, b["occurrenceId"]))]
    return build


def _reminder_due(row: Row, b: dict, at: datetime) -> list[Op]:
    return [
        ("INSERT INTO finance.reminders (reminder_id, occurrence_id, account_id, channel, offence_count, due_at)"
         " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
         (row.payload["decisionId"], b.get("occurrenceId"), b["accountId"], b["channel"], b.get("offenceCount"), at)),
        ("UPDATE finance.arrears SET overdue_minor = $1, last_position = $2 WHERE occurrence_id = $3",
         (int(b.get("overdueMinor", 0)), row.global_position, b.get("occurrenceId"))),
    ]


def _delivery(row: Row, b: dict, at: datetime) -> list[Op]:
    return [("UPDATE finance.reminders SET delivered = $1, delivery_outcome = $2 WHERE reminder_id = $3",
             (bool(b.get("delivered")), b.get("deliveryOutcome"), b["reminderId"]))]


def _late_fee(row: Row, b: dict, at: datetime) -> list[Op]:
    return [(
        "INSERT INTO finance.late_fees (decision_id, occurrence_id, account_id, bill_id, fee_minor, total_fee_minor,"
        " days_overdue, charged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        (row.payload["decisionId"], b.get("occurrenceId"), b["accountId"], b.get("billId"), int(b["feeMinor"]),
         int(b.get("totalFeeMinor", b["feeMinor"])), int(b.get("daysOverdue", 0)), at),
    )]


def _suspension_requested(row: Row, b: dict, at: datetime) -> list[Op]:
    return [("UPDATE finance.arrears SET suspension_requested_at = $1, overdue_minor = $2, last_position = $3"
             " WHERE occurrence_id = $4", (at, int(b.get("overdueMinor", 0)), row.global_position, b["occurrenceId"]))]


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
        )]
    return build


RULES = {
    "guard.DisputeOpened": _dispute_opened,
    "guard.DisputeTransferProposed": _dispute_update("pending_owner_id = $1", lambda r, b, a: b["toOwnerId"]),
    "guard.DisputeTransferAccepted": _dispute_update("owner_id = $1, pending_owner_id = NULL",
                                                     lambda r, b, a: b["toOwnerId"]),
    "guard.DisputeReplied": _dispute_update("replied_at = $1, replied_late = $2", _at,
                                            lambda r, b, a: r.payload["outcome"] == "answeredLate"),
    "guard.DisputeReplyOverdue": _dispute_update("reply_overdue = true, overdue_at = $1", _at),
    "guard.DisputeAutoCredited": _resolved,
    "guard.DisputeResolved": _resolved,
    "guard.DisputeClosed": _dispute_update("status = 'closed', ended_at = $1", _at),
    "guard.DisputeCancelled": _dispute_update("status = 'cancelled', held_minor = 0, ended_at = $1", _at),
    "guard.CreditNoteIssued": _credit_note,
    "guard.SuspensionApproved": _suspension,
    "guard.SuspensionDenied": _suspension,
    "guard.RestorationOrdered": _restoration,
    "guard.RestorationSlaMissed": _restoration_missed,
    "guard.RestorationCompleted": _restoration_completed,
    "guard.TerminationEligible": _termination,
    "dunning.OccurrenceOpened": _occurrence_opened,
    "dunning.OccurrenceClosed": _occurrence_status("closed"),
    "dunning.OccurrenceWithdrawn": _occurrence_status("withdrawn"),
    "dunning.OccurrenceReopened": _occurrence_status("open"),
    "dunning.ReminderDue": _reminder_due,
    "dunning.DeliveryRecorded": _delivery,
    "dunning.LateFeeCharged": _late_fee,
    "dunning.SuspensionRequested": _suspension_requested,
    "cards.CardReplaced": _card_outcome("replaced"),
    "cards.ComplaintEscalated": _card_outcome("escalated"),
    "cards.ComplaintReferred": _card_outcome("referred"),
}


def projection_ops(row: Row) -> list[Op]:
    """The projection-table operations for one decision (order matters within a page)."""
    rule = RULES.get(row.event_type)
    if rule is None:
        return []
    body = row.payload.get("payload") or {}
    return rule(row, body, row.business_time)
