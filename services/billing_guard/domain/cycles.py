"""Bill cycles: calendar months in the policy's time zone, named "YYYY-MM".

A cycle is closed once a bill for it has been received (billing.bill.v1); usage for a closed
cycle is deferred to the cycle after the latest closed one (CP3.LATE).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def cycle_of(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    # The text of f"{year:04d}-{month:02d}"; %-formatting is faster on this per-CDR path.
    return "%04d-%02d" % (local.year, local.month)


def next_cycle(cycle: str) -> str:
    year, month = int(cycle[:4]), int(cycle[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


def months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    # Clamp to the 28th: every month has one, and a window of "5 months" needs no day precision.
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))
