"""Decides batch N+1 while batch N is written (issue 13, step 2; docs/performance.md, run 16).

A worker's batch cycle was serial: decide a batch, wait for its transaction (a dozen round trips
and the commit's fsync), then take the next. End to end the cores idled ~30 % of the time at the
maximum rate, and a small batch paid the whole wait. Here the next batch is decided while the one
before it is written:

- Writes stay one at a time and in delivery order: batch N+1's transaction begins only once N's
  has ended, so offsets are committed in order and a stream's decisions keep their order.
- N+1 is decided on the states N leaves (`Ahead`): N's streams, claims and recorded inputs, which
  the store shows only once N commits. So N+1 decides exactly what it would have decided after
  N's commit, whatever the batch boundaries (A.REPLAY; `make chaos` compares this).
- If N's first write attempt fails (a conflict, a fence, the database down, an input it must
  isolate), N+1's decisions are thrown away: N is stored the serial way (BatchProcessor.
  store_serially), and N+1 is decided again on what was stored.
- When N changes what `Ahead` cannot carry (a stream held behind a poisoned input, or released),
  or N+1 needs a view of a stream N loaded (a view is folded from stored events), N+1 is decided
  only after N is stored.

Nothing on this path waits for Kafka: the relay publishes the stored decisions on its own.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..stream_views import base_stream, is_view
from . import metrics
from .batch_processor import Batch, BatchProcessor, NotAhead, _Decided
from .claims import claim_id
from .dead_letters import InputMessage
from .poison_hold import Poisoned, StreamHeld


@dataclass(frozen=True)
class Ahead:
    """What a batch being written leaves once it commits: the next batch is decided on it."""

    states: dict  # stream (or claim) -> (version, state) after the batch
    inputs: dict  # event id -> content hash of the inputs the batch records

    @classmethod
    def of(cls, decided: _Decided | None) -> Ahead | None:
        """None when the batch changes what the next one would have to read from the store."""
        if decided is None or decided.holds is None or decided.holds.released:
            return None
        if any(isinstance(refusal, (Poisoned, StreamHeld)) for _, refusal in decided.refusals):
            return None
        states = dict(decided.streams_left())
        # The claims the batch makes (a claim's version is always 0); those it read are stored.
        states.update({claim_id(e.claim_key): (0, e.claim_value) for e in decided.new_events if e.claim_key})
        states.update({claim_id(key): (0, value) for more in decided.claims.values() for key, value in more})
        # Only the inputs the batch records: one it refused is not recorded, and a copy of it in
        # the next batch is decided again, as it would be once the batch is stored.
        return cls(states, dict(decided.recorded))

    def take(self, stream_ids) -> tuple[dict, list[str]]:
        """(the states of `stream_ids` this holds, the ids to read from the store)."""
        states, rest = {}, []
        for stream_id in stream_ids:
            if stream_id in self.states:
                states[stream_id] = self.states[stream_id]
            elif is_view(stream_id) and base_stream(stream_id) in self.states:
                raise NotAhead(stream_id)
            else:
                rest.append(stream_id)
        return states, rest


class BatchPipeline:
    def __init__(self, processor: BatchProcessor):
        self.processor = processor
        # Deciding and the serial way of storing both read and move the processor's caches:
        # one at a time. A first write attempt only reads them, and moves them once committed.
        self._deciding = asyncio.Lock()
        self._writing: tuple[Batch, asyncio.Task] | None = None

    async def submit(self, messages: list[InputMessage], generation: int) -> asyncio.Future:
        """Decide `messages` and start writing them; returns once the batch before is durable.
        The future gives, once this batch is durable, the inputs fenced out (see
        BatchProcessor.process), whose offsets are not to be committed."""
        batch = self.processor.accept(messages, generation)
        before, writing = self._writing or (None, None)
        ahead = Ahead.of(before.decided) if writing is not None and not writing.done() else None
        if writing is None or writing.done() or ahead is not None:
            async with self._deciding:
                await self.processor.decide(batch, ahead)
        if writing is not None:
            await writing
            if ahead is not None:
                outcome = ("undecided" if batch.decided is None  # NotAhead, or the database failed
                           else "kept" if before.committed_as_decided else "redone")
                metrics.BATCHES_DECIDED_AHEAD.labels(self.processor.service, outcome).inc()
                if outcome == "redone":
                    batch.decided = None  # decided on states that were not stored as they were
        if batch.decided is None:
            async with self._deciding:
                await self.processor.decide(batch)
        task = asyncio.ensure_future(self.processor.make_durable(batch, exclusive=self._deciding))
        self._writing = (batch, task)
        return task

    async def flush(self) -> None:
        """Wait until the batch being written is durable."""
        if self._writing is not None:
            await asyncio.shield(self._writing[1])

    async def close(self) -> None:
        """Stop writing (the worker stops): a batch not yet committed is delivered again."""
        if self._writing is not None and not self._writing[1].done():
            self._writing[1].cancel()
            await asyncio.gather(self._writing[1], return_exceptions=True)
