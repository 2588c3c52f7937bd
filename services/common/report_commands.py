"""`wuguan approvals` and `wuguan self-check`: reports read from the stored decisions.

Kept out of cli.py so each report is one small module; cli.py only registers them."""
from __future__ import annotations

import asyncio
import csv
import json
import sys

from .config import Settings

COMMANDS = ("approvals", "self-check")


def add_parsers(sub) -> None:
    approvals = sub.add_parser("approvals", help="suspensions of important customers awaiting approval, by account manager")
    approvals.add_argument("--csv", action="store_true", help="CSV on standard output")
    check = sub.add_parser("self-check", help="the service-standard self-check (服务标准自查) for a month")
    check.add_argument("--period", required=True, help="YYYY-MM")
    form = check.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV on standard output")
    form.add_argument("--json", action="store_true", help="the report as JSON")
    form.add_argument("--html", action="store_true", help="a standalone HTML page (export)")


def run(args) -> int:
    if args.command == "approvals":
        return asyncio.run(_approvals(args))
    from services.finance.self_check import valid_period

    from .cli_failures import OPERATOR_ERROR

    if not valid_period(args.period):
        print(f"wuguan self-check: --period {args.period!r} is not a month: use YYYY-MM (2000-2099) with a month 01-12,"
              " e.g. 2026-11", file=sys.stderr)
        return OPERATOR_ERROR
    return asyncio.run(_self_check(args))


async def _approvals(args) -> int:
    from services.billing_guard.domain.approval_queue import pending_approvals

    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE service = 'billing_guard' AND event_type = ANY($1::text[])"
            " ORDER BY global_position",
            ["guard.SuspensionAwaitingApproval", "guard.SuspensionApproved", "guard.SuspensionDenied"])
    finally:
        await conn.close()
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


async def _self_check(args) -> int:
    from services.finance.self_check import self_check
    from services.finance.self_check_output import read_decisions, render_html, render_text, to_csv
    from services.finance.self_check_policy import load_self_check_policy

    from .db import connect

    policy = load_self_check_policy()
    conn = await connect(Settings.from_env().database_url)
    try:
        decisions = await read_decisions(conn, args.period, policy)
    finally:
        await conn.close()
    report = self_check(decisions, args.period, policy)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    elif args.csv:
        sys.stdout.write(to_csv(report))
    elif args.html:
        sys.stdout.write(render_html(report))
    else:
        print(render_text(report))
    return 0
