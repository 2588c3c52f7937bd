"""µs per input by phase in (b)'s in-process run (issue 13): where one input's time goes.

The BatchProcessor's own steps are wrapped with timers for the duration of a `with PhaseTimer():`
block, in the bench's in-process run only (bench.in_process); the runtime itself is not changed.
Each wrapper adds two perf_counter() calls, well under 1 µs an input. The steps:

    process                      the whole batch                               -> "batch"
      _decode_all                contract decoding                             -> "decode"
      decide                     pool acquire, then (outside a transaction):
        _decide_fresh            everything before the writes:
          _drop_already_processed  processed-input lookup (a query)            -> read
          _load_states             state of streams not cached (a query)       -> read
          _decide_one              decide, decision envelopes, evolve          -> "decide"
      write_decided              pool acquire, BEGIN ... COMMIT (the transaction)
        _write                   the writes:
          store.append             hash chain and COPY of the decisions        -> store
          record_claims            unique claims                               -> store
          (the rest of _write)     processed inputs, dead letters, timers, clock -> store
        _after_commit            the caches and metrics after the commit       -> other
        (the rest)               acquire, BEGIN, COMMIT, and decide's acquire  -> store ("commit")
      store_serially             a batch whose write failed, decided and stored again -> store

Summary phases, which add up to the batch: decode, read, decide, store, other (the isolation
wrapper, post-commit bookkeeping and metrics).
"""
from __future__ import annotations

import functools
import inspect
import time
from collections import defaultdict

from services.common.runtime import batch_processor
from services.common.runtime.batch_processor import BatchProcessor

METHODS = ("process", "_decode_all", "decide", "_decide_fresh", "_drop_already_processed", "_load_states",
           "_decide_one", "write_decided", "_write", "_after_commit", "store_serially")


class PhaseTimer:
    """Seconds spent in each wrapped step while the block runs; nested steps count in both."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._restore: list[tuple[object, str, object]] = []

    def _wrap(self, owner, name: str, key: str) -> None:
        original = getattr(owner, name)
        seconds = self.seconds
        if inspect.iscoroutinefunction(original):
            @functools.wraps(original)
            async def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    seconds[key] += time.perf_counter() - started
        else:
            @functools.wraps(original)
            def timed(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    seconds[key] += time.perf_counter() - started
        self._restore.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self) -> "PhaseTimer":
        for name in METHODS:
            self._wrap(BatchProcessor, name, name)
        self._wrap(batch_processor.store, "append", "append")  # called as store.append
        self._wrap(batch_processor, "record_claims", "record_claims")  # imported by name
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._restore):
            setattr(owner, name, original)
        self._restore.clear()

    def report(self, inputs: int, wall_seconds: float) -> dict:
        """µs per input: the summary phases (adding up to the batch), and each step."""
        s = self.seconds
        us = lambda seconds: round(seconds / inputs * 1e6, 1) if inputs else None  # noqa: E731
        read = s["_drop_already_processed"] + s["_load_states"]
        decide_other = s["_decide_fresh"] - read - s["_decide_one"]
        write_other = s["_write"] - s["append"] - s["record_claims"]
        commit = (s["write_decided"] - s["_write"] - s["_after_commit"]) + (s["decide"] - s["_decide_fresh"])
        summary = {
            "decode": s["_decode_all"], "read": read, "decide": s["_decide_one"] + decide_other,
            "store": s["_write"] + commit + s["store_serially"],
            "other": s["process"] - s["_decode_all"] - s["decide"] - s["write_decided"] - s["store_serially"]
            + s["_after_commit"],
        }
        detail = {
            "decode": s["_decode_all"], "dedup_lookup": s["_drop_already_processed"],
            "state_load": s["_load_states"], "decide_envelopes_evolve": s["_decide_one"],
            "decide_bookkeeping": decide_other, "append": s["append"], "claims": s["record_claims"],
            "processed_inputs_timers_clock": write_other, "acquire_begin_commit": commit,
            "stored_again": s["store_serially"],
            "other": summary["other"],
        }
        return {
            "inputs": inputs,
            "us_per_input": {k: us(v) for k, v in summary.items()},
            "us_per_input_detail": {k: us(v) for k, v in detail.items()},
            "batch_us_per_input": us(s["process"]),
            "wall_us_per_input": us(wall_seconds),
            "note": "per input of (b)'s mix (about 98 % CDRs); read = processed-input lookup + state load,"
                    " store = append + claims + processed inputs + timers + clock + acquire/BEGIN/COMMIT",
        }
