"""billing_guard's `wuguan` commands (explain-charge, approvals) and its declaration to the house.

services/composition.py registers DECLARATION; the kernel learns the service from it alone.
"""
from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.decision_types import guard
from services.common.audit import commands as audit_commands
from services.common.config import Settings
from services.common.service_registry import Command, ServiceDeclaration

if TYPE_CHECKING:
    from services.common.runtime.worker import ServiceDefinition

NAME = "billing_guard"
WEB_PORT = 8101
APPROVAL_DECISIONS = [guard.SUSPENSION_AWAITING_APPROVAL, guard.SUSPENSION_APPROVED, guard.SUSPENSION_DENIED]


def add_commands(sub) -> dict[str, Command]:
    explain = sub.add_parser("explain-charge", help="the story of one charge from the guard's stored decisions")
    explain.add_argument("usage_id", metavar="usageId")
    explain.add_argument("--account", help="account id (default: found from the usage id)")
    explain.add_argument("--json", action="store_true", help="the story as JSON")
    explain.add_argument("--proof", type=Path, metavar="FILE",
                         help="also write the story with a signed inclusion proof of each of its decisions")
    approvals = sub.add_parser("approvals", help="suspensions of important customers awaiting approval, by account manager")
    approvals.add_argument("--csv", action="store_true", help="CSV on standard output")
    return {
        "explain-charge": Command(lambda args: asyncio.run(explain_charge(args))),
        "approvals": Command(lambda args: asyncio.run(approvals_due(args))),
    }


async def explain_charge(args) -> int:
    """The story of one charge (CP1-CP5 as decided), optionally with a signed proof of each decision."""
    from services.common.db import connection

    from .decider import TARIFFS, WORKS, account_stream
    from .domain.charge_story import explain_charge as story_of, render

    async with connection(Settings.from_env().database_url) as conn:
        account = args.account
        if account is None:
            account = await conn.fetchval(
                "SELECT payload->'payload'->>'accountId' FROM events WHERE service = 'billing_guard'"
                " AND stream_id LIKE 'guard-account-%' AND payload->'payload'->>'usageId' = $1"
                " ORDER BY global_position LIMIT 1",
                args.usage_id,
            )
        rows = [] if account is None else await conn.fetch(
            "SELECT payload FROM events WHERE service = 'billing_guard' AND (stream_id = ANY($1::text[])"
            " OR (stream_id LIKE 'guard-switch-%' AND payload->'payload'->>'usageId' = $2))"
            " ORDER BY global_position",
            [account_stream(account), TARIFFS, WORKS],
            args.usage_id,
        )
    story = story_of([r["payload"] for r in rows], args.usage_id)
    print(json.dumps(story, ensure_ascii=False, indent=2) if args.json else render(story))
    if args.proof and story["found"]:
        return await audit_commands.write_story_proofs(story, args.proof)
    return 0 if story["found"] else 1


async def approvals_due(args) -> int:
    """CP4.IMPORTANT: suspensions of important customers awaiting approval, by account manager."""
    from services.common.db import connection

    from .domain.approval_queue import pending_approvals

    async with connection(Settings.from_env().database_url) as conn:
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE service = 'billing_guard' AND event_type = ANY($1::text[])"
            " ORDER BY global_position", APPROVAL_DECISIONS)
    queue = pending_approvals(r["payload"] for r in rows)
    columns = ("manager", "approvalDueAt", "accountId", "customerTier", "billId", "undisputedOverdueMinor", "requestId")
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for items in queue.values():
            for item in items:
                writer.writerow([item[c] for c in columns])
        return 0
    print(f"suspensions awaiting approval (CP4.IMPORTANT): {sum(len(v) for v in queue.values())}")
    for manager, items in queue.items():
        print(f"{manager}:")
        for item in items:
            print(f"  due {item['approvalDueAt']} {item['accountId']} ({item['customerTier']}) bill {item['billId']}"
                  f" owes {item['undisputedOverdueMinor']} fen, request {item['requestId']}")
    return 0


def _definition() -> ServiceDefinition:
    from .worker import DEFINITION  # imported on use: the worker pulls in faust

    return DEFINITION


DECLARATION = ServiceDeclaration(name=NAME, web_port=WEB_PORT, definition=_definition, add_commands=add_commands)
