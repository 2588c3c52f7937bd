"""Signs checkpoints of a service's chains and publishes them (issue 14, A.TAMPER_EVIDENT).

Every `every_decisions` new events, or every `every_s` seconds, whichever comes first, one worker
of the service (the one holding the service's advisory lock) reads what each chain gained since
its last checkpoint, checks that it still extends the signed tree (the event at the signed size
keeps its hash, every new event links to the one before), grows the chain's Merkle tree from its
stored frontier, and signs the new heads with the consistency proofs. A chain rewritten or cut
short is refused there and then (the others are still signed), so a rewrite is caught when the
next checkpoint is due, not only at the next verify.

The tables this reads are writable by the database's administrator, the attacker this defends
against. So the checkpointer trusts them only as far as its own signatures go: what it signs is
kept in memory and checked against the tables before each checkpoint; at start, each chain's
stored tree must match the head of a checkpoint that verifies with its key. An administrator who
rolls the tables back to an older signed state makes the next checkpoint fork from the history
on the topic, which `wuguan verify --checkpoints` reports.

Only chains of the service's own input topics and partitions are signed: a chain an
administrator invents is refused, not witnessed. The trees are built off the event loop (a
thread), from pages of link hashes, at most MAX_LEAVES per chain per checkpoint; no transaction
is open meanwhile, so readers that wait for the oldest running transaction are never held up.

Checkpoints are stored first and published after (an outbox): a broker that is away delays
publication, retried with backoff and counted, and never stops decisions.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ..audit import checkpoints, merkle
from ..audit.signing import key_id
from ..eventstore.store import chain_genesis, chain_rows_sql, chains_in_log_order, first_anchor_position
from ..timefmt import rfc3339
from .metrics import (
    CHECKPOINT_FAILURES, CHECKPOINT_LAST_PUBLISHED, CHECKPOINT_SECONDS, CHECKPOINTS_ENABLED, CHECKPOINTS_SIGNED,
)

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 10
MAX_LEAVES = 100_000  # per chain per checkpoint: a first checkpoint over a big store comes in steps
PAGE = 5_000
LOCK_NAMESPACE = 7_700_014  # pg advisory lock (namespace, hash of the service): one signer per service


class ChainRefused(Exception):
    """A chain no longer extends the tree its last checkpoint signed: it was rewritten or cut."""


@dataclass(frozen=True)
class SignedTree:
    """A chain's tree as last signed: what the tables must still say about it."""

    size: int
    root: bytes
    head_hash: bytes
    frontier: tuple[bytes, ...]


@dataclass
class Grown:
    head: checkpoints.ChainHead
    tree: SignedTree


class Checkpointer:
    def __init__(self, *, service: str, pool, producer, key, every_decisions: int, every_s: float,
                 topics: Iterable[str] | None = None, partitions: int | None = None, poll_s: float = 1.0,
                 topic: str = checkpoints.TOPIC):
        self.service = service
        self.pool = pool
        self.producer = producer
        self.key = key
        self.public = key.public_key()
        self.key_id = key_id(self.public)
        self.every_decisions = every_decisions
        self.every_s = every_s
        self.topics = set(topics) if topics is not None else None
        self.partitions = partitions
        self.poll_s = poll_s
        self.topic = topic
        self._signed = asyncio.Event()
        self._trees: dict[str, SignedTree] | None = None  # None until anchored to a verified checkpoint
        self._last: tuple[int, str] | None = None

    async def run(self) -> None:
        CHECKPOINTS_ENABLED.labels(self.service).set(1)
        for stage in ("refused", "sign", "publish"):
            CHECKPOINT_FAILURES.labels(self.service, stage)
        CHECKPOINT_LAST_PUBLISHED.labels(self.service).set(await self._last_published_at())
        publisher = asyncio.create_task(self._publish_forever(), name=f"{self.service}-checkpoint-publish")
        try:
            while True:
                await self._sign_when_due()
                await asyncio.sleep(self.poll_s)
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)

    async def _last_published_at(self) -> float:
        """When the service last had a checkpoint acknowledged: a worker that keeps restarting
        must not reset the WuguanCheckpointsStopped clock. Its start when none is known."""
        try:
            async with self.pool.acquire() as conn:
                last = await conn.fetchval("SELECT max(signed_at) FROM audit_checkpoints WHERE service = $1"
                                           " AND published", self.service)
        except Exception:  # the database may be away at start; the clock then starts now
            last = None
        return last.timestamp() if last is not None else time.time()

    async def _sign_when_due(self) -> None:
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn:
                if await self.checkpoint(conn):
                    CHECKPOINT_SECONDS.labels(self.service).observe(time.perf_counter() - started)
                    self._signed.set()
        except asyncio.CancelledError:
            raise
        except ChainRefused as exc:
            CHECKPOINT_FAILURES.labels(self.service, "refused").inc()
            log.error("checkpoint refused: %s", exc)
        except Exception:  # the database may be away; the next round tries again
            CHECKPOINT_FAILURES.labels(self.service, "sign").inc()
            log.warning("checkpoint failed", exc_info=True)

    async def checkpoint(self, conn: asyncpg.Connection, *, force: bool = False) -> int | None:
        """Signs and stores the next checkpoint if one is due (or `force`); its number, or None.
        Raises ChainRefused when the service's signed history itself no longer holds."""
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", LOCK_NAMESPACE, self.service):
            return None  # another worker of the service is signing
        try:
            return await self._checkpoint_locked(conn, force)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_NAMESPACE, self.service)

    async def _checkpoint_locked(self, conn: asyncpg.Connection, force: bool) -> int | None:
        await conn.execute("INSERT INTO audit_checkpoint_heads (service) VALUES ($1) ON CONFLICT DO NOTHING",
                           self.service)
        head = await conn.fetchrow("SELECT seq, digest, decisions, signed_at FROM audit_checkpoint_heads"
                                   " WHERE service = $1", self.service)
        chains = await conn.fetch("SELECT chain_id, seq, hash FROM event_chains WHERE starts_with(chain_id, $1)"
                                  " ORDER BY chain_id", f"{self.service}/")
        now = datetime.now(timezone.utc)
        if not (force or self._due(head, sum(c["seq"] for c in chains), now)):
            return None
        trees = await self._anchored_trees(conn, head)
        grown, refused = [], []
        links = await _new_links(conn, {c["chain_id"]: _wanted(c, trees.get(c["chain_id"])) for c in chains
                                        if self._signable(c["chain_id"]) and _moved(c, trees.get(c["chain_id"]))})
        for chain in chains:
            if not self._signable(chain["chain_id"]):
                refused.append(f"chain {chain['chain_id']} is not one of {self.service}'s input partitions")
            elif chain["chain_id"] in links:
                try:
                    grown.append(await self._grow(conn, chain, trees.get(chain["chain_id"]), links[chain["chain_id"]]))
                except ChainRefused as exc:
                    refused.append(str(exc))
        signed_total = sum(t.size for t in {**trees, **{g.head.chain_id: g.tree for g in grown}}.values())
        seq = await self._sign(conn, head, grown, now, signed_total)
        for problem in refused:  # the other chains are signed all the same
            CHECKPOINT_FAILURES.labels(self.service, "refused").inc()
            log.error("checkpoint %s#%d leaves out %s", self.service, seq, problem)
        return seq

    def _due(self, head: asyncpg.Record, total: int, now: datetime) -> bool:
        if head["signed_at"] is None:
            return True
        return (total - head["decisions"] >= self.every_decisions
                or abs((now - head["signed_at"]).total_seconds()) >= self.every_s)

    def _signable(self, chain_id: str) -> bool:
        if self.topics is None:
            return True
        _, topic, partition = (chain_id.split("/", 2) + ["", ""])[:3]
        if topic == "-" and not partition:
            return True  # events without an input partition (store.default_chain)
        return topic in self.topics and partition.isdigit() and (
            self.partitions is None or int(partition) < self.partitions)

    async def _anchored_trees(self, conn: asyncpg.Connection, head: asyncpg.Record) -> dict[str, SignedTree]:
        """The chains' trees as this service last signed them. Anchored once, at the first
        checkpoint, to stored checkpoints that verify with the key; from then on, the tables
        must agree with what this checkpointer signed itself."""
        rows = await conn.fetch("SELECT chain_id, tree_size, root, head_hash, frontier, signed_seq"
                                " FROM audit_chain_trees WHERE service = $1", self.service)
        stored = {r["chain_id"]: SignedTree(r["tree_size"], bytes(r["root"]), bytes(r["head_hash"]),
                                            tuple(bytes(n) for n in r["frontier"])) for r in rows}
        if self._trees is None:
            await self._anchor(conn, head, rows, stored)
        if (head["seq"], head["digest"]) != self._last or stored != self._trees:
            raise ChainRefused(f"{self.service}'s checkpoint tables no longer say what it signed"
                               " (rolled back or edited); not signing over them")
        return stored

    async def _anchor(self, conn: asyncpg.Connection, head: asyncpg.Record, rows, stored) -> None:
        seqs = {r["signed_seq"] for r in rows} | ({head["seq"]} if head["seq"] else set())
        messages = {r["seq"]: checkpoints.parse(bytes(r["message"])) for r in await conn.fetch(
            "SELECT seq, message FROM audit_checkpoints WHERE service = $1 AND seq = ANY($2::bigint[])",
            self.service, list(seqs))}
        keys = {self.key_id: self.public}
        for seq, cp in messages.items():
            if cp.signed_by(keys) or cp.service != self.service or cp.seq != seq:
                raise ChainRefused(f"stored checkpoint {self.service}#{seq} does not verify with the signing key")
        last = messages.get(head["seq"])
        if head["seq"] and (last is None or checkpoints.digest(last.body) != head["digest"]):
            raise ChainRefused(f"{self.service}'s last checkpoint #{head['seq']} is not the one stored")
        for r in rows:
            signed = {h.chain_id: h for h in messages[r["signed_seq"]].chains()} if r["signed_seq"] in messages else {}
            h, tree = signed.get(r["chain_id"]), stored[r["chain_id"]]
            if h is None or (h.tree_size, h.root, h.head_hash) != (tree.size, tree.root, tree.head_hash) \
                    or merkle.Frontier(tree.size, tree.frontier).root() != tree.root:
                raise ChainRefused(f"chain {r['chain_id']}: its stored tree is not the one checkpoint"
                                   f" {self.service}#{r['signed_seq']} signed")
        self._trees, self._last = stored, (head["seq"], head["digest"])

    async def _grow(self, conn: asyncpg.Connection, chain: asyncpg.Record, tree: SignedTree | None,
                    links: list[bytes] | ChainRefused) -> Grown:
        """The chain's tree grown by `links` (_new_links), the hashes of its events after the tree."""
        chain_id, size = chain["chain_id"], tree.size if tree else 0
        if chain["seq"] < size:
            raise ChainRefused(f"chain {chain_id}: holds {chain['seq']} events, its last checkpoint signed {size}"
                               f" (events {chain['seq'] + 1}..{size} removed)")
        if size and await conn.fetchval(chain_rows_sql("hash"), chain_id, size - 1, size, 1) != tree.head_hash:
            raise ChainRefused(f"chain {chain_id}: event {size} is not the one its last checkpoint signed"
                               " (the chain was rewritten)")
        if isinstance(links, ChainRefused):
            raise links
        upto = size + len(links)
        if upto == chain["seq"] and (links[-1] if links else (tree.head_hash if tree else None)) != bytes(chain["hash"]):
            raise ChainRefused(f"chain {chain_id}: its head does not match its last event")
        root, proof, frontier = await asyncio.to_thread(_extend, links, size, tree.frontier if tree else ())
        head_hash = links[-1] if links else tree.head_hash
        return Grown(checkpoints.ChainHead(chain_id, upto, root, head_hash, size, tuple(proof)),
                     SignedTree(upto, root, head_hash, tuple(frontier)))

    async def _sign(self, conn: asyncpg.Connection, head: asyncpg.Record, grown: list[Grown], now: datetime,
                    signed_total: int) -> int:
        seq = head["seq"] + 1
        message = checkpoints.build(service=self.service, seq=seq, previous=head["digest"], signed_at=rfc3339(now),
                                    key=self.key, key_id=self.key_id, chains=[g.head for g in grown])
        body_digest = checkpoints.digest(checkpoints.parse(message).body)
        async with conn.transaction():
            await conn.execute("INSERT INTO audit_checkpoints (service, seq, message, digest, signed_at)"
                               " VALUES ($1, $2, $3, $4, $5)", self.service, seq, message, body_digest, now)
            await conn.execute("UPDATE audit_checkpoint_heads SET seq = $2, digest = $3, decisions = $4,"
                               " signed_at = $5 WHERE service = $1", self.service, seq, body_digest, signed_total, now)
            await conn.executemany(
                "INSERT INTO audit_chain_trees (chain_id, service, tree_size, root, head_hash, frontier, signed_seq)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain_id) DO UPDATE SET tree_size = excluded.tree_size,"
                " root = excluded.root, head_hash = excluded.head_hash, frontier = excluded.frontier,"
                " signed_seq = excluded.signed_seq",
                [(g.head.chain_id, self.service, g.tree.size, g.tree.root, g.tree.head_hash, list(g.tree.frontier), seq)
                 for g in grown])
        self._trees.update({g.head.chain_id: g.tree for g in grown})
        self._last = (seq, body_digest)
        CHECKPOINTS_SIGNED.labels(self.service).inc()
        return seq

    async def _publish_forever(self) -> None:
        while True:
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or the broker was away: next round
                log.warning("checkpoint publish: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._signed.wait(), timeout=self.poll_s * 5)
            except asyncio.TimeoutError:
                pass
            self._signed.clear()

    async def publish_pending(self) -> int:
        """Publishes the stored checkpoints the broker has not acknowledged, in order. Holds no
        database connection while it waits for the broker."""
        async with self.pool.acquire() as conn:
            pending = await conn.fetch("SELECT seq, message FROM audit_checkpoints WHERE service = $1"
                                       " AND NOT published ORDER BY seq", self.service)
        for row in pending:
            await self._send(bytes(row["message"]))
            async with self.pool.acquire() as conn:
                await conn.execute("UPDATE audit_checkpoints SET published = true WHERE service = $1 AND seq = $2",
                                   self.service, row["seq"])
            CHECKPOINT_LAST_PUBLISHED.labels(self.service).set(time.time())
        return len(pending)

    async def _send(self, message: bytes) -> None:
        def counted(_state) -> None:
            CHECKPOINT_FAILURES.labels(self.service, "publish").inc()

        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=30), before_sleep=counted,
                                           stop=stop_after_delay(300), retry=retry_if_exception_type(Exception),
                                           reraise=True):
            with attempt:
                # Bounded: the producer would wait up to its metadata timeout (a minute) for a topic it cannot
                # find. A send that goes out after all is a repeat, which the witness accepts.
                await asyncio.wait_for(self.producer.send_and_wait(self.topic, message, key=self.service.encode()),
                                       SEND_TIMEOUT_S)


def _moved(chain: asyncpg.Record, tree: SignedTree | None) -> bool:
    """The chain's head is not the one last signed: it grew (or was altered, which _grow refuses)."""
    return tree is None or tree.size != chain["seq"] or tree.head_hash != bytes(chain["hash"])


def _wanted(chain: asyncpg.Record, tree: SignedTree | None) -> tuple[int, int, bytes]:
    """(size, upto, prev) of a chain's events to sign: after its tree, at most MAX_LEAVES of them."""
    size = tree.size if tree else 0
    prev = tree.head_hash if tree else chain_genesis(chain["chain_id"])
    return size, max(size, min(chain["seq"], size + MAX_LEAVES)), prev


@dataclass
class _Following:
    """One chain's events after its tree, each checked to follow on from the one before."""

    chain_id: str
    size: int
    upto: int
    prev: bytes
    links: list[bytes] = field(default_factory=list)
    refused: ChainRefused | None = None

    @property
    def done(self) -> bool:
        return self.refused is not None or self.size + len(self.links) >= self.upto

    def take(self, seq: int, prev_hash: bytes, link: bytes) -> None:
        if self.done or seq <= self.size:  # signed already: read as part of its anchor's segment
            return
        expected = self.size + len(self.links) + 1
        if seq != expected or prev_hash != self.prev:
            self.refused = ChainRefused(f"chain {self.chain_id}: event {expected} does not follow on from event"
                                        f" {expected - 1}")
            return
        self.prev = link
        self.links.append(link)

    def result(self) -> list[bytes] | ChainRefused:
        if not self.done:
            return ChainRefused(f"chain {self.chain_id}: event {self.size + len(self.links) + 1} is missing")
        return self.refused or self.links


async def _new_links(conn: asyncpg.Connection,
                     wanted: dict[str, tuple[int, int, bytes]]) -> dict[str, list[bytes] | ChainRefused]:
    """Per chain, (size, upto, prev): the link hashes of its events size+1..upto, each checked to
    follow on from the one before, or why not. The chains are read together, the log once in
    position order from the first of their anchors (store.chains_in_log_order)."""
    following = {c: _Following(c, *w) for c, w in wanted.items()}
    start = await first_anchor_position(conn, {c: f.size for c, f in following.items() if not f.done})

    def unfinished() -> list[str]:
        return [c for c, f in following.items() if not f.done]

    async for rows in chains_in_log_order(conn, unfinished, "chain_seq, prev_hash, hash", start, PAGE):
        for _, chain_id, seq, prev_hash, link in rows:
            following[chain_id].take(seq, bytes(prev_hash), bytes(link))
    return {c: f.result() for c, f in following.items()}


def _extend(links: list[bytes], size: int, frontier: tuple[bytes, ...]) -> tuple[bytes, list[bytes], list[bytes]]:
    """(root, consistency proof from `size`, frontier) of the tree grown by `links`: CPU only, run
    in a thread so that a big step never holds the worker's event loop."""
    tree = merkle.Tree([merkle.leaf_hash(link) for link in links], known=size, frontier=frontier)
    return tree.root(), tree.consistency_proof(size), tree.frontier()
