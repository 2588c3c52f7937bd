"""A row of the store's SELECT_COLUMNS is read into a StoredEvent by position (store._stored): the
columns must be StoredEvent's leading fields, in their order."""
from __future__ import annotations

from services.common.eventstore.records import StoredEvent
from services.common.eventstore.store import SELECT_COLUMNS, _stored


def test_the_selected_columns_are_the_stored_events_leading_fields_in_order():
    names = tuple(column.split(" AS ")[-1].strip() for column in SELECT_COLUMNS.split(","))
    assert names == StoredEvent._fields[:len(names)]


def test_a_row_becomes_the_stored_event_with_the_fields_it_does_not_select_left_empty():
    row = tuple(range(16))
    event = _stored(row)
    assert event.global_position == 0 and event.chain_seq == 15
    assert (event.input_hash, event.input_offset, event.claim_key, event.claim_value) == (None,) * 4
