"""DN.LATE_FEE: 3‰ of the undisputed overdue amount per day, never compounded.

Rounding rule: for each whole day elapsed since the due date, the basis is the undisputed
overdue amount in force at the start of that day (fen); the fee is
floor(sum of daily bases x per-mille / 1000), rounded down once at the end, in whole fen.
A fee is never charged on a fee (not compounded) and never on an amount on hold.
"""
from __future__ import annotations

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def amount_at(segments: tuple, moment: datetime) -> int:
    amount = 0
    for start, value in segments:
        if start <= moment:
            amount = value
        else:
            break
    return amount


def late_fee(anchor: datetime, segments: tuple, until: datetime, per_mille: int) -> tuple[int, int, int]:
    """Returns (fee in fen, whole days overdue, sum of daily bases in fen-days)."""
    days = max(0, (until - anchor) // DAY)
    basis = sum(amount_at(segments, anchor + k * DAY) for k in range(days))
    return basis * per_mille // 1000, days, basis
