"""What `wuguan run` prints when the sample day is done: decisions per service and type, money
rated and billed, reminders by channel and dead letters by reason, read from the event store;
money in arrears, disputed and credited, read from the finance API (the dashboard's figures,
so the two always agree)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table

from schemas.decision_types import dunning, guard

DECISIONS_SQL = "SELECT service, event_type, count(*)::int AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2"
# Money the guard rated (CP2.TRACEABLE) and billed (bills it saw close a cycle, CP3.LATE).
# The decision types are parameters: $1 the guard's CdrRated, $2 its BillCycleClosed.
MONEY_SQL = (
    "SELECT coalesce(sum((payload->'payload'->>'amountMinor')::bigint)"
    "   FILTER (WHERE event_type = $1), 0)::bigint AS rated,"
    " count(*) FILTER (WHERE event_type = $1)::int AS rated_calls,"
    " coalesce(sum((payload->'payload'->>'amountMinor')::bigint)"
    "   FILTER (WHERE event_type = $2), 0)::bigint AS billed,"
    " count(*) FILTER (WHERE event_type = $2)::int AS bills"
    " FROM events WHERE event_type IN ($1, $2)")
MONEY_TYPES = (guard.CDR_RATED, guard.BILL_CYCLE_CLOSED)
# $1 dunning's ReminderScheduled, $2 its ReminderDue.
REMINDERS_SQL = (
    "SELECT payload->'payload'->>'channel' AS channel,"
    " count(*) FILTER (WHERE event_type = $1)::int AS scheduled,"
    " count(*) FILTER (WHERE event_type = $2)::int AS due"
    " FROM events WHERE event_type IN ($1, $2) GROUP BY 1 ORDER BY 1")
REMINDER_TYPES = (dunning.REMINDER_SCHEDULED, dunning.REMINDER_DUE)
DEAD_LETTERS_SQL = (
    "SELECT consumer, topic, code, count(*)::int AS n FROM dead_lettered_inputs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


@dataclass
class StackSummary:
    decisions: list[tuple[str, str, int]] = field(default_factory=list)
    money: dict = field(default_factory=dict)  # fen
    reminders: list[tuple[str, int, int]] = field(default_factory=list)
    dead_letters: list[tuple[str, str, str, int]] = field(default_factory=list)


async def read_summary(conn, finance_money: dict) -> StackSummary:
    money = await conn.fetchrow(MONEY_SQL, *MONEY_TYPES)
    return StackSummary(
        decisions=[(r["service"], r["event_type"], r["n"]) for r in await conn.fetch(DECISIONS_SQL)],
        money={"rated": money["rated"], "ratedCalls": money["rated_calls"], "billed": money["billed"],
               "bills": money["bills"], **finance_money},
        reminders=[(r["channel"] or "-", r["scheduled"], r["due"]) for r in await conn.fetch(REMINDERS_SQL, *REMINDER_TYPES)],
        dead_letters=[(r["consumer"], r["topic"], r["code"], r["n"]) for r in await conn.fetch(DEAD_LETTERS_SQL)],
    )


def yuan(fen: int | None) -> str:
    if fen is None:
        return "n/a"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def _money_table(money: dict) -> Table:
    table = Table(title="Money", title_justify="left")
    table.add_column("figure")
    table.add_column("amount", justify="right")
    table.add_column("of", justify="right")
    rows = [
        ("rated (calls charged)", money.get("rated"), f"{money.get('ratedCalls', 0)} calls"),
        ("billed", money.get("billed"), f"{money.get('bills', 0)} bills"),
        ("in arrears (open, net of disputes)", money.get("arrearsMinor"), f"{money.get('arrearsAccounts', 0)} occurrences"),
        ("disputed (on hold)", money.get("disputedMinor"), f"{money.get('openDisputes', 0)} open disputes"),
        ("credited", money.get("creditedMinor"), f"{money.get('creditNotes', 0)} credit notes"),
        ("late fees", money.get("lateFeesMinor"), ""),
    ]
    for name, fen, of in rows:
        table.add_row(name, yuan(fen), of)
    return table


def render_summary(summary: StackSummary) -> Group:
    decisions = Table(title="Decisions per service and type", title_justify="left")
    for name, justify in (("service", "left"), ("decision type", "left"), ("count", "right")):
        decisions.add_column(name, justify=justify, overflow="fold")
    for service, kind, n in summary.decisions:
        decisions.add_row(service, kind, str(n))
    reminders = Table(title="Reminders by channel", title_justify="left")
    for name, justify in (("channel", "left"), ("scheduled", "right"), ("due", "right")):
        reminders.add_column(name, justify=justify)
    for channel, scheduled, due in summary.reminders:
        reminders.add_row(channel, str(scheduled), str(due))
    dead = Table(title="Dead letters by reason", title_justify="left")
    for name, justify in (("service", "left"), ("topic", "left"), ("reason", "left"), ("count", "right")):
        dead.add_column(name, justify=justify, overflow="fold")
    for consumer, topic, code, n in summary.dead_letters:
        dead.add_row(consumer, topic, code, str(n))
    return Group(decisions, _money_table(summary.money), reminders, dead)
