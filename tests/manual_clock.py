"""A clock in seconds that moves only when a test sets `now`: for code that takes a clock
(runtime.fetch_wait.FetchWait), so a test can step past its thresholds without sleeping."""
from __future__ import annotations


class ManualClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
