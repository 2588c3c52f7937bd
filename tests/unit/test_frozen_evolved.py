"""services.common.frozen.evolved stands in for dataclasses.replace on the folded states."""
from dataclasses import FrozenInstanceError, replace

import pytest
from hypothesis import given, strategies as st

from services.billing_guard.domain.account import AccountState
from services.common.frozen import evolved

totals = st.dictionaries(st.text(min_size=1, max_size=7), st.integers(0, 10**9), max_size=4)


@given(cycle_totals=totals, free_used=totals, alerted=st.frozensets(st.text(max_size=7), max_size=3))
def test_evolved_equals_replace(cycle_totals, free_used, alerted):
    before = AccountState(fields={"name": "x"}, cycle_totals={"2026-10": 5})
    changes = dict(cycle_totals=cycle_totals, free_used=free_used, huge_alerted=alerted)
    after = evolved(before, **changes)
    assert after == replace(before, **changes)
    assert type(after) is AccountState
    assert before.cycle_totals == {"2026-10": 5} and before.huge_alerted == frozenset()


def test_evolved_state_stays_frozen_and_keeps_unchanged_fields():
    before = AccountState(fields={"name": "x"}, audit=(("2026-10", "d", "t", ()),))
    after = evolved(before, cycle_totals={"2026-11": 1})
    assert after.fields is before.fields and after.audit == before.audit
    with pytest.raises(FrozenInstanceError):
        after.cycle_totals = {}
