"""DN.LATE_FEE: 3‰ of the undisputed overdue amount per day, never compounded.

Rounding rule: for each whole day elapsed since the due date, the basis is the undisputed
overdue amount in force at the start of that day (fen); the fee is
floor(sum of daily bases x per-mille / 1000), rounded down once at the end, in whole fen.
A fee is never charged on a fee (not compounded) and never on an amount on hold.
"""
from __future__ import annotations

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def late_fee(anchor: datetime, bill, until: datetime, per_mille: int) -> tuple[int, int, int]:
    """Returns (fee in fen, whole days overdue, sum of daily bases in fen-days).

    The basis of each day is the bill's undisputed amount as it stood, in business time, at
    the start of that day, so the fee does not depend on the order inputs were processed in.
    """
    days = max(0, (until - anchor) // DAY)
    basis = sum(bill.undisputed_at(anchor + k * DAY) for k in range(days))
    return basis * per_mille // 1000, days, basis
