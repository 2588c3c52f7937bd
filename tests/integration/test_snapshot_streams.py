"""Snapshot streams on a real Postgres (issue 13): a state kept as one row, written with the
batch that changed it, refused to a second writer that read an older revision."""
from __future__ import annotations

import pytest

from services.common.eventstore.snapshots import check_snapshots, load_snapshots, write_snapshots
from collections import Counter
from datetime import datetime, timezone

from services.common.eventstore import store
from services.common.eventstore.records import NewEvent
from services.common.eventstore.store import ConcurrencyConflict
from services.common.runtime.snapshot_streams import SnapshotStreams

pytestmark = pytest.mark.integration


class CountCodec:
    """A codec: the state is an int, kept as {"n": int}."""

    def dump(self, state):
        return {"n": state}

    def load(self, data):
        return data["n"]


class CounterDecider:
    service = "billing_guard"

    def snapshot_codec(self, stream_id):
        return CountCodec() if stream_id.startswith("count-") else None


async def write(conn, rows):
    async with conn.transaction():
        await write_snapshots(conn, "billing_guard", rows)


async def test_a_snapshot_is_written_then_read_back(conn):
    await write(conn, [("count-a", 0, 0, {"n": 3}), ("count-b", 2, 0, {"n": 7})])
    found = await load_snapshots(conn, "billing_guard", ["count-a", "count-b", "count-c"])
    assert found["count-a"] == (0, 1, {"n": 3})
    assert found["count-b"] == (2, 1, {"n": 7})
    assert "count-c" not in found


async def test_a_writer_that_read_an_older_revision_is_refused(conn):
    await write(conn, [("count-a", 0, 0, {"n": 1})])
    await write(conn, [("count-a", 0, 1, {"n": 2})])  # the owner, at the revision it read
    with pytest.raises(ConcurrencyConflict):
        await write(conn, [("count-a", 0, 1, {"n": 99})])  # a former owner, one revision behind
    with pytest.raises(ConcurrencyConflict):
        await write(conn, [("count-a", 0, 0, {"n": 99})])  # one that never saw the row
    assert (await load_snapshots(conn, "billing_guard", ["count-a"]))["count-a"].state == {"n": 2}


async def test_a_snapshot_read_but_not_written_may_not_have_moved(conn):
    await write(conn, [("count-a", 0, 0, {"n": 1})])
    await check_snapshots(conn, "billing_guard", {"count-a": 1, "count-new": 0})
    await write(conn, [("count-a", 0, 1, {"n": 2})])
    with pytest.raises(ConcurrencyConflict):
        await check_snapshots(conn, "billing_guard", {"count-a": 1})


async def test_the_runtime_writes_only_what_changed_and_checks_the_rest(conn):
    streams = SnapshotStreams(CounterDecider(), "billing_guard")
    assert streams.split(["count-a", "count-b", "other", "other#view"]) == (
        ["count-a", "count-b"], ["other", "other#view"])
    loaded, missing = await streams.load(conn, ["count-a", "count-b"], lambda state, event: state)
    assert loaded == {} and missing == ["count-a", "count-b"]  # no snapshot yet: folded from events
    states = {"count-a": (0, 0), "count-b": (0, 0), "other": (4, "x")}
    working = {"count-a": 5, "count-b": 0, "other": "y"}
    async with conn.transaction():
        written = await streams.write(conn, states, working, Counter({"count-b": 1}))
    streams.committed(written)
    assert written == {"count-a": 1, "count-b": 1}  # a changed, b appended to; other is no snapshot stream
    fresh = SnapshotStreams(CounterDecider(), "billing_guard")
    loaded, missing = await fresh.load(conn, ["count-a", "count-b"], lambda state, event: state)
    assert loaded == {"count-a": (0, 5), "count-b": (1, 0)} and missing == []
    assert fresh.revisions == {"count-a": 1, "count-b": 1}


async def test_events_appended_after_a_snapshot_are_folded_onto_it(conn):
    """A worker of an older version, during a rolling deploy, appends to the stream without
    writing its snapshot: the snapshot is behind the log, and loading it must not lose those."""
    await write(conn, [("count-a", 0, 0, {"n": 5})])
    async with conn.transaction():
        await store.append(conn, [(0, [NewEvent(
            event_id="00000000-0000-5000-8000-000000000001", stream_id="count-a", event_type="test.Added",
            service="billing_guard", business_time=datetime(2026, 12, 1, tzinfo=timezone.utc),
            payload={"add": 2}, causation_id="input-1")])])
    streams = SnapshotStreams(CounterDecider(), "billing_guard")
    loaded, missing = await streams.load(conn, ["count-a"], lambda n, event: n + event["add"])
    assert loaded == {"count-a": (1, 7)} and missing == []


async def test_a_view_of_a_snapshot_stream_is_refused_rather_than_folded_without_its_changes():
    streams = SnapshotStreams(CounterDecider(), "billing_guard")
    with pytest.raises(ValueError, match="view of a snapshot stream"):
        streams.split(["count-a#history"])
