"""A.REPLAY: derived ids are RFC 4122 uuid5 of the joined parts, so ids stored before the
faster implementation are the ids a replay derives now."""
import uuid

from hypothesis import given, strategies as st

from harness.input_events import Event
from services.common.decisions import input_decision_id
from services.common.ids import WUGUAN_NAMESPACE, derived_id

parts = st.lists(st.one_of(st.text(), st.integers(), st.none()), min_size=1, max_size=4)


@given(parts)
def test_derived_id_is_uuid5_of_the_joined_parts(values):
    expected = uuid.uuid5(WUGUAN_NAMESPACE, "|".join(str(v) for v in values))
    assert derived_id(*values) == str(expected)
    assert uuid.UUID(derived_id(*values)).version == 5


def test_the_namespace_is_pinned():
    # Computed with uuid.uuid5 before the rewrite; a changed namespace would re-key every stored decision.
    assert derived_id("e1", "guard.CdrRated", 0) == "878527b3-8591-5d79-9b7e-4e7533f1ac7c"


def _envelopes(kinds, names_input=True, service="billing_guard"):
    from datetime import datetime, timezone

    from services.common.decider import Decision
    from services.common.decisions import decision_envelopes

    event = Event("input-1", "billing.cdr.v1", datetime(2026, 12, 1, tzinfo=timezone.utc), {})
    return decision_envelopes([Decision(k, ("R",), "ok", {}) for k in kinds], event=event, stream_id="s",
                              service=service, service_version="t", policy_version="p", names_input=names_input)


def test_an_inputs_first_decision_is_named_by_the_input_alone():
    """Whatever an input is decided as, its first decision has one id, so the store's unique index
    on decision ids finds a redelivered input and refuses a second decision of it (migration 0009)."""
    rated, unrated = _envelopes(["guard.CdrRated", "guard.X"]), _envelopes(["guard.CdrUnrated"])
    assert rated[0]["decisionId"] == unrated[0]["decisionId"] == input_decision_id("billing_guard", "input-1")
    assert rated[1]["decisionId"] == derived_id("input-1", "guard.X", 1)
    assert _envelopes(["dunning.X"], service="dunning")[0]["decisionId"] != rated[0]["decisionId"]
    # A held input's StreamBlocked decision must leave the name to the input's real decision.
    assert _envelopes(["guard.StreamBlocked"], names_input=False)[0]["decisionId"] == derived_id(
        "input-1", "guard.StreamBlocked", 0)
