"""Signs checkpoints of a service's chains and publishes them (issue 14, A.TAMPER_EVIDENT).

Every `every_decisions` new events, or every `every_s` seconds, whichever comes first, one worker
of the service (the one holding the service's audit_checkpoint_heads row) reads what each chain
gained since its last checkpoint, checks that it still extends the signed tree (the event at the
signed size keeps its hash, every new event links to the one before), grows the chain's Merkle
tree from its stored frontier, and signs the new heads with the consistency proofs. A chain
rewritten or cut short is refused there and then, so a rewrite is caught when the next
checkpoint is due, not only at the next verify.

Checkpoints are stored first and published after (an outbox): a broker that is away delays
publication, retried with backoff and counted, and never stops decisions.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from ..audit import checkpoints, merkle
from ..audit.signing import key_id
from ..eventstore.store import chain_genesis
from ..timefmt import rfc3339
from .metrics import CHECKPOINT_FAILURES, CHECKPOINT_LAST_PUBLISHED, CHECKPOINTS_ENABLED, CHECKPOINTS_SIGNED

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 10


class ChainRefused(Exception):
    """A chain no longer extends the tree its last checkpoint signed: it was rewritten or cut."""


class Checkpointer:
    def __init__(self, *, service: str, pool, producer, key, every_decisions: int, every_s: float,
                 poll_s: float = 1.0, topic: str = checkpoints.TOPIC):
        self.service = service
        self.pool = pool
        self.producer = producer
        self.key = key
        self.key_id = key_id(key.public_key())
        self.every_decisions = every_decisions
        self.every_s = every_s
        self.poll_s = poll_s
        self.topic = topic
        self._signed = asyncio.Event()

    async def run(self) -> None:
        CHECKPOINTS_ENABLED.labels(self.service).set(1)
        CHECKPOINT_LAST_PUBLISHED.labels(self.service).set(time.time())  # a fresh worker has its full grace
        for stage in ("refused", "sign", "publish"):
            CHECKPOINT_FAILURES.labels(self.service, stage)
        publisher = asyncio.create_task(self._publish_forever(), name=f"{self.service}-checkpoint-publish")
        try:
            while True:
                await self._sign_when_due()
                await asyncio.sleep(self.poll_s)
        finally:
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)

    async def _sign_when_due(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                if await self.checkpoint(conn):
                    self._signed.set()
        except asyncio.CancelledError:
            raise
        except ChainRefused as exc:
            CHECKPOINT_FAILURES.labels(self.service, "refused").inc()
            log.error("checkpoint refused: %s", exc)
        except Exception as exc:  # the database may be away; the next round tries again
            CHECKPOINT_FAILURES.labels(self.service, "sign").inc()
            log.warning("checkpoint: %s", type(exc).__name__)

    async def checkpoint(self, conn: asyncpg.Connection, *, force: bool = False) -> int | None:
        """Signs and stores the next checkpoint if one is due (or `force`); its number, or None."""
        await conn.execute("INSERT INTO audit_checkpoint_heads (service) VALUES ($1) ON CONFLICT DO NOTHING",
                           self.service)
        async with conn.transaction():
            head = await conn.fetchrow(
                "SELECT seq, digest, decisions, signed_at FROM audit_checkpoint_heads WHERE service = $1"
                " FOR UPDATE SKIP LOCKED", self.service)
            if head is None:
                return None  # another worker of the service is signing
            chains = await conn.fetch("SELECT chain_id, seq, hash FROM event_chains WHERE starts_with(chain_id, $1)"
                                      " ORDER BY chain_id", f"{self.service}/")
            total = sum(c["seq"] for c in chains)
            now = datetime.now(timezone.utc)
            if not (force or self._due(head, total, now)):
                return None
            trees = {r["chain_id"]: r for r in await conn.fetch(
                "SELECT chain_id, tree_size, root, head_hash, frontier FROM audit_chain_trees WHERE service = $1",
                self.service)}
            grown = [await self._grow(conn, c, trees.get(c["chain_id"])) for c in chains if _moved(c, trees)]
            seq = head["seq"] + 1
            message = checkpoints.build(service=self.service, seq=seq, previous=head["digest"],
                                        signed_at=rfc3339(now), key=self.key, key_id=self.key_id,
                                        chains=[g[0] for g in grown])
            body_digest = checkpoints.digest(checkpoints.parse(message).body)
            await conn.execute("INSERT INTO audit_checkpoints (service, seq, message, digest, signed_at)"
                               " VALUES ($1, $2, $3, $4, $5)", self.service, seq, message, body_digest, now)
            await conn.execute("UPDATE audit_checkpoint_heads SET seq = $2, digest = $3, decisions = $4, signed_at = $5"
                               " WHERE service = $1", self.service, seq, body_digest, total, now)
            await self._save_trees(conn, grown)
        CHECKPOINTS_SIGNED.labels(self.service).inc()
        return seq

    def _due(self, head: asyncpg.Record, total: int, now: datetime) -> bool:
        if head["signed_at"] is None:
            return True
        return (total - head["decisions"] >= self.every_decisions
                or (now - head["signed_at"]).total_seconds() >= self.every_s)

    async def _grow(self, conn: asyncpg.Connection, chain: asyncpg.Record,
                    tree: asyncpg.Record | None) -> tuple[checkpoints.ChainHead, merkle.Tree]:
        chain_id, size = chain["chain_id"], tree["tree_size"] if tree else 0
        if chain["seq"] < size:
            raise ChainRefused(f"chain {chain_id}: holds {chain['seq']} events, its last checkpoint signed {size}"
                               f" (events {chain['seq'] + 1}..{size} removed)")
        rows = await conn.fetch(
            "SELECT chain_seq, prev_hash, hash FROM events WHERE chain_id = $1 AND chain_seq >= $2 AND chain_seq <= $3"
            " ORDER BY chain_seq", chain_id, max(size, 1), chain["seq"])
        if size:
            signed_head, rows = rows[:1], rows[1:]
            if not signed_head or bytes(signed_head[0]["hash"]) != bytes(tree["head_hash"]):
                raise ChainRefused(f"chain {chain_id}: event {size} is not the one its last checkpoint signed"
                                   " (the chain was rewritten)")
        _check_links(chain_id, size, bytes(tree["head_hash"]) if tree else chain_genesis(chain_id), rows, chain)
        grown = merkle.Tree([merkle.leaf_hash(bytes(r["hash"])) for r in rows], known=size,
                            frontier=[bytes(n) for n in tree["frontier"]] if tree else ())
        root = grown.root()
        proof = grown.consistency_proof(size)
        if not merkle.verify_consistency(size, grown.size, bytes(tree["root"]) if tree else merkle.EMPTY_ROOT,
                                         root, proof):
            raise ChainRefused(f"chain {chain_id}: the stored tree of size {size} does not match its frontier")
        head = checkpoints.ChainHead(chain_id, grown.size, root, bytes(chain["hash"]), size, tuple(proof))
        return head, grown

    async def _save_trees(self, conn: asyncpg.Connection, grown: Sequence[tuple]) -> None:
        await conn.executemany(
            "INSERT INTO audit_chain_trees (chain_id, service, tree_size, root, head_hash, frontier)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain_id) DO UPDATE SET tree_size = excluded.tree_size,"
            " root = excluded.root, head_hash = excluded.head_hash, frontier = excluded.frontier",
            [(h.chain_id, self.service, h.tree_size, h.root, h.head_hash, tree.frontier()) for h, tree in grown])

    async def _publish_forever(self) -> None:
        while True:
            try:
                await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database was away: next round
                log.warning("checkpoint publish: %s", type(exc).__name__)
            try:
                await asyncio.wait_for(self._signed.wait(), timeout=self.poll_s * 5)
            except asyncio.TimeoutError:
                pass
            self._signed.clear()

    async def publish_pending(self) -> int:
        """Publishes the stored checkpoints the broker has not acknowledged, in order."""
        async with self.pool.acquire() as conn:
            pending = await conn.fetch("SELECT seq, message FROM audit_checkpoints WHERE service = $1"
                                       " AND NOT published ORDER BY seq", self.service)
            for row in pending:
                await self._send(bytes(row["message"]))
                await conn.execute("UPDATE audit_checkpoints SET published = true WHERE service = $1 AND seq = $2",
                                   self.service, row["seq"])
                CHECKPOINT_LAST_PUBLISHED.labels(self.service).set(time.time())
        return len(pending)

    async def _send(self, message: bytes) -> None:
        def counted(_state) -> None:
            CHECKPOINT_FAILURES.labels(self.service, "publish").inc()

        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=30), before_sleep=counted,
                                           retry=retry_if_exception_type(Exception), reraise=True):
            with attempt:
                # Bounded: the producer would wait up to its metadata timeout (a minute) for a topic it cannot
                # find. A send that goes out after all is a repeat, which the witness accepts.
                await asyncio.wait_for(self.producer.send_and_wait(self.topic, message, key=self.service.encode()),
                                       SEND_TIMEOUT_S)


def _moved(chain: asyncpg.Record, trees: dict) -> bool:
    """The chain's head is not the one last signed: it grew (or was altered, which _grow refuses)."""
    tree = trees.get(chain["chain_id"])
    return tree is None or tree["tree_size"] != chain["seq"] or bytes(tree["head_hash"]) != bytes(chain["hash"])


def _check_links(chain_id: str, size: int, prev: bytes, rows: Sequence[asyncpg.Record], chain: asyncpg.Record) -> None:
    """The events after the signed size follow on from it, one by one, up to the chain's head."""
    for expected, row in enumerate(rows, start=size + 1):
        if row["chain_seq"] != expected or bytes(row["prev_hash"]) != prev:
            raise ChainRefused(f"chain {chain_id}: event {expected} does not follow on from event {expected - 1}")
        prev = bytes(row["hash"])
    if len(rows) != chain["seq"] - size or prev != bytes(chain["hash"]):
        raise ChainRefused(f"chain {chain_id}: its head does not match its last event")
