"""The `wuguan` command."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date
from pathlib import Path

from . import report_commands
from .audit import commands as audit_commands
from .cli_failures import failure_line, preflight
from .cli_output import add_format_options, working
from .config import SERVICES, Settings
from .logs import configure_logging


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

    # Load the policy and the signing key, and reach Postgres and the broker, before anything starts,
    # so a bad file or a wrong address stops the worker at once with one line.
    DEFINITION.load_policy(settings)
    if settings.checkpoint_key is not None:
        from .audit.signing import load_private

        load_private(settings.checkpoint_key)
    asyncio.run(preflight(settings.database_url, settings.kafka_bootstrap_servers))
    run_worker(DEFINITION, settings)
    return 0


def _run(args) -> int:
    from .localstack.stack import run_stack

    asyncio.run(run_stack(feed_sample=not args.no_sample, accounts=args.accounts, quiet=args.quiet, follow=args.follow))
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


async def _verify(args) -> int:
    from .db import connect
    from .eventstore.verify import verify_chain

    deciders = [_definition(service).decider for service in SERVICES]
    claims_made = {d.service: d.claims_made for d in deciders if hasattr(d, "claims_made")}
    conn = await connect(Settings.from_env().database_url)
    try:
        with working("walking the hash chain"):
            report = await verify_chain(conn, claims_made=claims_made)
        for problem in report.problems:
            print(f"TAMPERED: {problem}")
        claims = sum(report.claims_checked.values())
        print(f"{'OK' if report.ok else 'FAILED'}: {report.events_checked} events checked"
              f" on {report.chains_checked} chains" + (f", {claims} unique claims" if claims else ""))
        # The walk checks each row against its hash; the checkpoints, the hashes against the witness.
        witnessed = await audit_commands.verify_checkpoints(args, conn) if args.checkpoints else 0
    finally:
        await conn.close()
    return 0 if report.ok and not witnessed else 1


async def _topics(args) -> int:
    from .localstack.topics import create_topics

    settings = Settings.from_env()
    created = await create_topics(settings.kafka_bootstrap_servers, settings.partitions, settings.checkpoint_topic)
    print("created: " + (", ".join(created) if created else "nothing, all exist"))
    return 0


async def _sample(args) -> int:
    from .localstack.sample_day import publish_sample_day, wait_until_quiet

    settings = Settings.from_env()
    day = date.fromisoformat(args.day) if args.day else date.today()
    with working(f"publishing a sample day for {args.accounts} accounts, wave by wave as each is decided"):
        sent = await publish_sample_day(
            settings.kafka_bootstrap_servers, day, args.accounts, settled=lambda: wait_until_quiet(settings.database_url)
        )
    print(f"published {sent} events")
    return 0


async def _work_queue(args) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from services.dunning.domain.work_queue import QUEUE_INPUTS, work_queue

    from .cli_output import emit
    from .db import connect

    zone = ZoneInfo(args.timezone)
    day = date.fromisoformat(args.day) if args.day else datetime.now(zone).date()
    conn = await connect(Settings.from_env().database_url)
    try:
        # Reminders scheduled days before for this day count too (DN.FIRST_LETTER's person
        # channels), and a delivery may be recorded days after: every decision the queue folds.
        rows = await conn.fetch(
            "SELECT payload FROM events WHERE service = 'dunning' AND event_type = ANY($1::text[])"
            " ORDER BY global_position", list(QUEUE_INPUTS))
    finally:
        await conn.close()
    queue = work_queue((r["payload"] for r in rows), day, zone)
    columns = ("manager", "dueAt", "accountId", "billId", "overdueMinor", "offenceCount", "channel", "state", "reminderId")
    items = [{"manager": manager, **item} for manager, listed in queue.items() for item in listed]
    emit(items, columns, args.output, title=f"manual reminders due {day} ({len(items)})",
         right=("overdueMinor", "offenceCount"))
    return 0


async def _cards(args) -> int:
    """C.STOCK / C.DISPOSAL: cards on hand per outlet and face value, or voided cards to destroy."""
    from services.cards.domain.projections import disposal_list, outlet_stock

    from .cli_output import emit
    from .db import connect

    conn = await connect(Settings.from_env().database_url)
    try:
        rows = await conn.fetch("SELECT payload FROM events WHERE service = 'cards' ORDER BY global_position")
    finally:
        await conn.close()
    decisions = [r["payload"] for r in rows]
    wanted = (lambda outlet: not args.outlet or outlet == args.outlet)
    if args.action == "stock":
        stock = [{"outletId": outlet, "faceValueMinor": face, "cardsOnHand": count}
                 for outlet, faces in outlet_stock(decisions).items() if wanted(outlet)
                 for face, count in sorted(faces.items())]
        emit(stock, ("outletId", "faceValueMinor", "cardsOnHand"), args.output, title="cards on hand (C.STOCK)",
             right=("faceValueMinor", "cardsOnHand"))
        return 0
    # Money as integer fen columns, not the {"amountMinor", "currency"} objects of the decisions.
    disposal = [{**{k: v for k, v in card.items() if k not in ("faceValue", "transferredValue")},
                 "faceValueMinor": (card.get("faceValue") or {}).get("amountMinor"),
                 "transferredMinor": (card.get("transferredValue") or {}).get("amountMinor")}
                for outlet, cards in disposal_list(decisions).items() if wanted(outlet) for card in cards]
    columns = ("outletId", "cardSerial", "batchId", "complaintId", "voidedAt", "faceValueMinor", "transferredMinor",
               "replacedByCardSerial")
    emit(disposal, columns, args.output, title="voided cards to destroy (C.DISPOSAL)",
         right=("faceValueMinor", "transferredMinor"))
    return 0


async def _dlq(args) -> int:
    from .dlq_tools import inspect_dlq, replay_dlq

    settings = Settings.from_env()
    bootstrap = settings.kafka_bootstrap_servers
    if args.action == "inspect":
        return await inspect_dlq(bootstrap, args.topic, args.limit, getattr(args, "output", "table"))
    with working(f"replaying the dead letters of {args.topic}"):
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
            with working("rebuilding the finance projections from the log"):
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
    if args.proof and story["found"]:
        return await audit_commands.write_story_proofs(story, args.proof)
    return 0 if story["found"] else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wuguan", description="Wuguan billing back office")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole system locally (embedded broker and Postgres by default)")
    run.add_argument("--no-sample", action="store_true", help="do not feed the sample day")
    run.add_argument("--accounts", type=int, default=200, help="accounts in the sample day")
    run.add_argument("--quiet", action="store_true", help="no progress line: the connection block and the summary only")
    run.add_argument("--follow", action="store_true", help="also print every decision as it is published")
    worker = sub.add_parser("worker", help="run one service's worker")
    worker.add_argument("service", choices=SERVICES)
    sub.add_parser("migrate", help="apply database migrations")
    verify = sub.add_parser("verify", help="walk the event store's hash chains; exit 1 if tampered")
    verify.add_argument("--checkpoints", action="store_true",
                        help="also check the store against the signed checkpoints on Kafka")
    verify.add_argument("--topic", help="the checkpoint topic to read (default $WUGUAN_CHECKPOINT_TOPIC)")
    audit_commands.add_public_key_option(verify)
    audit_commands.add_parsers(sub)
    topics = sub.add_parser("topics", help="create every topic")
    topics.add_argument("action", choices=("create",))
    sample = sub.add_parser("sample", help="publish a sample day to the broker")
    sample.add_argument("--accounts", type=int, default=200)
    sample.add_argument("--day", help="YYYY-MM-DD (default today)")
    queue = sub.add_parser("work-queue", help="manual dunning reminders due on a day, by account manager")
    queue.add_argument("--day", help="YYYY-MM-DD (default today, local time)")
    queue.add_argument("--timezone", default="Asia/Shanghai")
    add_format_options(queue)
    cards = sub.add_parser("cards", help="cards on hand per outlet, or the voided cards to destroy")
    cards.add_argument("action", choices=("stock", "disposal"))
    cards.add_argument("--outlet", help="one outlet only")
    add_format_options(cards)
    dlq = sub.add_parser("dlq", help="inspect or replay a dead-letter topic")
    dlq.add_argument("action", choices=("inspect", "replay"))
    dlq.add_argument("topic", help="input topic (its .dlq is read) or the .dlq topic itself")
    dlq.add_argument("--limit", type=int, default=100, help="the N most recent dead letters (default 100)")
    add_format_options(dlq)
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
    explain.add_argument("--proof", type=Path, metavar="FILE",
                         help="also write the story with a signed inclusion proof of each of its decisions")
    report_commands.add_parsers(sub)
    _add_global_options(p, sub)
    return p


def _add_global_options(main_parser: argparse.ArgumentParser, commands) -> None:
    """--debug and --log-format, before or after the command (`wuguan --debug verify`, `wuguan verify --debug`)."""
    for target, default in ((main_parser, None), *((c, argparse.SUPPRESS) for c in commands.choices.values())):
        target.add_argument("--debug", action="store_true", default=False if default is None else default,
                            help="show the traceback of a failure instead of one line")
        target.add_argument("--log-format", choices=("text", "json"), default=default,
                            help="text (default, for people) or json (one object a line; or WUGUAN_LOG_FORMAT)")


def _failed(args, exc: Exception) -> int:
    """One line naming what failed and how to fix it (cli_failures); --debug re-raises."""
    if args.debug:
        raise exc
    line, code = failure_line(exc)
    print(f"wuguan {args.command}: {line}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_format, one_shot=args.command not in ("worker", "run", "api"))
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "run":
            return _run(args)
        if args.command == "migrate":
            return asyncio.run(_migrate())
        if args.command == "verify":
            return asyncio.run(_verify(args))
        if args.command == "keys":
            return audit_commands.keys_generate(args)
        if args.command == "prove":
            return asyncio.run(audit_commands.prove(args))
        if args.command == "check-proof":
            return audit_commands.check_proof_file(args)
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
        if args.command in report_commands.COMMANDS:
            return report_commands.run(args)
        return asyncio.run(_dlq(args))
    except Exception as exc:
        return _failed(args, exc)


if __name__ == "__main__":
    sys.exit(main())
