"""The API's lists: which view, which columns, which filters, which stable order.

Every value reaches SQL as a bind parameter; the only text spliced into statements comes from
the constants below, never from a request (so SQL-looking input is just a value that matches
nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import cursor as cursors

ZONE = ZoneInfo("Asia/Shanghai")  # business times are rendered in the operator's zone, with offset
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
COMMON_PARAMS = frozenset({"cursor", "limit", "format", "from", "to"})


class BadRequest(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    name: str  # JSON key / CSV header
    sql: str   # column of the view
    kind: str = "text"  # text | int | fen | time | bool


@dataclass(frozen=True)
class ListSpec:
    view: str
    columns: tuple[Column, ...]
    sort: str   # time column: the list's order is (sort, key)
    key: str    # unique column, tie-break
    filters: dict = field(default_factory=dict)  # query parameter -> column (equality)

    def select(self) -> str:
        return ", ".join(f"{c.sql}" for c in self.columns)


def _c(*specs) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in specs)


LISTS = {
    "disputes": ListSpec(
        "finance.v_disputes",
        _c(("ticketId", "ticket_id"), ("accountId", "account_id"), ("billId", "bill_id"), ("cycle", "cycle"),
           ("channel", "channel"), ("status", "status"), ("ownerId", "owner_id"),
           ("pendingOwnerId", "pending_owner_id"), ("openedAt", "opened_at", "time"), ("ageDays", "age_days", "int"),
           ("disputed", "disputed_minor", "fen"), ("held", "held_minor", "fen"),
           ("replyDueAt", "reply_due_at", "time"), ("repliedAt", "replied_at", "time"),
           ("repliedLate", "replied_late", "bool"), ("replyOverdue", "reply_overdue", "bool"),
           ("resolution", "resolution"), ("credit", "credit_minor", "fen"), ("resolvedAt", "resolved_at", "time"),
           ("endedAt", "ended_at", "time")),
        "opened_at", "ticket_id", {"status": "status", "account": "account_id"}),
    "credit-notes": ListSpec(
        "finance.v_credit_notes",
        _c(("creditNoteId", "credit_note_id"), ("ticketId", "ticket_id"), ("accountId", "account_id"),
           ("billId", "bill_id"), ("cycle", "cycle"), ("amount", "amount_minor", "fen"), ("currency", "currency"),
           ("how", "how"), ("issuedAt", "issued_at", "time"), ("decisionId", "decision_id")),
        "issued_at", "credit_note_id", {"status": "how", "account": "account_id"}),
    "arrears": ListSpec(
        "finance.v_arrears",
        _c(("occurrenceId", "occurrence_id"), ("accountId", "account_id"), ("billId", "bill_id"),
           ("anchorAt", "anchor_at", "time"), ("status", "status"), ("overdue", "overdue_minor", "fen"),
           ("held", "held_minor", "fen"), ("offenceCount", "offence_count", "int"), ("ageDays", "age_days", "int"),
           ("agingBucket", "aging_bucket"), ("remindersDue", "reminders_due", "int"),
           ("remindersDelivered", "reminders_delivered", "int"),
           ("suspensionRequestedAt", "suspension_requested_at", "time"), ("closedAt", "closed_at", "time")),
        "anchor_at", "occurrence_id", {"status": "status", "account": "account_id", "bucket": "aging_bucket"}),
    "late-fees": ListSpec(
        "finance.v_late_fees",
        _c(("decisionId", "decision_id"), ("occurrenceId", "occurrence_id"), ("accountId", "account_id"),
           ("billId", "bill_id"), ("fee", "fee_minor", "fen"), ("totalFee", "total_fee_minor", "fen"),
           ("daysOverdue", "days_overdue", "int"), ("chargedAt", "charged_at", "time")),
        "charged_at", "decision_id", {"account": "account_id"}),
    "suspensions": ListSpec(
        "finance.v_suspensions",
        _c(("requestId", "request_id"), ("decisionId", "decision_id"), ("accountId", "account_id"),
           ("billId", "bill_id"), ("status", "outcome"), ("reasonCodes", "reason_codes"),
           ("decidedAt", "decided_at", "time"), ("overdue", "overdue_minor", "fen"),
           ("undisputedOverdue", "undisputed_minor", "fen"), ("lateFee", "late_fee_minor", "fen"),
           ("restorationOrderedAt", "restoration_ordered_at", "time"),
           ("terminationEligibleAt", "termination_eligible_at", "time")),
        "decided_at", "request_id", {"status": "outcome", "account": "account_id"}),
    "restorations": ListSpec(
        "finance.v_restorations",
        _c(("decisionId", "decision_id"), ("accountId", "account_id"), ("paymentId", "payment_id"),
           ("orderedAt", "ordered_at", "time"), ("restoreBy", "restore_by", "time"),
           ("slaMissedAt", "sla_missed_at", "time"), ("completedAt", "completed_at", "time"),
           ("completion", "completion"), ("slaMissed", "sla_missed", "bool")),
        "ordered_at", "decision_id", {"account": "account_id"}),
    "card-replacements": ListSpec(
        "finance.v_card_replacements",
        _c(("complaintId", "complaint_id"), ("outletId", "outlet_id"), ("status", "outcome"),
           ("oldCardSerial", "old_card_serial"), ("newCardSerial", "new_card_serial"),
           ("transferred", "transferred_minor", "fen"), ("decidedAt", "decided_at", "time"),
           ("decisionId", "decision_id")),
        "decided_at", "complaint_id", {"status": "outcome", "outlet": "outlet_id"}),
}


def parse_moment(text: str, end: bool) -> datetime:
    """RFC 3339 with offset, or a date (a whole day in the operator's zone; `to` includes it)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), ZONE)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("from/to must be YYYY-MM-DD or RFC 3339 with an offset") from None
    if moment.tzinfo is None:
        raise BadRequest("from/to must carry an offset")
    return moment


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:  # "²".isdigit() too
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


@dataclass(frozen=True)
class Query:
    sql: str
    args: tuple


def build_query(spec: ListSpec, params: dict, limit: int, after: str | None) -> Query:
    """The page query: filters, then keyset after the cursor, in (sort, key) order."""
    unknown = set(params) - COMMON_PARAMS - set(spec.filters)
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    where, args = [], []
    for name, column in spec.filters.items():
        if name in params:
            args.append(params[name])
            where.append(f"{column} = ${len(args)}")
    if "from" in params:
        args.append(parse_moment(params["from"], end=False))
        where.append(f"{spec.sort} >= ${len(args)}")
    if "to" in params:
        args.append(parse_moment(params["to"], end=True))
        where.append(f"{spec.sort} < ${len(args)}")
    if after:
        try:
            sort_value, key = cursors.decode(after)
        except cursors.CursorError:
            raise BadRequest("invalid cursor") from None
        if not isinstance(sort_value, datetime):
            raise BadRequest("invalid cursor")
        args.extend((sort_value, key))
        where.append(f"({spec.sort}, {spec.key}) > (${len(args) - 1}, ${len(args)})")
    sql = f"SELECT {spec.select()}, {spec.sort} AS _sort, {spec.key} AS _key FROM {spec.view}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    args.append(limit + 1)  # one more than asked: tells whether there is a next page
    sql += f" ORDER BY {spec.sort}, {spec.key} LIMIT ${len(args)}"
    return Query(sql, tuple(args))


def render_time(value: datetime | None) -> str | None:
    return value.astimezone(ZONE).isoformat() if value is not None else None


def render_row(spec: ListSpec, row) -> dict:
    out = {}
    for column in spec.columns:
        value = row[column.sql]
        if column.kind == "time":
            value = render_time(value)
        elif column.kind == "fen":
            out[column.name + "Minor"] = value
            continue
        out[column.name] = value
    return out


def page(spec: ListSpec, rows, limit: int) -> tuple[list[dict], str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursors.encode(rows[-1]["_sort"], rows[-1]["_key"]) if more and rows else None
    return [render_row(spec, r) for r in rows], next_cursor
