"""The decider shape every service's domain implements (functional core).

decide(state, event, policy) -> [Decision] and evolve(state, decision) -> state are pure:
no I/O, no wall clock, no randomness. Time comes from the event; ids are derived from the
input event id, so replays give identical decisions (A.REPLAY).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Timer:
    """A wake-up a decision asks for; it comes back as an input at due_at (business time)."""

    timer_id: str
    due_at: datetime
    kind: str
    key: str  # Kafka partition key (the account), so the wake-up reaches the stream's owner
    data: dict = field(default_factory=dict)


class Decision(NamedTuple):
    """What a decider decided about one input; the runtime turns it into a decision envelope.

    A NamedTuple rather than a frozen dataclass: every input makes one or more, and a frozen
    dataclass's __init__ (one object.__setattr__ per field) cost four times as much.
    """

    decision_type: str
    rule_ids: tuple[str, ...]
    outcome: str
    payload: dict
    reason_codes: tuple[str, ...] = ()
    business_time: datetime | None = None
    timer: Timer | None = None
    cancels_timers: tuple[str, ...] = ()
    # For deciders that read several streams (see MultiStreamDecider): which one this
    # decision is appended to. None means the input's first stream.
    stream_id: str | None = None
    # False: not a decision but a change of a snapshot stream's state (a CDR that arrives in its
    # switch's sequence): folded into the state like a decision, which the runtime then keeps as
    # the stream's snapshot (SnapshotCodec), but neither stored as an event nor published. Only
    # for streams the decider gives a snapshot codec; what an auditor must see stays stored.
    stored: bool = True


class SnapshotCodec(Protocol[S]):
    """How a snapshot stream's state is kept (see Decision.stored): as JSON, written in the
    transaction of the batch that changed it. A stream with a codec is loaded from its snapshot;
    one that has none yet (a store older than the codec) is folded from its events once."""

    def dump(self, state: S) -> Any: ...

    def load(self, data: Any) -> S: ...


class Rejected(Exception):
    """The input is well-formed but breaks a business sanity rule: dead-letter it with the reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Decider(Protocol, Generic[S]):
    """One stream per input: decide() gets that stream's state."""

    service: str
    input_topics: tuple[str, ...]

    def stream_id(self, event: Any) -> str: ...

    def partition_key(self, event: Any) -> str: ...

    def initial_state(self) -> S: ...

    def evolve(self, state: S, decision: dict) -> S: ...

    def decide(self, state: S, event: Any, policy: Any) -> list[Decision]: ...


class MultiStreamDecider(Protocol, Generic[S]):
    """Several streams per input, decided and appended atomically (e.g. a card and its
    outlet's stock). decide() gets {stream id: state}; each Decision names its stream.
    A concurrent writer to any of the streams makes the batch retry with fresh state."""

    service: str
    input_topics: tuple[str, ...]

    def stream_ids(self, event: Any) -> tuple[str, ...]: ...

    def partition_key(self, event: Any) -> str: ...

    def initial_state(self, stream_id: str) -> S: ...

    def evolve(self, state: S, decision: dict) -> S: ...

    def decide(self, states: dict[str, S], event: Any, policy: Any) -> list[Decision]: ...

    # Optional: the codec of a stream kept as a snapshot, None for a stream kept as its events.
    # def snapshot_codec(self, stream_id: str) -> SnapshotCodec | None: ...
