"""The `wuguan` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import date

from .config import SERVICES, Settings
from .errors import ConfigError


def _definition(service: str):
    if service == "dunning":
        from services.dunning.worker import DEFINITION
    elif service == "billing_guard":
        from services.billing_guard.worker import DEFINITION
    else:
        from services.cards.worker import DEFINITION
    return DEFINITION


def _worker(args) -> int:
    settings = Settings.from_env()
    DEFINITION = _definition(args.service)
    from .runtime.worker import run_worker

    # Load the policy before anything starts, so a bad file stops the worker at once.
    DEFINITION.load_policy(settings)
    run_worker(DEFINITION, settings)
    return 0


def _run(args) -> int:
    from .localstack.stack import run_stack

    asyncio.run(run_stack(feed_sample=not args.no_sample, accounts=args.accounts))
    return 0


async def _migrate() -> int:
    from services.finance.schema import ensure_schema

    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
        applied = await ensure_schema(conn)  # the event store's migrations, then finance's
    finally:
        await conn.close()
    print("applied: " + (", ".join(applied) if applied else "nothing, already up to date"))
    return 0


async def _verify() -> int:
    from .db import connect
    from .eventstore.verify import verify_chain

    deciders = [_definition(service).decider for service in SERVICES]
    claims_made = {d.service: d.claims_made for d in deciders if hasattr(d, "claims_made")}
    conn = await connect(Settings.from_env().database_url)
    try:
        report = await verify_chain(conn, claims_made=claims_made)
    finally:
        await conn.close()
    for problem in report.problems:
        print(f"TAMPERED: {problem}")
    claims = sum(report.claims_checked.values())
    print(f"{'OK' if report.ok else 'FAILED'}: {report.events_checked} events checked"
          f" on {report.chains_checked} chains" + (f", {claims} unique claims" if claims else ""))
    return 0 if report.ok else 1


async def _topics(args) -> int:
    from .localstack.topics import create_topics

    settings = Settings.from_env()
    created = await create_topics(settings.kafka_bootstrap_servers, settings.partitions)
    print("created: " + (", ".join(created) if created else "nothing, all exist"))
    return 0


async def _sample(args) -> int:
    from .localstack.sample_day import publish_sample_day, wait_until_quiet

    settings = Settings.from_env()
    day = date.fromisoformat(args.day) if args.day else date.today()
    sent = await publish_sample_day(
        settings.kafka_bootstrap_servers, day, args.accounts, settled=lambda: wait_until_quiet(settings.database_url)
    )
    print(f"published {sent} events")
    return 0


async def _work_queue(args) -> int:
    import csv
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from services.dunning.domain.work_queue import work_queue

    from .db import connect

    zone = ZoneInfo(args.timezone)
    day = date.fromisoformat(args.day) if args.day else datetime.now(zone).date()
    start = datetime.combine(day, time(0), zone)
    conn = await connect(Settings.from_env().database_url)
    try:
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE service = 'dunning' AND ("
            " (event_type = 'dunning.ReminderDue' AND business_time >= $1 AND business_time < $2)"
            " OR (event_type = 'dunning.DeliveryRecorded' AND business_time >= $1))"
            " ORDER BY global_position",
            start,
            start + timedelta(days=1),
        )
    finally:
        await conn.close()
    queue = work_queue((r["payload"] for r in rows), day, zone)
    columns = ("manager", "dueAt", "accountId", "billId", "overdueMinor", "offenceCount", "channel", "reminderId")
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        for manager, items in queue.items():
            for item in items:
                writer.writerow([manager] + [item[c] for c in columns[1:]])
        return 0
    print(f"manual reminders due {day} ({sum(len(v) for v in queue.values())})")
    for manager, items in queue.items():
        print(f"{manager}:")
        for item in items:
            print(f"  {item['dueAt'][11:16]} {item['accountId']} bill {item['billId']} owes {item['overdueMinor']} fen"
                  f" (offence {item['offenceCount']}, {item['channel']})")
    return 0


async def _cards(args) -> int:
    """C.STOCK / C.DISPOSAL: cards on hand per outlet and face value, or voided cards to destroy."""
    import csv

    from services.cards.domain.projections import disposal_list, outlet_stock

    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'cards' ORDER BY global_position")
    finally:
        await conn.close()
    decisions = [r["payload"] for r in rows]
    writer = csv.writer(sys.stdout) if args.csv else None
    if args.action == "stock":
        if writer:
            writer.writerow(("outletId", "faceValueMinor", "cardsOnHand"))
        for outlet, faces in outlet_stock(decisions).items():
            if args.outlet and outlet != args.outlet:
                continue
            for face, count in sorted(faces.items()):
                if writer:
                    writer.writerow((outlet, face, count))
                else:
                    print(f"{outlet}: {count} cards of {face // 100}.{face % 100:02d} yuan")
        return 0
    header = False
    for outlet, cards in disposal_list(decisions).items():
        if args.outlet and outlet != args.outlet:
            continue
        for card in cards:
            if writer:
                if not header:
                    writer.writerow(card.keys())
                    header = True
                writer.writerow(card.values())
            else:
                print(" ".join(f"{k}={v}" for k, v in card.items()))
    return 0


async def _dlq(args) -> int:
    from .dlq_tools import inspect_dlq, replay_dlq

    settings = Settings.from_env()
    bootstrap = settings.kafka_bootstrap_servers
    if args.action == "inspect":
        return await inspect_dlq(bootstrap, args.topic, args.limit)
    return await replay_dlq(bootstrap, args.topic, args.limit, database_url=settings.database_url)


def _api(args) -> int:
    from services.finance.api import main as serve_api
    from services.finance.settings import ApiSettings

    settings = ApiSettings.from_env()  # refuses to start without WUGUAN_API_SECRET
    asyncio.run(serve_api(settings))
    return 0


def _token_ttl(text: str) -> int:
    from services.finance.tokens import MAX_TTL_S

    try:
        ttl = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {text!r}") from None
    if not 1 <= ttl <= MAX_TTL_S:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_TTL_S} seconds (7 days), got {ttl}")
    return ttl


def _api_token(args) -> int:
    from services.finance.settings import token_keys
    from services.finance.tokens import mint

    print(mint(args.sub, args.role, args.ttl, token_keys(), time.time()))
    return 0


async def _projections(args) -> int:
    from services.finance.projector import checksum, rebuild
    from services.finance.schema import ensure_schema

    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
        await ensure_schema(conn)
        if args.action == "rebuild":
            started = time.perf_counter()
            progress = await rebuild(conn)
            print(f"rebuilt: {progress.applied} events replayed, at position {progress.position}"
                  f" in {time.perf_counter() - started:.2f} s")
        print(await checksum(conn))
    finally:
        await conn.close()
    return 0


async def _explain_charge(args) -> int:
    import json

    from services.billing_guard.decider import TARIFFS, WORKS, account_stream
    from services.billing_guard.domain.charge_story import explain_charge, render

    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
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
    finally:
        await conn.close()
    story = explain_charge([r["payload"] for r in rows], args.usage_id)
    print(json.dumps(story, ensure_ascii=False, indent=2) if args.json else render(story))
    return 0 if story["found"] else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wuguan", description="Wuguan billing back office")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole system locally (embedded broker and Postgres by default)")
    run.add_argument("--no-sample", action="store_true", help="do not feed the sample day")
    run.add_argument("--accounts", type=int, default=200, help="accounts in the sample day")
    worker = sub.add_parser("worker", help="run one service's worker")
    worker.add_argument("service", choices=SERVICES)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("verify", help="walk the event store's hash chain; exit 1 if tampered")
    topics = sub.add_parser("topics", help="create every topic")
    topics.add_argument("action", choices=("create",))
    sample = sub.add_parser("sample", help="publish a sample day to the broker")
    sample.add_argument("--accounts", type=int, default=200)
    sample.add_argument("--day", help="YYYY-MM-DD (default today)")
    queue = sub.add_parser("work-queue", help="manual dunning reminders due on a day, by account manager")
    queue.add_argument("--day", help="YYYY-MM-DD (default today, local time)")
    queue.add_argument("--timezone", default="Asia/Shanghai")
    queue.add_argument("--csv", action="store_true", help="CSV on standard output")
    cards = sub.add_parser("cards", help="cards on hand per outlet, or the voided cards to destroy")
    cards.add_argument("action", choices=("stock", "disposal"))
    cards.add_argument("--outlet", help="one outlet only")
    cards.add_argument("--csv", action="store_true", help="CSV on standard output")
    dlq = sub.add_parser("dlq", help="inspect or replay a dead-letter topic")
    dlq.add_argument("action", choices=("inspect", "replay"))
    dlq.add_argument("topic", help="input topic (its .dlq is read) or the .dlq topic itself")
    dlq.add_argument("--limit", type=int, default=100)
    sub.add_parser("api", help="run the finance read API, its projector and the dashboard")
    token = sub.add_parser("api-token", help="mint a bearer token for the finance API (needs WUGUAN_API_SECRET)")
    token.add_argument("--role", choices=("finance", "auditor"), required=True)
    token.add_argument("--ttl", type=_token_ttl, default=3600, help="seconds until it expires (at most 604800, 7 days)")
    token.add_argument("--sub", default="cli", help="who the token is for (no personal data)")
    projections = sub.add_parser("projections", help="rebuild the finance projections, or print their checksum")
    projections.add_argument("action", choices=("rebuild", "checksum"))
    explain = sub.add_parser("explain-charge", help="the story of one charge from the guard's stored decisions")
    explain.add_argument("usage_id", metavar="usageId")
    explain.add_argument("--account", help="account id (default: found from the usage id)")
    explain.add_argument("--json", action="store_true", help="the story as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "run":
            return _run(args)
        if args.command == "migrate":
            return asyncio.run(_migrate())
        if args.command == "verify":
            return asyncio.run(_verify())
        if args.command == "topics":
            return asyncio.run(_topics(args))
        if args.command == "sample":
            return asyncio.run(_sample(args))
        if args.command == "work-queue":
            return asyncio.run(_work_queue(args))
        if args.command == "cards":
            return asyncio.run(_cards(args))
        if args.command == "explain-charge":
            return asyncio.run(_explain_charge(args))
        if args.command == "api":
            return _api(args)
        if args.command == "api-token":
            return _api_token(args)
        if args.command == "projections":
            return asyncio.run(_projections(args))
        return asyncio.run(_dlq(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
