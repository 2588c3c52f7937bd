"""A consumer's fetch wait (runtime/fetch_wait.py): short while records arrive, long once none
have come for IDLE_AFTER_S, short again with the first fetch that brings any."""
from __future__ import annotations

import pytest

from services.common.config import ConfigError, Settings
from services.common.runtime.fetch_wait import IDLE_AFTER_S, FetchWait

from ..manual_clock import ManualClock


def test_empty_fetches_keep_the_short_wait_until_the_consumer_has_been_idle_long_enough():
    clock = ManualClock(100.0)
    wait = FetchWait(20, 250, clock)
    clock.now += IDLE_AFTER_S / 2
    assert wait.after_fetch(False) == 20
    clock.now += IDLE_AFTER_S / 2
    assert wait.after_fetch(False) == 250
    assert wait.after_fetch(False) == 250


def test_the_first_fetch_that_brings_records_makes_the_wait_short_again():
    clock = ManualClock(100.0)
    wait = FetchWait(20, 250, clock)
    clock.now += 5 * IDLE_AFTER_S
    assert wait.after_fetch(False) == 250
    assert wait.after_fetch(True) == 20
    clock.now += IDLE_AFTER_S / 2
    assert wait.after_fetch(False) == 20  # idle is counted from the last records, not the last fetch


def test_a_steady_flow_never_reaches_the_long_wait():
    clock = ManualClock(100.0)
    wait = FetchWait(20, 250, clock)
    for _ in range(100):  # a record every half of IDLE_AFTER_S, with empty fetches between
        clock.now += IDLE_AFTER_S / 4
        assert wait.after_fetch(False) == 20
        clock.now += IDLE_AFTER_S / 4
        assert wait.after_fetch(True) == 20


def test_the_idle_wait_is_read_from_the_environment_and_refused_out_of_range():
    assert Settings.from_env({"WUGUAN_FETCH_IDLE_WAIT_MS": "400"}).fetch_idle_wait_ms == 400
    with pytest.raises(ConfigError, match="WUGUAN_FETCH_IDLE_WAIT_MS"):
        Settings.from_env({"WUGUAN_FETCH_IDLE_WAIT_MS": "0"})
