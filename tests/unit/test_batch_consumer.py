"""The pure parts of the batch consumer: how a fetch becomes batches and which offsets they commit
(the consumer itself runs in every end-to-end test: test_platform_e2e, test_rebalance_mid_run,
test_chaos_kill_restart, test_no_input_lost)."""
from __future__ import annotations

from types import SimpleNamespace

from faust.types import TP
from hypothesis import given, strategies as st

from services.common.runtime.batch_consumer import bounded, merged, next_offsets


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
