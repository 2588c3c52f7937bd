"""Finance's `wuguan` commands (api, api-token, projections, self-check) and its declaration to
the house as the read side: its migrations, and how `wuguan run` starts its API process.

services/composition.py registers DECLARATION; the kernel learns the read side from it alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from services.common.cli_output import working
from services.common.config import Settings
from services.common.service_registry import Command, ReadSideDeclaration


def add_commands(sub) -> dict[str, Command]:
    sub.add_parser("api", help="run the finance read API, its projector and the dashboard")
    token = sub.add_parser("api-token", help="mint a bearer token for the finance API (needs WUGUAN_API_SECRET)")
    token.add_argument("--role", choices=("finance", "auditor"), required=True)
    token.add_argument("--ttl", type=_token_ttl, default=3600, help="seconds until it expires (at most 604800, 7 days)")
    token.add_argument("--sub", default="cli", help="who the token is for (no personal data)")
    projections = sub.add_parser("projections", help="rebuild the finance projections, or print their checksum")
    projections.add_argument("action", choices=("rebuild", "checksum"))
    check = sub.add_parser("self-check", help="the service-standard self-check (服务标准自查) for a month")
    check.add_argument("--period", required=True, help="YYYY-MM")
    form = check.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV on standard output")
    form.add_argument("--json", action="store_true", help="the report as JSON")
    form.add_argument("--html", action="store_true", help="a standalone HTML page (export)")
    return {
        "api": Command(serve_api, serves=True),
        "api-token": Command(api_token),
        "projections": Command(lambda args: asyncio.run(projections_command(args))),
        "self-check": Command(self_check_command),
    }


def serve_api(args) -> int:
    from .api import main as serve
    from .settings import ApiSettings

    settings = ApiSettings.from_env()  # refuses to start without WUGUAN_API_SECRET
    asyncio.run(serve(settings))
    return 0


def _token_ttl(text: str) -> int:
    from .tokens import MAX_TTL_S

    try:
        ttl = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {text!r}") from None
    if not 1 <= ttl <= MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL_S} seconds (7 days), got {ttl}")
    return ttl


def api_token(args) -> int:
    from .settings import token_keys
    from .tokens import mint

    print(mint(args.sub, args.role, args.ttl, token_keys(), time.time()))
    return 0


async def projections_command(args) -> int:
    from services.common.db import connect, connection

    from .projector import checksum, rebuild
    from .schema import ensure_schema

    database_url = Settings.from_env().database_url
    async with connection(database_url) as conn:
        await ensure_schema(conn)
        if args.action == "rebuild":
            started = time.perf_counter()
            with working("rebuilding the finance projections from the log"):
                progress = await rebuild(conn, open_helper=lambda: connect(database_url))
            print(f"rebuilt: {progress.applied} events replayed, at position {progress.position}"
                  f" in {time.perf_counter() - started:.2f} s")
        print(await checksum(conn))
    return 0


def self_check_command(args) -> int:
    from services.common.cli_failures import OPERATOR_ERROR

    from .self_check import valid_period

    if not valid_period(args.period):
        print(f"wuguan self-check: --period {args.period!r} is not a month: use YYYY-MM (2000-2099) with a month 01-12,"
              " e.g. 2026-11", file=sys.stderr)
        return OPERATOR_ERROR
    return asyncio.run(_self_check(args))


async def _self_check(args) -> int:
    from services.common.db import connection

    from .self_check import self_check
    from .self_check_output import read_decisions, render_html, render_text, to_csv
    from .self_check_policy import load_self_check_policy

    policy = load_self_check_policy()
    async with connection(Settings.from_env().database_url) as conn:
        decisions = await read_decisions(conn, args.period, policy)
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


async def migrate(conn) -> list[str]:
    """The event store's migrations, then finance's (`wuguan migrate`)."""
    from .schema import ensure_schema

    return await ensure_schema(conn)


def start_api(env: dict, log_path: Path):
    """`wuguan run`'s API process (the API, its projector and the dashboard) and the dashboard URL."""
    from .process import spawn_api  # imported on use: minting pulls in jwt, which every command would pay for

    return spawn_api(env, log_path)


def development_secret() -> str:
    from .process import DEV_SECRET

    return DEV_SECRET


DECLARATION = ReadSideDeclaration(migrate=migrate, start_api=start_api, development_secret=development_secret,
                                  add_commands=add_commands)
