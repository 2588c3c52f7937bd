"""The workers' producer partitioner: aiokafka's, with each key's hash remembered.

aiokafka hashes every key with murmur2 written in Python, about 8 µs a message: the relay sends one
message per decision, so that was a few per cent of a busy worker's core. Decisions are keyed by
their stream, and a worker sends many decisions of few streams, so the hashes of recent keys are
kept. The partition is exactly aiokafka's DefaultPartitioner's (the Java client's murmur2), so a
stream's decisions stay on one partition across releases and beside other producers.
"""
from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner, murmur2

KEYS_REMEMBERED = 1 << 16  # a few MiB at most; a key seen once more than this ago is hashed again


@lru_cache(maxsize=KEYS_REMEMBERED)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key, all_partitions, available):
    """aiokafka's partitioner interface: the partition of `key` among `all_partitions`."""
    if type(key) is not bytes:  # None (spread at random) or a buffer lru_cache cannot hash
        return DefaultPartitioner()(key, all_partitions, available)
    return all_partitions[_key_hash(key) % len(all_partitions)]
