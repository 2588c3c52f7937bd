"""Read-only views of a stream: the stream's events folded into another state.

The state a worker keeps hot for a stream must stay small, since it is cached for every active
stream (an account's state holds aggregates, not every charge). A rare input that needs more (a
dispute needs the account's charges) names a view, `<stream>#<name>`: the runtime reads the
stream's events and folds them with the decider's evolve for that view, whenever asked. A view is
never written to and never cached. Stream ids are built from contract ids, which cannot contain
`#` (schemas.fields.ID_PATTERN).
"""
from __future__ import annotations

SEPARATOR = "#"


def view_of(stream_id: str, name: str) -> str:
    return f"{stream_id}{SEPARATOR}{name}"


def is_view(stream_id: str) -> bool:
    return SEPARATOR in stream_id


def view_name(stream_id: str) -> str | None:
    return stream_id.split(SEPARATOR, 1)[1] if SEPARATOR in stream_id else None


def base_stream(stream_id: str) -> str:
    """The stream a view reads (a stream is its own base)."""
    return stream_id.split(SEPARATOR, 1)[0]


def evolve_loaded(decider, states: dict, decision: dict) -> None:
    """Apply a stored decision to its stream's state and to every loaded view of that stream,
    so a later input of the same batch sees both up to date."""
    target = decision["streamId"]
    for stream_id in states:
        if stream_id == target or (SEPARATOR in stream_id and base_stream(stream_id) == target):
            states[stream_id] = decider.evolve(states[stream_id], decision)


def views_by_stream(states: dict) -> dict[str, tuple[str, ...]]:
    """The loaded views of each stream."""
    views: dict[str, tuple[str, ...]] = {}
    for stream_id in states:
        if is_view(stream_id):
            base = base_stream(stream_id)
            views[base] = views.get(base, ()) + (stream_id,)
    return views
