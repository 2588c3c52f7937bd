"""The workers' partitioner puts every key where aiokafka's default one does (runtime/key_partitioner.py)."""
from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from services.common.runtime.key_partitioner import partition_for


def test_every_key_goes_where_the_default_partitioner_puts_it():
    rng = random.Random(5)
    keys = [b"", b"guard-account-ACC-000123", "guard-switch-交换机-7".encode()]
    keys += [rng.randbytes(rng.randint(1, 64)) for _ in range(2000)]
    for count in (1, 3, 6, 12, 64):
        partitions = list(range(count))
        for key in keys + keys:  # the second time from the remembered hash
            assert partition_for(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_key_that_is_not_bytes_is_partitioned_as_aiokafka_does():
    partitions = list(range(6))
    assert partition_for(bytearray(b"ACC-1"), partitions, partitions) == DefaultPartitioner()(b"ACC-1", partitions,
                                                                                             partitions)
    assert partition_for(None, partitions, [4]) == 4  # no key: one of the available partitions
