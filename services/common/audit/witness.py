"""`wuguan verify --checkpoints`: the store checked against the signed checkpoints on Kafka.

The topic is the independent witness: whoever administers Postgres can rewrite a chain and
recompute every hash, or cut its tail and move its head back, and the hash-chain walk still
passes; the signed roots on the topic cannot be recomputed without the signing key. Findings name
the chain and the position:
- a chain shorter than a signed tree (tail truncation);
- a chain whose first n events no longer have the signed root (a rewrite, consistent or not),
  placed between the last signed size that still matches and the first that does not;
- checkpoints missing, reordered, forked, forged or signed by a key not trusted;
- a checkpoint the store says was published that the topic does not hold.
"""
from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from ..eventstore.store import chain_pages, chain_rows_sql
from . import checkpoints, merkle

PAGE = 10_000


@dataclass
class WitnessReport:
    checkpoints: int = 0
    chains: int = 0
    events: int = 0
    unsigned: int = 0  # events after the last checkpoint of their chain (or on chains none names yet)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_against(conn: asyncpg.Connection, records: Sequence, keys: Mapping) -> WitnessReport:
    """`records`: the checkpoint topic's records, in the topic's order per partition."""
    report = WitnessReport()
    by_service: dict[str, list[checkpoints.Checkpoint]] = defaultdict(list)
    for record in records:
        try:
            checkpoint = checkpoints.parse(record.value)
        except ValueError as exc:
            report.problems.append(f"topic record {record.partition}@{record.offset}: {exc}")
            continue
        by_service[checkpoint.service].append(checkpoint)
    stored_services = {r["service"] for r in await conn.fetch("SELECT DISTINCT service FROM audit_checkpoints")}
    heads = {r["chain_id"]: r["seq"] for r in await conn.fetch("SELECT chain_id, seq FROM event_chains WHERE seq > 0")}
    signed: dict[str, int] = {}
    for service in sorted(set(by_service) | stored_services | {c.split("/", 1)[0] for c in heads}):
        history = checkpoints.check_sequence(by_service.get(service, []), keys)
        if not history.digests:
            report.problems.append(f"service {service} has events but no signed checkpoint on the topic")
        report.checkpoints += len(history.digests)
        report.problems += history.problems
        await _compare_stored(conn, service, history, report)
        for chain_id, signed_heads in sorted(history.heads.items()):
            await _check_chain(conn, chain_id, signed_heads, report)
            signed[chain_id] = max(h.tree_size for _, h in signed_heads)
            report.chains += 1
    report.unsigned = sum(max(0, seq - signed.get(chain_id, 0)) for chain_id, seq in heads.items())
    return report


async def _compare_stored(conn: asyncpg.Connection, service: str, history: checkpoints.SignedHistory,
                          report: WitnessReport) -> None:
    rows = await conn.fetch("SELECT seq, digest, published FROM audit_checkpoints WHERE service = $1 ORDER BY seq",
                            service)
    for row in rows:
        on_topic = history.digests.get(row["seq"])
        if on_topic is None and row["published"]:
            report.problems.append(f"checkpoint {service}#{row['seq']} was acknowledged by the broker but is"
                                   " missing from the topic (deleted?)")
        elif on_topic is not None and on_topic != row["digest"]:
            report.problems.append(f"fork: the store's checkpoint {service}#{row['seq']} differs from the topic's")


async def _check_chain(conn: asyncpg.Connection, chain_id: str,
                       heads: list[tuple[str, checkpoints.ChainHead]], report: WitnessReport) -> None:
    """Streams the chain's link hashes through its tree and compares the root at each signed size."""
    frontier, pending, matched = merkle.Frontier(), deque(heads), 0
    async for link in _links(conn, chain_id, max(h.tree_size for _, h in heads)):
        frontier.append(merkle.leaf_hash(link))
        report.events += 1
        while pending and pending[0][1].tree_size <= frontier.size:
            name, head = pending.popleft()
            if head.tree_size != frontier.size or frontier.root() != head.root:
                report.problems.append(
                    f"chain {chain_id}: its first {head.tree_size} events differ from checkpoint {name}:"
                    f" rewritten at a position after {matched} and at or before {head.tree_size}")
                return
            matched = head.tree_size
    if pending:
        name, head = max(pending, key=lambda p: p[1].tree_size)
        after = await conn.fetchval(chain_rows_sql("chain_seq"), chain_id, frontier.size, head.tree_size, 1)
        if after is not None and after <= head.tree_size:
            report.problems.append(f"chain {chain_id}: events {frontier.size + 1}..{after - 1} are missing"
                                   f" (removed from inside the tree checkpoint {name} signed)")
        else:
            report.problems.append(
                f"chain {chain_id}: truncated at position {frontier.size}: checkpoint {name} signed {head.tree_size}"
                f" events (events {frontier.size + 1}..{head.tree_size} are missing)")


async def _links(conn: asyncpg.Connection, chain_id: str, last: int):
    """The chain's link hashes from its first event on, up to `last` or to its first gap."""
    size = 0
    async for rows in chain_pages(conn, chain_id, 0, last, "chain_seq, hash", PAGE):
        for row in rows:
            if row["chain_seq"] != size + 1:
                return
            size += 1
            yield bytes(row["hash"])
