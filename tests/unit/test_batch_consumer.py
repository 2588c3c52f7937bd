"""The pure parts of the batch consumer: how a fetch becomes batches and which offsets they commit
(the consumer itself runs in every end-to-end test: test_platform_e2e, test_rebalance_mid_run,
test_chaos_kill_restart, test_no_input_lost)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP
from hypothesis import given, strategies as st

from services.common.runtime.batch_consumer import BatchConsumer, bounded, merged, next_offsets
from services.common.runtime.dead_letters import InputMessage


def record(offset: int, timestamp: int, value: bytes = b"x") -> SimpleNamespace:
    return SimpleNamespace(offset=offset, timestamp=timestamp, key=b"k", value=value, headers=())


def test_partitions_are_merged_by_publish_time_and_each_keeps_its_offset_order():
    bills, payments = TP("billing.bill.v1", 0), TP("billing.payment.v1", 0)
    fetch = {bills: [record(10, 100), record(11, 300)], payments: [record(5, 200), record(6, 150)]}
    order = [(m.topic, m.offset) for m in merged(fetch)]
    assert order == [("billing.bill.v1", 10), ("billing.payment.v1", 5), ("billing.payment.v1", 6),
                     ("billing.bill.v1", 11)]


@given(st.dictionaries(st.integers(0, 5), st.lists(st.integers(0, 1000), max_size=30), max_size=6))
def test_merging_loses_nothing_and_never_reorders_a_partition(stamps):
    fetch = {TP("t", p): [record(i, ts) for i, ts in enumerate(times)] for p, times in stamps.items()}
    out = list(merged(fetch))
    assert len(out) == sum(map(len, stamps.values()))
    for p in stamps:
        assert [m.offset for m in out if m.partition == p] == list(range(len(stamps[p])))


@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 10), st.integers(1, 120))
def test_batches_keep_order_and_respect_count_and_bytes(sizes, max_count, max_bytes):
    fetch = {TP("t", 0): [record(i, 0, b"v" * n) for i, n in enumerate(sizes)]}
    batches = list(bounded(merged(fetch), max_count, max_bytes))
    assert [m.offset for b in batches for m in b] == list(range(len(sizes)))
    for batch in batches:
        assert len(batch) <= max_count
        assert len(batch) == 1 or sum(len(m.value) for m in batch) <= max_bytes


def test_offsets_committed_are_one_past_the_last_input_of_each_partition():
    fetch = {TP("a", 0): [record(7, 0), record(8, 0)], TP("a", 1): [record(3, 0)]}
    assert next_offsets(list(merged(fetch))) == {TP("a", 0): 9, TP("a", 1): 4}


class _Acknowledging(BatchConsumer):
    """The consumer's acknowledgement alone: what it would commit and fetch again."""

    def __init__(self):  # no faust: only _acknowledge's own state
        self.committed = []

    def _commit_later(self, offsets):
        self.committed.append(offsets)


def message(partition: int, offset: int) -> InputMessage:
    return InputMessage(topic="t", partition=partition, offset=offset, key=b"k", value=b"v")


async def test_CONTRACT_NOTHING_LOST_offsets_move_only_once_every_batch_delivered_before_is_durable():
    """A batch is durable only after the one before it (batch_pipeline writes in order), but the
    acknowledgement does not lean on that: a later batch durable first commits nothing until the
    earlier one is; what a batch did not store is fetched again from its first offset; and once a
    write did not end (the worker stopping), no later batch commits: its offsets would take the
    unwritten batch's along."""
    loop = asyncio.get_running_loop()
    consumer = _Acknowledging()
    batches = [[message(0, 1)], [message(0, 2), message(1, 7), message(1, 8)], [message(0, 3)], [message(1, 9)]]
    futures = [loop.create_future() for _ in batches]
    for batch, durable in zip(batches, futures):
        consumer._writing().append((batch, durable))
        durable.add_done_callback(consumer._acknowledge)
    futures[1].set_result([message(1, 8), message(1, 7)])  # partition 1 fenced out: not committed
    await asyncio.sleep(0)
    assert consumer.committed == []
    futures[0].set_result([])
    await asyncio.sleep(0)
    assert consumer.committed == [{TP("t", 0): 2}, {TP("t", 0): 3}] and consumer._to_rewind == {TP("t", 1): 7}
    futures[2].cancel()
    futures[3].set_result([])
    await asyncio.sleep(0)
    assert len(consumer.committed) == 2 and not consumer._writing()
