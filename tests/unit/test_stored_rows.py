"""A row of the store's SELECT_COLUMNS is read into a StoredEvent by position (store._stored): the
columns must be StoredEvent's leading fields, in their order."""
from __future__ import annotations

import re

import pytest

from services.common.eventstore.records import StoredEvent
from services.common.eventstore.store import SELECT_COLUMNS, _stored, chain_name


def test_the_selected_columns_are_the_stored_events_leading_fields_in_order():
    names = tuple(column.split(" AS ")[-1].strip() for column in SELECT_COLUMNS.split(","))
    assert names == StoredEvent._fields[:len(names)]


def test_a_row_becomes_the_stored_event_with_the_fields_it_does_not_select_left_empty():
    row = tuple(range(16))
    event = _stored(row)
    assert event.global_position == 0 and event.chain_seq == 15
    assert (event.input_hash, event.input_offset, event.claim_key, event.claim_value) == (None,) * 4


def test_a_walk_hashes_its_rows_first_columns_as_the_chain_entry_of_their_event():
    """verify reads WALK_COLUMNS and hashes each row as it comes (chain.entry_of): its first
    columns are the entry's fields in their order, and the names it reads others by are theirs."""
    from services.common.eventstore import verify
    from services.common.eventstore.chain import ENTRY_FIELDS

    names = [column.strip().split("::")[0] for column in verify.WALK_COLUMNS.split(",")]
    snake = [re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower() for field in ENTRY_FIELDS]
    assert names[:len(ENTRY_FIELDS)] == snake
    by_name = {name: names.index(name) for name in names}
    assert (verify.POSITION, verify.SERVICE, verify.PAYLOAD, verify.PREV_HASH, verify.HASH, verify.CHAIN_SEQ,
            verify.CLAIM_KEY, verify.CLAIM_VALUE) == tuple(by_name[n] for n in (
                "global_position", "service", "payload", "prev_hash", "hash", "chain_seq", "claim_key", "claim_value"))


def test_sealing_builds_the_stored_event_field_by_field():
    """store.seal and BatchProcessor._decide_one build their tuples positionally (cheaper, once
    per decision): each field lands where its name says."""
    from datetime import datetime, timezone

    from services.common.eventstore.chain import chain_entry, entry_of, link_of
    from services.common.eventstore.records import NewEvent
    from services.common.eventstore.store import seal

    assert NewEvent._fields == ("event_id", "stream_id", "event_type", "service", "business_time", "payload",
                                "causation_id", "correlation_id", "schema_version", "chain_id", "input_hash",
                                "input_offset", "claim_key", "claim_value")
    new = NewEvent("e-1", "s-1", "t.Happened", "svc", datetime(2026, 1, 1, tzinfo=timezone.utc), {"n": 1},
                   "in-1", "corr-1", 1, "svc/t/0", "hash-1", 7, "key-1", "value-1")
    [stored] = seal([new], iter([42]), {"svc/t/0": [4, b"prev"]}, {"s-1": 2})
    expected = {"global_position": 42, "stream_version": 3, "recorded_at": None, "prev_hash": b"prev",
                "chain_seq": 5, **{f: getattr(new, f) for f in NewEvent._fields}}
    assert stored._asdict() == {**expected, "hash": link_of(b"prev", chain_entry(42, 3, new))}
    # A walk hashes the stored row's entry fields, read in their order, to the same bytes.
    row = tuple(getattr(stored, f) for f in StoredEvent._fields[:8]) + (
        stored.causation_id, stored.correlation_id, stored.payload)
    assert entry_of(row) == chain_entry(42, 3, new)


def test_a_chain_is_named_by_service_topic_and_partition_and_a_service_name_may_not_hold_a_slash():
    assert chain_name("billing_guard", "billing.cdr.v1", 3) == "billing_guard/billing.cdr.v1/3"
    with pytest.raises(ValueError, match="separates"):
        chain_name("billing/guard", "billing.cdr.v1", 3)  # its chains would pass for the service "billing"'s


def test_an_append_is_recorded_as_the_runs_of_one_service_s_positions():
    """store.appended_runs: one run for an append of one service's decisions; a load that mixes
    services gets a run each time the service changes, so that no two of a transaction's appends
    overlap (store.COMMIT_ORDER)."""
    from services.common.eventstore.store import appended_runs

    assert appended_runs([(7, "guard"), (8, "guard"), (11, "guard")]) == [["guard", 7, 11, 3]]
    assert appended_runs([(1, "guard"), (2, "cards"), (3, "cards"), (4, "guard"), (5, "guard")]) == [
        ["guard", 1, 1, 1], ["cards", 2, 3, 2], ["guard", 4, 5, 2]]
    assert appended_runs([]) == []


def test_an_append_anchors_each_chain_at_its_first_event_and_every_64th():
    """store.chain_anchors (migration 0015): a chain read between two anchors holds at most 63 of
    its events, and an append's run of a chain, however seldom the chain grows, starts at one."""
    from services.common.eventstore.store import chain_anchors

    placed = [(10, "a", 63), (11, "b", 5), (12, "a", 64), (13, "a", 65), (14, "b", 6), (15, "a", 66)]
    assert chain_anchors(placed) == [["a", 63, 10], ["b", 5, 11], ["a", 65, 13]]
    assert [a[1] for a in chain_anchors((n, "c", n) for n in range(1, 200))] == [1, 65, 129, 193]
    assert chain_anchors([]) == []
