"""Aging buckets. Pure: ages are measured against an as-of time passed in (the latest business
time projected), never the wall clock, so a rebuild gives the same buckets (A.REPLAY)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

DAY_SECONDS = 86_400
# Arrears: days past the occurrence anchor (the bill's due date, DN.OCCURRENCE).
ARREARS_EDGES = (30, 60, 90)
# Disputes: days since opening; 15 is the reply deadline (D.REPLY_15D).
DISPUTE_EDGES = (7, 15, 30)


def whole_days(start: datetime, as_of: datetime) -> int:
    """Whole days elapsed; never negative (an anchor after as-of is age 0)."""
    seconds = (as_of - start).total_seconds()
    return max(0, int(seconds // DAY_SECONDS))


def bucket_labels(edges: Sequence[int]) -> list[str]:
    labels, low = [], 0
    for edge in edges:
        labels.append(f"{low}-{edge}")
        low = edge + 1
    labels.append(f"{edges[-1]}+")
    return labels


def bucket_of(days: int, edges: Sequence[int]) -> str:
    """0-30, 31-60, 61-90, 90+ for edges (30, 60, 90): inclusive upper edges, as the SQL view."""
    labels = bucket_labels(edges)
    for label, edge in zip(labels, edges):
        if days <= edge:
            return label
    return labels[-1]


def buckets(items: Iterable[tuple[datetime, int]], as_of: datetime, edges: Sequence[int]) -> list[dict]:
    """items: (anchor, amount in fen). Returns every bucket in order, empty ones included."""
    out = {label: {"bucket": label, "count": 0, "amountMinor": 0} for label in bucket_labels(edges)}
    for anchor, amount in items:
        row = out[bucket_of(whole_days(anchor, as_of), edges)]
        row["count"] += 1
        row["amountMinor"] += amount
    return list(out.values())
