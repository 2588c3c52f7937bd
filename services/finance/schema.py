"""The finance migrations, applied through the event store's migrator (its `extra` argument)
so they share its lock and its schema_migrations ledger."""
from __future__ import annotations

from importlib import resources

import asyncpg

from services.common.eventstore.migrate import migrate

# Every projection table, in checksum order, with the columns that order its rows.
PROJECTION_TABLES = (
    ("disputes", "ticket_id"),
    ("credit_notes", "credit_note_id"),
    ("arrears", "occurrence_id"),
    ("reminders", "reminder_id"),
    ("late_fees", "decision_id"),
    ("suspensions", "request_id"),
    ("restorations", "decision_id"),
    ("card_replacements", "complaint_id"),
    ("account_decisions", "account_id, global_position"),
    ("ticket_decisions", "ticket_id, global_position"),
    ("decision_causes", "cause_id, global_position"),
    ("timer_origins", "timer_event_id"),
    ("daily_decisions", "day"),
    ("scheduled_reminders", "channel"),
)


def finance_migrations() -> list[tuple[str, str]]:
    folder = resources.files(__package__).joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    # Prefixed so they can never collide with the event store's own file names.
    return [(f"finance/{name}", folder.joinpath(name).read_text()) for name in names]


async def ensure_schema(conn: asyncpg.Connection) -> list[str]:
    """The event store's migrations, then finance's; returns the names applied now."""
    return await migrate(conn, extra=finance_migrations())
