"""The runtime's side of snapshot streams (eventstore/snapshots.py): which of a decider's streams
are kept as snapshots, loading them, and writing those a batch changed.

Every transaction that changes such a stream's state, or appends a decision to it, writes its
snapshot, so a snapshot always includes every event of its stream and loading it needs no fold.
A stream that has no snapshot yet (a store written before the decider gave it a codec) is folded
from its events once, like any other stream, and gets its snapshot at its first change. Events
appended after a snapshot without writing it (a worker of an older version during a rolling
deploy) are folded onto it when it is loaded. Such a state is not derivable from the log alone:
the changes that are not stored live in the snapshot only (the guard's switches could be rebuilt
from the charges' sequence numbers in commit order, which the log does hold).
"""
from __future__ import annotations

from collections import Counter

from ..eventstore.snapshots import check_snapshots, events_after, load_snapshots, write_snapshots
from ..stream_views import base_stream, is_view


class SnapshotStreams:
    def __init__(self, decider, service: str):
        self._codec_of = getattr(decider, "snapshot_codec", None)
        self.service = service
        self.revisions: dict[str, int] = {}  # the committed revision of each snapshot stream this worker holds

    def codec(self, stream_id: str):
        return self._codec_of(stream_id) if self._codec_of is not None else None

    def split(self, stream_ids) -> tuple[list[str], list[str]]:
        """(snapshot streams, the others)."""
        if self._codec_of is None:
            return [], list(stream_ids)
        kept, others = [], []
        for stream_id in stream_ids:
            if self._codec_of(base_stream(stream_id)) is None:
                others.append(stream_id)
            elif is_view(stream_id):  # its events lack the changes that are not stored
                raise ValueError(f"{stream_id}: a view of a snapshot stream cannot be folded from its events")
            else:
                kept.append(stream_id)
        return kept, others

    async def load(self, conn, stream_ids: list[str], evolve) -> tuple[dict[str, tuple[int, object]], list[str]]:
        """(version, state) of the streams that have a snapshot, with any event appended after it
        folded in by `evolve`; and the streams that have none."""
        found = await load_snapshots(conn, self.service, stream_ids)
        states = {}
        for stream_id, snapshot in found.items():
            states[stream_id] = (snapshot.version, self.codec(stream_id).load(snapshot.state))
            self.revisions[stream_id] = snapshot.revision
        if found:
            for stream_id, events in (await events_after(conn, {s: v for s, (v, _) in states.items()})).items():
                version, state = states[stream_id]
                for version, payload in events:
                    state = evolve(state, payload)
                states[stream_id] = (version, state)
        missing = [s for s in stream_ids if s not in found]
        for stream_id in missing:
            self.revisions[stream_id] = 0
        return states, missing

    async def write(self, conn, states: dict, working: dict, appended: Counter) -> dict[str, int]:
        """Write the snapshot of each snapshot stream the batch changed or appended to (`appended`:
        stream -> events appended); check that the others it read did not move. Returns the
        revisions written, for after the commit."""
        written, read = [], {}
        for stream_id, (version, state) in states.items():
            # Only snapshot streams were loaded with a revision: a batch's accounts, claims and
            # views are passed over without asking the decider for a codec.
            revision = self.revisions.get(stream_id)
            if revision is None:
                continue
            if working[stream_id] is state and not appended[stream_id]:
                read[stream_id] = revision
                continue
            written.append((stream_id, version + appended[stream_id], revision,
                            self.codec(stream_id).dump(working[stream_id])))
        await write_snapshots(conn, self.service, written)
        await check_snapshots(conn, self.service, read)
        return {stream_id: revision + 1 for stream_id, _, revision, _ in written}

    def committed(self, revisions: dict[str, int]) -> None:
        self.revisions.update(revisions)

    def forget(self, stream_ids) -> None:
        for stream_id in stream_ids:
            self.revisions.pop(stream_id, None)
