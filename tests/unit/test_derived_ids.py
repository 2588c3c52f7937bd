"""A.REPLAY: derived ids are RFC 4122 uuid5 of the joined parts, so ids stored before the
faster implementation are the ids a replay derives now."""
import uuid

from hypothesis import given, strategies as st

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
