"""Read-only stream views (services/common/stream_views.py) and how the batch processor checks
the versions they were read at."""
import pytest

from services.common.eventstore.store import ConcurrencyConflict
from services.common.runtime.batch_processor import BatchProcessor
from services.common.stream_views import base_stream, evolve_loaded, is_view, view_name, view_of, views_by_stream


class Counting:
    """evolve counts decisions per state kind: a stream counts all, a view only 'big' ones."""

    def evolve(self, state, decision):
        kind, n = state
        if kind == "view" and decision["decisionType"] != "big":
            return state
        return kind, n + 1


def test_view_names_round_trip():
    view = view_of("guard-account-A1", "charges")
    assert view == "guard-account-A1#charges" and is_view(view) and view_name(view) == "charges"
    assert base_stream(view) == "guard-account-A1" and base_stream("guard-account-A1") == "guard-account-A1"
    assert not is_view("guard-account-A1") and view_name("guard-account-A1") is None


def test_a_decision_reaches_its_stream_and_that_streams_views_only():
    states = {"s1": ("stream", 0), "s1#v": ("view", 0), "s2": ("stream", 0), "s2#v": ("view", 0)}
    evolve_loaded(Counting(), states, {"streamId": "s1", "decisionType": "big"})
    evolve_loaded(Counting(), states, {"streamId": "s1", "decisionType": "small"})
    assert states == {"s1": ("stream", 2), "s1#v": ("view", 1), "s2": ("stream", 0), "s2#v": ("view", 0)}
    assert views_by_stream(states) == {"s1": ("s1#v",), "s2": ("s2#v",)}


def test_read_versions_stand_a_view_for_its_stream():
    versions = BatchProcessor._read_versions({"a": (3, None), "a#v": (3, None), "b#v": (7, None)}, written={})
    assert versions == {"a": 3, "b": 7}
    # Written streams are checked by the append itself; their views must agree with them.
    assert BatchProcessor._read_versions({"a": (3, None), "a#v": (3, None)}, written={"a": []}) == {}


@pytest.mark.parametrize("states,written", [
    ({"a": (3, None), "a#v": (4, None)}, {}),            # a cached state older than the log
    ({"a": (3, None), "a#v": (4, None)}, {"a": []}),
])
def test_a_view_read_at_another_version_than_its_cached_stream_is_a_conflict(states, written):
    with pytest.raises(ConcurrencyConflict):
        BatchProcessor._read_versions(states, written)
