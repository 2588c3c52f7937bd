"""The shapes of events going into and coming out of the store."""
from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

# NamedTuples rather than frozen dataclasses: two of them are built per decision on the hot path,
# and a frozen dataclass's __init__ (object.__setattr__ per field) cost ~5 % of a batch.


class NewEvent(NamedTuple):
    event_id: str
    stream_id: str
    event_type: str
    service: str
    business_time: datetime
    payload: dict
    causation_id: str | None = None
    correlation_id: str | None = None
    schema_version: int = 1
    # the chain of the partition whose input caused it (store.chain_name); None: the service's
    # chain for writers that have no partitions (`<service>/-`: tests, tools)
    chain_id: str | None = None
    # set on an input's first stored decision only (migration 0009): the input's content hash and
    # offset, which record it as processed
    input_hash: str | None = None
    input_offset: int | None = None
    # the unique claim the decision makes (runtime/claims.py, migration 0010), if any
    claim_key: str | None = None
    claim_value: str | None = None


class StoredEvent(NamedTuple):
    global_position: int
    stream_id: str
    stream_version: int
    event_id: str
    event_type: str
    schema_version: int
    service: str
    business_time: datetime
    recorded_at: datetime
    causation_id: str | None
    correlation_id: str | None
    payload: dict
    prev_hash: bytes
    hash: bytes
    chain_id: str | None = None  # None: written before chains per partition (migration 0005)
    chain_seq: int | None = None
    input_hash: str | None = None  # as in NewEvent; not part of the chain's link
    input_offset: int | None = None
    claim_key: str | None = None  # as in NewEvent; not part of the chain's link (verify recomputes it)
    claim_value: str | None = None
