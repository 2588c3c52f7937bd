"""Decides a batch of inputs and makes its whole outcome durable in one transaction.

The decisions, the ids of the inputs that caused them and the dead letters of the inputs that
could not be decided all commit together. Only then does the worker acknowledge the batch's
offsets, so a crash at any point redelivers the batch, and a redelivered or republished input
changes nothing (exactly-once effect over at-least-once delivery).

A batch is decided first, on a connection of its own and outside any transaction, and then
written in one transaction that checks everything the decisions read (stream versions, claims,
the inputs' first-decision ids, snapshot revisions) has not moved. So the next batch can be decided
while this one is written (batch_pipeline.py, on the states this one leaves: `Ahead`); a write that
fails for any reason is done again the way it always was, deciding and writing in one
transaction, retried and split as below.

No input stops a partition, and no fault skips one (CONTRACT.NOTHING_LOST):
- an input the contract refuses, or that the decider, the evolve or the database refuses for
  what it holds, becomes a dead letter; a batch that fails for one such input is split until
  that input is alone, so the rest of the batch is decided;
- a database that refuses every write (down, read-only, permission revoked, disk full) is
  waited for with backoff: process() does not return, no offset moves, and the worker reports
  itself blocked until the database accepts writes again.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception, stop_never, wait_exponential

from schemas.errors import DEFAULT_MAX_EVENT_BYTES, PROCESSING_ERROR, InvalidEvent
from schemas.registry import REPARTITION_TOPICS
from schemas.validation import content_hash, decode_message

from ..decider import Rejected
from ..stream_views import base_stream, evolve_loaded, is_view, views_by_stream
from ..decisions import decision_envelopes, input_decision_id
from ..eventstore import store
from ..eventstore.records import NewEvent, StoredEvent
from . import metrics
from .chain_ownership import ChainOwnership
from .claims import claim_id, is_claim, load_claims, record_claims
from .dead_letters import DeadLetters, InputMessage, Refusal
from .poison_hold import PoisonHolds
from .decision_inputs import DECISION_TOPIC_NAMES, DECISION_TYPE_HEADER, decode_decision_input, decode_repartitioned
from .snapshot_streams import SnapshotStreams
from .state_cache import StateCache
from .timers import TIMER_EVENT_TYPE, TIMER_TOPIC_SUFFIX, advance_business_clock, decode_timer, project_timers

log = logging.getLogger(__name__)

# Connection trouble is retried for as long as it lasts, like any refusal of the database.
TRANSIENT_DB_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)
# SQLSTATE classes that blame what one input carries (a value out of range, a constraint the
# decision breaks, a row too large), not the database: data exception, integrity, limits.
INPUT_FAULT_SQLSTATE_CLASSES = ("22", "23", "54")
# A stream that moves on while a batch decides is reloaded; one that keeps "moving" this often
# is not a race but an input that always conflicts, and is isolated like any other.
MAX_CONFLICT_RETRIES = 12
# Deciding a batch of 500 takes ~35 ms of CPU. Without a turn of the event loop in between, the
# batch being written meanwhile (batch_pipeline) could send its next statement only when this
# one reads, and the relay and the fetcher would wait as long: the overlap would be lost.
DECIDED_BETWEEN_YIELDS = 50


def database_refuses_writes(error: BaseException) -> bool:
    """True for faults of the database itself, which waiting cures; False for faults of the input."""
    if isinstance(error, asyncpg.exceptions._base.DataError):  # an argument asyncpg cannot encode
        return False
    if isinstance(error, TRANSIENT_DB_ERRORS):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return not (error.sqlstate or "").startswith(INPUT_FAULT_SQLSTATE_CLASSES)
    return False


class DuplicateEventId(InvalidEvent):
    pass


@dataclass
class _Decided:
    """What one transaction writes, built while deciding the batch's fresh inputs."""

    fresh: list = field(default_factory=list)
    states: dict = field(default_factory=dict)
    working: dict = field(default_factory=dict)
    new_events: list = field(default_factory=list)  # in the order they were decided
    appended: Counter = field(default_factory=Counter)  # stream -> how many of new_events it gets
    claims: dict = field(default_factory=dict)  # decision id -> the claims it makes past its first
    processed_rows: list = field(default_factory=list)  # inputs that decided nothing: recorded by a row
    recorded: dict = field(default_factory=dict)  # input id -> content hash, of the inputs recorded so far
    taken: list = field(default_factory=list)  # (message, event) of the inputs decided, held or refused by the decider
    decided_topics: list = field(default_factory=list)  # the topic of each input decided, for the metrics
    snapshot_revisions: dict = field(default_factory=dict)  # snapshot stream -> the revision written
    refusals: list = field(default_factory=list)
    stored: list = field(default_factory=list)
    claimed: dict = field(default_factory=dict)  # chain -> (generation, epoch) claimed by this batch
    holds: object = None  # poison_hold.BatchHolds: the streams held behind a poisoned input
    generation: int = 0  # the consumer group's when the inputs were fetched
    _left: dict | None = field(default=None, init=False, repr=False, compare=False)  # streams_left(), once asked

    def streams_left(self) -> dict[str, tuple[int, object]]:
        """(version, state) of each stream the batch read, as the batch leaves it: what the cache
        keeps once the batch commits, and what the next batch is decided on meanwhile
        (batch_pipeline.Ahead). Views and claims are not streams of their own. Built once a batch:
        the pipeline asks before the commit, the cache after it. Not to be changed by the caller."""
        if self._left is None:
            appended, working = self.appended, self.working
            self._left = {stream_id: (version + appended.get(stream_id, 0), working[stream_id])
                          for stream_id, (version, _) in self.states.items()
                          if not (is_view(stream_id) or is_claim(stream_id))}
        return self._left


@dataclass
class Batch:
    """One delivery of inputs, from its arrival until it is durable."""

    messages: list
    generation: int
    decoded: list
    refused: list
    started: float
    decided: _Decided | None = None  # what the first write attempt stores, if deciding it succeeded
    committed_as_decided: bool = False  # that attempt committed: later batches may build on `decided`


class NotAhead(Exception):
    """The batch needs a state the batch ahead of it may change and cannot hand over (a view of a
    stream it loaded, folded from stored events): it is decided once that batch is stored."""


class BatchProcessor:
    def __init__(self, *, decider, policy, pool: asyncpg.Pool, dead_letters: DeadLetters, service_version: str,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.decider = decider
        self.policy = policy
        self.pool = pool
        self.dead_letters = dead_letters
        self.service_version = service_version
        self.max_event_bytes = max_event_bytes
        self.service = decider.service
        self.cache = StateCache()
        self.snapshots = SnapshotStreams(decider, self.service)
        # The service's own decisions coming back keyed otherwise (schemas.registry.Repartition):
        # the state they move absorbs a repeat, so they are neither looked up nor recorded as
        # processed inputs, which would cost a row and an index entry per CDR.
        self.repartitioned = frozenset(r.topic for r in REPARTITION_TOPICS.values()) & set(decider.input_topics)
        self.multi_stream = hasattr(decider, "stream_ids")
        self.blocked_by: str | None = None  # why the database refuses writes, while it does
        self.chains = ChainOwnership(self.service)
        self.holds = PoisonHolds(service=self.service, decider=decider, service_version=service_version,
                                 policy_version=policy.version)
        self._conflicts = 0
        self._generation = 0
        self._fenced: list[InputMessage] = []
        self._attempted: tuple[str, ...] = ()  # the streams the last attempt read

    def _streams_of(self, event) -> tuple[str, ...]:
        if event.event_type == TIMER_EVENT_TYPE:
            return (event.payload["streamId"],)
        # No stream means the input concerns nothing this service keeps (e.g. a decision of
        # another service about a tariff): it is recorded as processed and decides nothing.
        if self.multi_stream:
            return tuple(self.decider.stream_ids(event))
        stream_id = self.decider.stream_id(event)
        return (stream_id,) if stream_id is not None else ()

    def _initial_state(self, stream_id: str):
        return self.decider.initial_state(stream_id) if self.multi_stream else self.decider.initial_state()

    def _decode(self, message: InputMessage):
        if message.topic.endswith(TIMER_TOPIC_SUFFIX):
            return decode_timer(message.value)
        if message.topic in DECISION_TOPIC_NAMES:
            return decode_decision_input(message.topic, message.value)
        return decode_message(message.topic, message.key, message.value, self.max_event_bytes)

    def _wanted(self, message: InputMessage) -> bool:
        """Another service's decisions of a type this service does not use are passed over
        before decoding: they decide nothing here, and they are most of that topic."""
        wanted = getattr(self.decider, "decision_types_consumed", None)
        if wanted is None or message.topic not in DECISION_TOPIC_NAMES:
            return True
        kind = dict(message.headers).get(DECISION_TYPE_HEADER)
        return kind is None or kind.decode(errors="replace") in wanted

    def _decode_all(self, messages: list[InputMessage]) -> tuple[list, list[Refusal]]:
        decoded, refused = [], []
        for message in filter(self._wanted, messages):
            try:
                if message.topic in self.repartitioned:  # several inputs to a message
                    for event in decode_repartitioned(message.topic, message.value):
                        # One element it cannot read dead-letters the message; the others are decided.
                        (refused if isinstance(event, InvalidEvent) else decoded).append((message, event))
                    continue
                decoded.append((message, self._decode(message)))
            except InvalidEvent as exc:
                refused.append((message, exc))
            except Exception as exc:  # a defect in a decoder must not stop the partition
                refused.append((message, InvalidEvent(PROCESSING_ERROR, f"{type(exc).__name__} while decoding")))
        return decoded, refused

    async def process(self, messages: list[InputMessage], generation: int = 0) -> list[InputMessage]:
        """Returns once every message's decisions or dead letter is durable, but for those it
        returns: inputs of partitions another worker owns now (fenced out), whose offsets are not
        to be committed here. `generation`: the consumer group's when the messages were fetched.
        Raises nothing but CancelledError: an exception would commit inputs that were not stored.
        One batch at a time; the worker overlaps them through batch_pipeline.BatchPipeline."""
        batch = self.accept(messages, generation)
        await self.decide(batch)
        return await self.make_durable(batch)

    def accept(self, messages: list[InputMessage], generation: int) -> Batch:
        decoded, refused = self._decode_all(messages)
        return Batch(messages, generation, decoded, refused, time.perf_counter())

    async def decide(self, batch: Batch, ahead=None) -> None:
        """Decide the batch on a connection of its own, outside a transaction, for write_decided.
        `ahead` (batch_pipeline.Ahead): what the batch still being written leaves, which the
        store does not show yet. A batch that cannot be decided so (the database is down, or
        NotAhead) is left undecided, for store_serially."""
        batch.decided = None
        try:
            async with self.pool.acquire() as conn:
                decided = _Decided(refusals=list(batch.refused), generation=batch.generation)
                await self._decide_fresh(conn, batch.decoded, decided, ahead)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, NotAhead):
                log.debug("deciding a batch failed (%s); it is decided again as it is stored", type(exc).__name__)
            return
        batch.decided = decided

    async def write_decided(self, batch: Batch) -> bool:
        """One attempt to store what decide() decided, in one transaction; True once committed.
        It checks that nothing the decisions read has moved, so a False (any failure) loses
        nothing: store_serially decides and stores the batch again."""
        decided, batch.committed_as_decided = batch.decided, False
        if decided is None:
            return False
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._timed_write(conn, decided)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, store.ConcurrencyConflict):
                self._conflicted(tuple(decided.states))
            return False
        self._committed(decided)
        batch.committed_as_decided = True
        return True

    async def make_durable(self, batch: Batch, exclusive=contextlib.nullcontext()) -> list[InputMessage]:
        """Store what decide() decided, or, if that fails, decide and store the batch the serial
        way, holding `exclusive` (whatever else decides meanwhile must wait: batch_pipeline);
        returns the inputs fenced out."""
        if await self.write_decided(batch):
            fenced = []
        else:
            async with exclusive:
                fenced = await self.store_serially(batch)
        self.observe_durable(batch)
        return fenced

    async def store_serially(self, batch: Batch) -> list[InputMessage]:
        """Decide and store the batch in one transaction, retried and split until it is durable
        (the module's docstring); returns the inputs fenced out."""
        self._generation, self._fenced = batch.generation, []
        await self._store_isolating(batch.decoded, batch.refused)
        return self._fenced

    def observe_durable(self, batch: Batch) -> None:
        metrics.BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - batch.started)
        metrics.BATCH_INPUTS.labels(self.service).observe(len(batch.messages))
        now_ms = time.time() * 1000
        latency = metrics.DECISION_LATENCY.labels(self.service)
        for message, _ in batch.decoded:
            if message.timestamp_ms:
                latency.observe(max(0.0, (now_ms - message.timestamp_ms) / 1000))

    async def _store_isolating(self, decoded: list, refused: list[Refusal]) -> None:
        """Commit the batch; if one of its inputs makes that impossible, split the batch (in
        offset order) until that input is alone, and dead-letter it."""
        try:
            await self._commit(decoded, refused)
            return
        except asyncio.CancelledError:
            raise
        except store.FencedOut as exc:
            await self._store_isolating(self._drop_fenced(decoded, exc.chains), refused)
            return
        except Exception as exc:
            error = exc
        if refused:  # the refusals alone cannot be to blame for an input: store them first
            await self._commit([], refused)
            await self._store_isolating(decoded, [])
            return
        if len(decoded) > 1:
            middle = len(decoded) // 2
            await self._store_isolating(decoded[:middle], [])
            await self._store_isolating(decoded[middle:], [])
            return
        (message, event), = decoded
        # The class and SQLSTATE only: an exception's text can quote the data (A.PRIVACY).
        log.error("%s[%d]@%d cannot be decided or stored (%s %s); dead-lettered", message.topic, message.partition,
                  message.offset, type(error).__name__, getattr(error, "sqlstate", None) or "")
        reason = f"{type(error).__name__} while deciding or storing it (details in the service log)"
        await self._commit([], [self._poison(message, event, reason)])

    def _poison(self, message: InputMessage, event, reason: str) -> Refusal:
        """The processing_error refusal of an input, holding its stream (CONTRACT.POISON_HOLD)."""
        try:
            streams = self._streams_of(event)
        except Exception:  # the stream cannot even be named: nothing to hold
            streams = ()
        return self.holds.empty().poison(message, event, streams, reason)

    def _drop_fenced(self, decoded: list, chains: tuple[str, ...]) -> list:
        """The inputs of partitions that are still this worker's; the others are their new owner's."""
        log.warning("fenced out of %d chain(s) by a newer owner; leaving their inputs to it", len(chains))
        self.chains.forget(chains)
        kept = []
        for message, event in decoded:
            if self.chains.chain_of(message) in chains:
                self._fenced.append(message)
            else:
                kept.append((message, event))
        return kept

    async def _commit(self, decoded: list, refused: list[Refusal]) -> None:
        self._conflicts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: self._worth_waiting_for(exc, bool(decoded))),
            wait=wait_exponential(multiplier=0.05, max=5),
            stop=stop_never,
            before_sleep=self._before_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                batch = await self._decide_and_store(decoded, refused)
        # Outside the attempts: what follows the commit must never count as a failed write.
        self._committed(batch)
        if self.blocked_by is not None:
            log.warning("the database accepts writes again; consuming")
            self.blocked_by = None
            metrics.STORE_BLOCKED.labels(self.service).set(0)

    def _worth_waiting_for(self, error: BaseException, has_inputs: bool) -> bool:
        if not has_inputs:  # only dead letters left to store: no input to blame, wait whatever it is
            return isinstance(error, Exception)
        if isinstance(error, store.ConcurrencyConflict):
            return self._conflicts < MAX_CONFLICT_RETRIES
        return database_refuses_writes(error)

    def _before_retry(self, retry_state) -> None:
        error = retry_state.outcome.exception()
        if isinstance(error, store.ConcurrencyConflict):
            self._conflicts += 1
            self._conflicted(self._attempted)
            return
        metrics.STORE_RETRIES.labels(self.service).inc()
        metrics.STORE_BLOCKED.labels(self.service).set(1)
        reason = getattr(error, "sqlstate", None) or type(error).__name__
        if self.blocked_by != reason:
            log.error("the database refuses writes (%s): holding the batch, offsets unmoved, retrying", reason)
        self.blocked_by = reason

    def _conflicted(self, stream_ids: tuple[str, ...]) -> None:
        """An attempt that read these met a concurrency conflict. Only what it read can be stale;
        the rest of the cache stays warm (clearing it all made every conflict reload every
        account of the next batches)."""
        metrics.CONCURRENCY_CONFLICTS.labels(self.service).inc()
        self.cache.drop(stream_ids)
        self.snapshots.forget(stream_ids)

    async def _load_states(self, conn, stream_ids: set[str], ahead=None) -> dict[str, tuple[int, object]]:
        """(version, state) per stream; views are folded from their stream's events every time.
        `ahead`'s states come first: the store does not show them yet."""
        states, missing = {}, []
        if ahead is not None:
            states, stream_ids = ahead.take(stream_ids)
        claims = [s for s in stream_ids if is_claim(s)]
        if claims:
            states.update({c: (0, value) for c, value in (await load_claims(conn, self.service, claims)).items()})
        for stream_id in stream_ids:
            if is_claim(stream_id):
                continue
            cached = None if is_view(stream_id) else self.cache.get(stream_id)
            if cached is None:
                missing.append(stream_id)
            else:
                states[stream_id] = cached
        kept, missing = self.snapshots.split(missing)
        if kept:
            loaded, unsnapshotted = await self.snapshots.load(conn, kept, self.decider.evolve)
            states.update(loaded)
            missing += unsnapshotted  # folded from their events, once
        if missing:
            logs = await store.read_streams(conn, list({base_stream(s) for s in missing}))
            for stream_id in missing:
                events = logs[base_stream(stream_id)]
                state = self._initial_state(stream_id)
                for event in events:
                    state = self.decider.evolve(state, event.payload)
                states[stream_id] = (len(events), state)
        return states

    @staticmethod
    def _read_versions(states: dict, written) -> dict[str, int]:
        """Versions of the streams read but not written, which no other writer may have moved.
        A view stands for its stream; read fresh, it must agree with a cached state of it."""
        versions: dict[str, int] = {}
        for stream_id, (version, _) in states.items():
            if is_claim(stream_id):  # checked by the claims table's primary key instead
                continue
            base = base_stream(stream_id)
            if base in written:
                if version != states.get(base, (version,))[0]:
                    raise store.ConcurrencyConflict(f"{stream_id} was read at another version than its stream")
                continue
            if versions.setdefault(base, version) != version:
                raise store.ConcurrencyConflict(f"{base} was read at two versions")
        return versions

    async def _decide_and_store(self, decoded: list, refused: list[Refusal]) -> _Decided:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                batch = _Decided(refusals=list(refused), generation=self._generation)
                await self._decide_fresh(conn, decoded, batch)
                self._attempted = tuple(batch.states)
                await self._timed_write(conn, batch)
        return batch

    async def _timed_write(self, conn, batch: _Decided) -> None:
        append_started = time.perf_counter()
        await self._write(conn, batch)
        metrics.APPEND_SECONDS.labels(self.service).observe(time.perf_counter() - append_started)

    async def _decide_fresh(self, conn, decoded: list, batch: _Decided, ahead=None) -> None:
        unstreamed = {}  # position in fresh -> why its stream is unknown, told once it repeats nothing
        for message, event, digest in await self._drop_already_processed(conn, decoded, batch.refusals, ahead):
            try:
                streams = self._streams_of(event)
            except Exception as exc:  # e.g. a decision input without the id this service keys on
                streams = ()
                unstreamed[len(batch.fresh)] = InvalidEvent(PROCESSING_ERROR, f"{type(exc).__name__} finding the stream")
            batch.fresh.append((message, event, digest, streams))
        batch.holds = await self.holds.load(conn, batch.fresh)
        # A held input is not decided, so its streams (whose evolve may be what fails) are not read.
        batch.states = await self._load_states(
            conn, {s for _, event, _, streams in batch.fresh if not batch.holds.skips_loading(event, streams)
                  for s in streams}, ahead)
        batch.working = {sid: state for sid, (_, state) in batch.states.items()}
        views = views_by_stream(batch.working)
        for n, (message, event, digest, streams) in enumerate(batch.fresh):
            if n % DECIDED_BETWEEN_YIELDS == DECIDED_BETWEEN_YIELDS - 1:
                await asyncio.sleep(0)
            if digest is not None and self._repeats(message, event, batch.recorded.get(event.event_id), digest,
                                                    batch.refusals):
                continue
            if n in unstreamed:
                batch.refusals.append((message, unstreamed[n]))
                continue
            batch.taken.append((message, event))
            if batch.holds.blocks(event, streams):
                batch.refusals.append(batch.holds.block(message, event, streams[0]))
                continue
            first = len(batch.new_events)
            if streams and not self._decide_into(batch, message, event, streams, views, digest):
                continue
            batch.holds.decided(event, streams)
            batch.decided_topics.append(message.topic)
            if digest is not None:
                self._record_input(batch, first, message, event, digest)

    def _record_input(self, batch: _Decided, first: int, message: InputMessage, event, digest: str) -> None:
        """An input that decided something is recorded by its first decision, whose id names the
        input (decisions.input_decision_id) and which carries its content hash (_decide_one); one
        that decided nothing, by a row of its own."""
        batch.recorded[event.event_id] = digest
        if len(batch.new_events) == first:
            batch.processed_rows.append(
                (self.service, event.event_id, digest, message.topic, message.partition, message.offset))

    def _decide_into(self, batch: _Decided, message: InputMessage, event, streams, views,
                     digest: str | None = None) -> bool:
        """Decide one input into the batch; False when it was refused instead. `digest`: the
        input's content hash, which its first decision records (None: the input is not recorded).
        A decider that fails on the input, its claims included, poisons that input alone."""
        try:
            changed, events = self._decide_one(batch.working, event, streams, views, self.chains.chain_of(message),
                                               (digest, message.offset) if digest is not None else None)
        except Rejected as exc:
            batch.refusals.append((message, exc))
            return False
        except Exception as exc:  # a defect must not stop the stream or lose the input
            log.error("decider failed on %s[%d]@%d (%s)", message.topic, message.partition, message.offset,
                      type(exc).__name__)
            batch.refusals.append(batch.holds.poison(message, event, streams, f"{type(exc).__name__} while deciding"))
            return False
        batch.working.update(changed)
        for new_event, made in events:
            if len(made) > 1:  # the first claim rides on the decision (_decide_one); any other gets a row
                batch.claims[new_event.event_id] = made[1:]
            batch.new_events.append(new_event)
            batch.appended[new_event.stream_id] += 1
            for key, value in made:
                if batch.working.get(claim_id(key)) is None:  # a later input of the batch sees it
                    batch.working[claim_id(key)] = value
        return True

    async def _write(self, conn, batch: _Decided) -> None:
        chains = {e.chain_id for e in batch.new_events}
        batch.stored = await store.append(
            conn,
            self._in_decided_order(batch),
            read_versions=self._read_versions(batch.states, batch.appended),
            epochs=await self.chains.epochs(conn, chains, batch.generation, batch.claimed) if chains else None,
        )
        try:
            await record_claims(conn, self.service, [
                (key, value, e.global_position) for e in batch.stored for key, value in batch.claims.get(e.event_id, ())])
        except asyncpg.UniqueViolationError as exc:
            raise store.ConcurrencyConflict("a unique claim was made by another writer first") from exc
        batch.snapshot_revisions = await self.snapshots.write(conn, batch.states, batch.working, batch.appended)
        if batch.processed_rows:
            try:
                await conn.copy_records_to_table(
                    "processed_input_rows",
                    columns=("consumer", "event_id", "content_hash", "topic", "partition", "offset"),
                    records=batch.processed_rows,
                )
            except asyncpg.UniqueViolationError as exc:  # another worker recorded one of them first
                raise store.ConcurrencyConflict("an input was recorded by another writer first") from exc
        await self.dead_letters.record(conn, batch.refusals)
        batch.stored += await batch.holds.write(conn, batch.refusals)
        fired = [e.payload["timerId"] for _, e in batch.taken if e.event_type == TIMER_EVENT_TYPE]
        await project_timers(conn, self.service, batch.stored, fired)
        await advance_business_clock(conn, self.service, self._latest_business_times(batch))

    def _latest_business_times(self, batch: _Decided) -> dict[str, datetime]:
        """The latest business time of the batch's inputs (timers aside) per partition's chain."""
        latest: dict[str, datetime] = {}
        for message, event in batch.taken:
            if event.event_type != TIMER_EVENT_TYPE:
                chain = self.chains.chain_of(message)
                if chain not in latest or event.event_time > latest[chain]:
                    latest[chain] = event.event_time
        return latest

    @staticmethod
    def _in_decided_order(batch: _Decided) -> list[tuple[int, list[NewEvent]]]:
        """(expected version, events) for the append, in the order the inputs were decided, not
        grouped by stream: the log's order is what the relay publishes, and a repartitioned
        state (a switch's sequence, fed by many accounts) must see its inputs' order whatever
        inputs share a batch."""
        appends: list[tuple[int, list[NewEvent]]] = []
        versions = {}
        for event in batch.new_events:
            stream = event.stream_id
            version = versions.get(stream, batch.states[stream][0])
            if appends and appends[-1][1][-1].stream_id == stream:
                appends[-1][1].append(event)
            else:
                appends.append((version, [event]))
            versions[stream] = version + 1
        return appends

    def _claims_made(self, decision: dict) -> list[tuple[str, str]]:
        claims_made = getattr(self.decider, "claims_made", None)
        return claims_made(decision) if claims_made is not None else []

    async def _drop_already_processed(self, conn, decoded, rejected, ahead=None):
        if not decoded:
            return []
        ids = list({event.event_id for message, event in decoded if message.topic not in self.repartitioned})
        # An input is known by its first decision (through the unique index on decision ids), or
        # by a row when it decided nothing or was stored before migration 0009.
        rows = await conn.fetch(
            "SELECT event_id, content_hash FROM processed_input_rows WHERE consumer = $1 AND event_id = ANY($2::text[])"
            " UNION ALL SELECT causation_id, input_hash FROM events"
            " WHERE event_id = ANY($3::uuid[]) AND input_hash IS NOT NULL",
            self.service,
            ids,
            [input_decision_id(self.service, i) for i in ids],
        ) if ids else []
        seen = {r["event_id"]: r["content_hash"] for r in rows}
        if ahead is not None:  # recorded by the batch still being written
            seen.update(ahead.inputs)
        # A copy within the batch is told apart when it is decided (_decide_fresh), once the inputs
        # before it are: whether it repeats one depends on that one being recorded, not refused.
        fresh = []
        for message, event in decoded:
            if message.topic in self.repartitioned:
                fresh.append((message, event, None))
                continue
            digest = content_hash(event.raw)
            if not self._repeats(message, event, seen.get(event.event_id), digest, rejected):
                fresh.append((message, event, digest))
        return fresh

    def _repeats(self, message: InputMessage, event, prior: str | None, digest: str, rejected: list) -> bool:
        """Whether the input repeats one recorded with content hash `prior`: skipped when it is the
        same content (a redelivery), dead-lettered when it is other content under the same id."""
        if prior is None:
            return False
        if prior == digest:
            metrics.INPUTS_REDELIVERED.labels(self.service, message.topic).inc()
        else:
            rejected.append(
                (message, DuplicateEventId("duplicate_event_id", "eventId was already used for different content")))
        return True

    def _decide_one(self, working: dict, event, streams: tuple[str, ...], views: dict[str, tuple[str, ...]],
                    chain: str, recorded: tuple[str, int] | None = None,
                    ) -> tuple[dict, list[tuple[NewEvent, list[tuple[str, str]]]]]:
        """Decide one input; returns the streams' new states and the events to append, each with
        the claims it makes (the first rides on it). `recorded`: the input's (content hash, offset),
        which its first stored decision carries (migration 0009)."""
        loaded = {sid: working[sid] for sid in streams}
        view = loaded if self.multi_stream else loaded[streams[0]]
        states = dict(loaded)
        if views:  # views another input of this batch loaded must follow their stream too
            for sid in streams:
                for view_id in views.get(sid, ()):
                    states.setdefault(view_id, working[view_id])
        decisions = self.decider.decide(view, event, self.policy.rules)
        stored = decisions if all(d.stored for d in decisions) else [d for d in decisions if d.stored]
        envelopes = iter(decision_envelopes(
            stored,
            event=event,
            stream_id=streams[0],
            service=self.service,
            service_version=self.service_version,
            policy_version=self.policy.version,
        ) if stored else ())
        events = []
        input_hash, input_offset = recorded or (None, None)
        for decision in decisions:  # in their order: a later one may follow from an earlier one's state
            if not decision.stored:
                self._fold_unstored(decision, states, loaded, streams[0])
                continue
            envelope = next(envelopes)
            target = envelope["streamId"]
            if target not in loaded or is_view(target) or is_claim(target):
                raise ValueError(f"decision {decision.decision_type} targets a stream the input did not load")
            evolve_loaded(self.decider, states, envelope)
            made = self._claims_made(envelope)
            claim_key, claim_value = made[0] if made else (None, None)
            # Built once, positionally in NewEvent's order (tests/unit/test_stored_rows.py holds it):
            # setting the claim and the input hash afterwards rebuilt every decision's tuple twice.
            events.append((NewEvent(
                envelope["decisionId"], target, envelope["decisionType"], self.service,
                decision.business_time or event.event_time, envelope, event.event_id, event.correlation_id, 1, chain,
                input_hash, input_offset, claim_key, claim_value), made))
            input_hash = input_offset = None  # the first stored decision records the input
        return states, events

    def _fold_unstored(self, change, states: dict, loaded: dict, default_stream: str) -> None:
        """Fold a state change that is not a decision (Decision.stored) into its snapshot stream."""
        target = change.stream_id or default_stream
        if target not in loaded or is_view(target) or self.snapshots.codec(target) is None:
            raise ValueError(f"{change.decision_type} is not stored, but targets no snapshot stream the input loaded")
        if change.timer is not None or change.cancels_timers:  # timers are projected from stored decisions only
            raise ValueError(f"{change.decision_type} is not stored, so it cannot set or cancel a timer")
        evolve_loaded(self.decider, states, {"decisionType": change.decision_type, "outcome": change.outcome,
                                             "payload": change.payload, "streamId": target})

    def _committed(self, batch: _Decided) -> None:
        """The batch is stored: bring the caches and metrics up to it. A defect here must not pass
        for a failed write (the batch would be stored again) nor stop the worker."""
        try:
            self._after_commit(batch)
        except Exception as exc:
            log.error("bookkeeping after a commit failed (%s); the caches start over", type(exc).__name__)
            self.cache.clear()
            self.snapshots.revisions.clear()

    def _after_commit(self, batch: _Decided) -> None:
        self.chains.confirm(batch.claimed)
        self.snapshots.committed(batch.snapshot_revisions)
        for stream_id, (version, state) in batch.streams_left().items():
            self.cache.put(stream_id, version, state)
        # Counted per batch: a labelled child looked up per input and per decision cost more
        # (~3 % of a batch) than counting them here.
        for topic, n in Counter(batch.decided_topics).items():
            metrics.INPUTS_CONSUMED.labels(self.service, topic).inc(n)
        for (kind, outcome), n in Counter((e.event_type, e.payload["outcome"]) for e in batch.stored).items():
            metrics.DECISIONS.labels(self.service, kind, outcome).inc(n)
        self.dead_letters.committed(batch.refusals)

