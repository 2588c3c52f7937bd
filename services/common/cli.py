"""The `wuguan` command's kernel: the commands every house has (run, worker, migrate, verify, the
audit commands, topics, sample, dlq), and the parser and dispatch that add each service's and
finance's commands from the ServiceRegistry the composition root passes in. The kernel names no
service: `wuguan` is services/composition.py's main (also `python -m services`).
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from datetime import date

from .audit import commands as audit_commands
from .cli_failures import failure_line, preflight
from .cli_output import add_format_options, working
from .config import Settings, gc_young_threshold
from .logs import configure_logging
from .runtime.gc_tuning import tune_collector
from .service_registry import Command, ServiceRegistry


def _worker(registry: ServiceRegistry, args) -> int:
    settings = Settings.from_env(web_ports=registry.web_ports)
    definition = registry.service(args.service).definition()
    from .runtime.worker import run_worker

    # Load the policy and the signing key, and reach Postgres and the broker, before anything starts,
    # so a bad file or a wrong address stops the worker at once with one line.
    definition.load_policy(settings)
    if settings.checkpoint_key is not None:
        from .audit.signing import load_private

        load_private(settings.checkpoint_key)
    asyncio.run(preflight(settings.database_url, settings.kafka_bootstrap_servers))
    run_worker(definition, settings)
    return 0


def _run(registry: ServiceRegistry, args) -> int:
    from .localstack.stack import run_stack

    asyncio.run(run_stack(registry, feed_sample=not args.no_sample, accounts=args.accounts, quiet=args.quiet,
                          follow=args.follow))
    return 0


async def _migrate(registry: ServiceRegistry) -> int:
    from .db import connection

    async with connection(Settings.from_env().database_url) as conn:
        applied = await registry.read_side.migrate(conn)  # the event store's migrations, then finance's
    print("applied: " + (", ".join(applied) if applied else "nothing, already up to date"))
    return 0


async def _verify(registry: ServiceRegistry, args) -> int:
    from .db import connection
    from .eventstore.verify import verify_chain

    deciders = [service.definition().decider for service in registry.services]
    claims_made = {d.service: d.claims_made for d in deciders if hasattr(d, "claims_made")}
    async with connection(Settings.from_env().database_url) as conn:
        with working("walking the hash chain"):
            report = await verify_chain(conn, claims_made=claims_made)
        for problem in report.problems:
            print(f"TAMPERED: {problem}")
        claims = sum(report.claims_checked.values())
        print(f"{'OK' if report.ok else 'FAILED'}: {report.events_checked} events checked"
              f" on {report.chains_checked} chains" + (f", {claims} unique claims" if claims else ""))
        # The walk checks each row against its hash; the checkpoints, the hashes against the witness.
        witnessed = await audit_commands.verify_checkpoints(args, conn) if args.checkpoints else 0
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


async def _dlq(args) -> int:
    from .dlq_tools import inspect_dlq, replay_dlq

    settings = Settings.from_env()
    bootstrap = settings.kafka_bootstrap_servers
    if args.action == "inspect":
        return await inspect_dlq(bootstrap, args.topic, args.limit, getattr(args, "output", "table"))
    with working(f"replaying the dead letters of {args.topic}"):
        return await replay_dlq(bootstrap, args.topic, args.limit, database_url=settings.database_url)


def _add_kernel_parsers(sub, registry: ServiceRegistry) -> dict[str, Command]:
    run = sub.add_parser("run", help="run the whole system locally (embedded broker and Postgres by default)")
    run.add_argument("--no-sample", action="store_true", help="do not feed the sample day")
    run.add_argument("--accounts", type=int, default=200, help="accounts in the sample day")
    run.add_argument("--quiet", action="store_true", help="no progress line: the connection block and the summary only")
    run.add_argument("--follow", action="store_true", help="also print every decision as it is published")
    worker = sub.add_parser("worker", help="run one service's worker")
    worker.add_argument("service", choices=registry.names)
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
    dlq = sub.add_parser("dlq", help="inspect or replay a dead-letter topic")
    dlq.add_argument("action", choices=("inspect", "replay"))
    dlq.add_argument("topic", help="input topic (its .dlq is read) or the .dlq topic itself")
    dlq.add_argument("--limit", type=int, default=100, help="the N most recent dead letters (default 100)")
    add_format_options(dlq)
    return _kernel_commands(registry)


def _kernel_commands(registry: ServiceRegistry) -> dict[str, Command]:
    def run_async(command):
        return lambda args: asyncio.run(command(args))

    return {
        "run": Command(functools.partial(_run, registry), serves=True),
        "worker": Command(functools.partial(_worker, registry), serves=True),
        "migrate": Command(lambda args: asyncio.run(_migrate(registry))),
        "verify": Command(run_async(functools.partial(_verify, registry))),
        "keys": Command(audit_commands.keys_generate),
        "prove": Command(run_async(audit_commands.prove)),
        "check-proof": Command(audit_commands.check_proof_file),
        "topics": Command(run_async(_topics)),
        "sample": Command(run_async(_sample)),
        "dlq": Command(run_async(_dlq)),
    }


def build(registry: ServiceRegistry) -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser, and how to run each command: the kernel's, then each service's and finance's."""
    p = argparse.ArgumentParser(prog="wuguan", description="Wuguan billing back office")
    sub = p.add_subparsers(dest="command", required=True)
    commands = _add_kernel_parsers(sub, registry)
    for add_commands in registry.command_adders():
        added = add_commands(sub)
        clash = commands.keys() & added.keys()
        if clash:
            raise ValueError(f"wuguan {sorted(clash)} declared twice")
        commands.update(added)
    _add_global_options(p, sub)
    return p, commands


def parser(registry: ServiceRegistry) -> argparse.ArgumentParser:
    return build(registry)[0]


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


def main(registry: ServiceRegistry, argv: list[str] | None = None) -> int:
    main_parser, commands = build(registry)
    args = main_parser.parse_args(argv)
    command = commands[args.command]
    configure_logging(args.log_format, one_shot=not command.serves)
    try:
        if not command.serves:
            # A one-shot command may read the store in bulk (`wuguan verify` decodes every decision,
            # the finance rebuild folds them): the collector is set as a worker's (gc_tuning), as
            # CPython's default scanned the young generation every 700 allocations (run 25).
            tune_collector(gc_young_threshold(os.environ))
        return command.run(args)
    except Exception as exc:
        return _failed(args, exc)
