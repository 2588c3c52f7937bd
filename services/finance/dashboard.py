"""The numbers behind the dashboard page, from the views. Aging buckets come from the pure
aging module over the open rows (the SQL view v_arrears_aging must agree; a test checks)."""
from __future__ import annotations

import asyncpg

from . import trends
from .aging import ARREARS_EDGES, DISPUTE_EDGES, buckets
from .lists import render_time


# Money first (what finance asks before any count): open arrears net of disputes, disputed
# amounts on hold (D.HOLD), credit notes issued, late fees charged; integer fen.
MONEY_SQL = (
    "SELECT (SELECT coalesce(sum(overdue_minor), 0) FROM finance.v_arrears WHERE status = 'open')::bigint AS \"arrearsMinor\","
    " (SELECT count(*) FROM finance.v_arrears WHERE status = 'open')::int AS \"arrearsAccounts\","
    " (SELECT coalesce(sum(held_minor), 0) FROM finance.v_disputes WHERE status = 'acknowledged')::bigint"
    "   AS \"disputedMinor\","
    " (SELECT count(*) FROM finance.v_disputes WHERE status = 'acknowledged')::int AS \"openDisputes\","
    " (SELECT coalesce(sum(amount_minor), 0) FROM finance.v_credit_notes)::bigint AS \"creditedMinor\","
    " (SELECT count(*) FROM finance.v_credit_notes)::int AS \"creditNotes\","
    " (SELECT coalesce(sum(fee_minor), 0) FROM finance.v_late_fees)::bigint AS \"lateFeesMinor\"")


def by_channel(due_rows, scheduled: dict[str, int]) -> list[dict]:
    """Reminders per channel: scheduled (from the log), due and delivered (the projection);
    a channel with reminders scheduled but none due yet is listed too."""
    due = {r["channel"]: r for r in due_rows}
    return [{"channel": channel, "scheduled": scheduled.get(channel, 0),
             "reminders": due[channel]["reminders"] if channel in due else 0,
             "delivered": due[channel]["delivered"] if channel in due else 0,
             "occurrences": due[channel]["occurrences"] if channel in due else 0}
            for channel in sorted(set(due) | set(scheduled))]


async def summary(conn: asyncpg.Connection) -> dict:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("SELECT global_position, as_of FROM finance.v_as_of")
        as_of = head["as_of"] if head else None
        disputes = await conn.fetch(
            "SELECT opened_at, held_minor FROM finance.v_disputes WHERE status = 'acknowledged'")
        arrears = await conn.fetch("SELECT anchor_at, overdue_minor FROM finance.v_arrears WHERE status = 'open'")
        # Occurrences reminded and delivered in one pass over the reminders (two count(DISTINCT)
        # sorts were most of the dashboard's time on a 1M-event store).
        funnel = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM finance.arrears)::int AS occurrences,"
            " r.reminded, r.delivered,"
            " (SELECT count(*) FROM finance.arrears WHERE suspension_requested_at IS NOT NULL)::int AS suspension_requested,"
            " (SELECT count(*) FROM finance.suspensions WHERE outcome = 'approved')::int AS suspended,"
            " (SELECT count(*) FROM finance.restorations)::int AS restored"
            " FROM (SELECT count(*)::int AS reminded, count(*) FILTER (WHERE delivered)::int AS delivered"
            "       FROM (SELECT bool_or(delivered) AS delivered FROM finance.reminders"
            "             WHERE occurrence_id IS NOT NULL GROUP BY occurrence_id) per_occurrence) r")
        channels = await conn.fetch("SELECT * FROM finance.v_reminders_by_channel ORDER BY channel")
        sla = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM finance.v_disputes WHERE reply_overdue)::int AS dispute_reply_overdue,"
            " (SELECT count(*) FROM finance.v_restorations WHERE sla_missed)::int AS restoration_sla_missed")
        outlets = await conn.fetch("SELECT * FROM finance.v_card_replacements_by_outlet ORDER BY outlet_id")
        money = await conn.fetchrow(MONEY_SQL)
        days = await trends.per_day(conn, as_of)
        scheduled = await trends.scheduled_by_channel(conn)
    empty = as_of is None
    return {
        "asOf": render_time(as_of),
        "position": head["global_position"] if head else 0,
        "disputeAging": [] if empty else buckets(((r["opened_at"], r["held_minor"]) for r in disputes), as_of, DISPUTE_EDGES),
        "arrearsAging": [] if empty else buckets(((r["anchor_at"], r["overdue_minor"]) for r in arrears), as_of, ARREARS_EDGES),
        "funnel": {
            "occurrences": funnel["occurrences"], "reminded": funnel["reminded"], "delivered": funnel["delivered"],
            "suspensionRequested": funnel["suspension_requested"], "suspended": funnel["suspended"],
            "restored": funnel["restored"],
            "byChannel": by_channel(channels, scheduled),
        },
        "slaBreaches": {"disputeReplyOverdue": sla["dispute_reply_overdue"],
                        "restorationSlaMissed": sla["restoration_sla_missed"]},
        "money": dict(money),
        "trends": days,
        "cardsByOutlet": [{"outletId": r["outlet_id"], "replaced": r["replaced"], "escalated": r["escalated"],
                           "referred": r["referred"], "transferredMinor": r["transferred_minor"]} for r in outlets],
    }
