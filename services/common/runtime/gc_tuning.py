"""The cyclic garbage collector, set for a process that decides thousands of inputs a second.

CPython frees almost every object by reference counting; the cyclic collector only finds
garbage that refers to itself. By default it scans the youngest objects after every 700
allocations net of frees, and the older generations every 10 scans of the one below. A batch of
500 CDRs allocates hundreds of thousands of short-lived objects (decoded payloads, decisions,
envelopes, rows), so the collector ran hundreds of times per batch, each older scan walking the
state cache too: a fifth of a worker's time (docs/performance.md, run 13).

So a worker freezes what it holds at start (modules, schemas, policy, compiled decoders: never
garbage, now never scanned) and scans the youngest generation after YOUNG_THRESHOLD allocations
net. Cycles are still collected, later: garbage in cycles can grow by up to the threshold's
objects between scans (measured: peak RSS of the in-process bench 152 -> 164 MiB).
"""
from __future__ import annotations

import gc
import time
from collections import deque

from .metrics import GC_PAUSE_SECONDS

YOUNG_THRESHOLD = 50_000
# The older generations keep CPython's ratios: one middle scan per 10 young ones, and a full
# scan only when it has 10 middle scans behind it (and, since 3.8, enough new long-lived objects).
OLDER_THRESHOLDS = (10, 10)

# (generation, seconds) of each collection, until observe_pauses() hands them to the metric. The
# collector's callback must not observe them itself: it can run while prometheus_client holds
# the (non-reentrant) lock of the very histogram it would observe into.
_pauses: deque = deque(maxlen=10_000)
_started = [0.0]


def _on_collection(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _pauses.append((info["generation"], time.perf_counter() - _started[0]))


def tune_collector(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Call once, after the process has loaded what it keeps for its life and before it consumes.
    0 leaves CPython's settings (WUGUAN_GC_YOUNG_THRESHOLD=0: the way back, should memory matter more).
    Either way each collection's pause is measured: a full one walks every state the worker caches."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)
    if young_threshold == 0:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *OLDER_THRESHOLDS)


def observe_pauses(service: str) -> None:
    """Hand the pauses measured since the last call to wuguan_gc_pause_seconds."""
    while _pauses:
        generation, seconds = _pauses.popleft()
        GC_PAUSE_SECONDS.labels(service, str(generation)).observe(seconds)
