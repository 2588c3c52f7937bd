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

from ..eventstore.store import chains_in_log_order
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
        await _check_chains(conn, history.heads, report)
        for chain_id, signed_heads in history.heads.items():
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


@dataclass
class _Replay:
    """One chain's link hashes streamed through its tree, compared with each signed size in turn."""

    chain_id: str
    pending: deque  # (checkpoint name, ChainHead) not yet reached, smallest tree first
    last: int  # the largest tree signed
    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)
    matched: int = 0
    done: bool = False
    next_found: int | None = None  # the number found after a gap
    problems: list[str] = field(default_factory=list)

    def take(self, seq: int, link: bytes) -> bool:
        """The chain's next event in position order; False once its replay is over."""
        if seq != self.frontier.size + 1:  # a gap: within a chain positions rise with numbers
            self.next_found, self.done = seq, True
            return False
        self.frontier.append(merkle.leaf_hash(link))
        while self.pending and self.pending[0][1].tree_size <= self.frontier.size:
            name, head = self.pending.popleft()
            if head.tree_size != self.frontier.size or self.frontier.root() != head.root:
                self.problems.append(
                    f"chain {self.chain_id}: its first {head.tree_size} events differ from checkpoint {name}:"
                    f" rewritten at a position after {self.matched} and at or before {head.tree_size}")
                self.pending.clear()
                self.done = True
                return True
            self.matched = head.tree_size
        self.done = self.frontier.size >= self.last
        return True

    def finish(self) -> None:
        if not self.pending:
            return
        name, head = max(self.pending, key=lambda p: p[1].tree_size)
        size = self.frontier.size
        if self.next_found is not None and self.next_found <= head.tree_size:
            self.problems.append(f"chain {self.chain_id}: events {size + 1}..{self.next_found - 1} are missing"
                                 f" (removed from inside the tree checkpoint {name} signed)")
        else:
            self.problems.append(
                f"chain {self.chain_id}: truncated at position {size}: checkpoint {name} signed {head.tree_size}"
                f" events (events {size + 1}..{head.tree_size} are missing)")


async def _check_chains(conn: asyncpg.Connection, heads: Mapping[str, list[tuple[str, checkpoints.ChainHead]]],
                        report: WitnessReport) -> None:
    """Streams each chain's link hashes through its tree and compares the root at each signed size.
    The service's chains are read together, once, in position order (no index holds a chain's
    events: migration 0015); each chain's problems are told in the chains' order."""
    replays = {c: _Replay(c, deque(h), max(t.tree_size for _, t in h)) for c, h in heads.items()}

    def replaying() -> list[str]:
        return [c for c, r in replays.items() if not r.done and r.last > 0]

    async for page in chains_in_log_order(conn, replaying, "chain_seq, hash", page=PAGE):
        for _, chain_id, seq, link in page:
            replay = replays[chain_id]
            if not replay.done and replay.take(seq, bytes(link)):
                report.events += 1
    for chain_id in sorted(replays):
        replays[chain_id].finish()
        report.problems += replays[chain_id].problems
