"""Bounded cache of stream states, so a hot account is not re-read from the log per event.

Only ever updated after a commit; a stale entry (after a rebalance) is caught by the store's
optimistic concurrency check and dropped.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any


class StateCache:
    def __init__(self, max_streams: int = 200_000):
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._max = max_streams

    def get(self, stream_id: str) -> tuple[int, Any] | None:
        entry = self._entries.get(stream_id)
        if entry is not None:
            self._entries.move_to_end(stream_id)
        return entry

    def put(self, stream_id: str, version: int, state: Any) -> None:
        self._entries[stream_id] = (version, state)
        self._entries.move_to_end(stream_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, stream_ids) -> None:
        for stream_id in stream_ids:
            self._entries.pop(stream_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
