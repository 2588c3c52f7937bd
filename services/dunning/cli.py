"""dunning's `wuguan` command (work-queue) and its declaration to the house.

services/composition.py registers DECLARATION; the kernel learns the service from it alone.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from services.common.cli_output import add_format_options
from services.common.config import Settings
from services.common.service_registry import Command, ServiceDeclaration

if TYPE_CHECKING:
    from services.common.runtime.worker import ServiceDefinition

NAME = "dunning"
WEB_PORT = 8102
QUEUE_COLUMNS = ("manager", "dueAt", "accountId", "billId", "overdueMinor", "offenceCount", "channel", "state",
                 "reminderId")


def add_commands(sub) -> dict[str, Command]:
    queue = sub.add_parser("work-queue", help="manual dunning reminders due on a day, by account manager")
    queue.add_argument("--day", help="YYYY-MM-DD (default today, local time)")
    queue.add_argument("--timezone", default="Asia/Shanghai")
    add_format_options(queue)
    return {"work-queue": Command(lambda args: asyncio.run(work_queue_due(args)))}


async def work_queue_due(args) -> int:
    """The manual reminders (DN.FIRST_LETTER's person channels) due on a day, by account manager."""
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from services.common.cli_output import emit
    from services.common.db import connection

    from .domain.work_queue import QUEUE_INPUTS, work_queue

    zone = ZoneInfo(args.timezone)
    day = date.fromisoformat(args.day) if args.day else datetime.now(zone).date()
    async with connection(Settings.from_env().database_url) as conn:
        # Reminders scheduled days before for this day count too (DN.FIRST_LETTER's person
        # channels), and a delivery may be recorded days after: every decision the queue folds.
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE service = 'dunning' AND event_type = ANY($1::text[])"
            " ORDER BY global_position", list(QUEUE_INPUTS))
    queue = work_queue((r["payload"] for r in rows), day, zone)
    items = [{"manager": manager, **item} for manager, listed in queue.items() for item in listed]
    emit(items, QUEUE_COLUMNS, args.output, title=f"manual reminders due {day} ({len(items)})",
         right=("overdueMinor", "offenceCount"))
    return 0


def _definition() -> ServiceDefinition:
    from .worker import DEFINITION  # imported on use: the worker pulls in faust

    return DEFINITION


DECLARATION = ServiceDeclaration(name=NAME, web_port=WEB_PORT, definition=_definition, add_commands=add_commands)
