"""Bill cycles: calendar months in the policy's time zone, named "YYYY-MM".

A CDR belongs to the cycle that contains its call start time (SPEC CP3, seed art. 17), whatever
order it arrives in. A cycle closes when the account's CDR watermark (the latest call start
among the account's CDRs, all of which travel in one partition of billing.cdr.v1, so its order
is the input's own) passes the cycle's end plus the policy's grace (CP3.LATE). The bill from
billing.bill.v1 never closes a cycle: it reaches the guard on another topic, in no fixed order
with the CDRs, so letting it close one would make charges depend on arrival timing.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


def cycle_of(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    # The text of f"{year:04d}-{month:02d}"; %-formatting is faster on this per-CDR path.
    return "%04d-%02d" % (local.year, local.month)


# Cached: a rated CDR asks for the cycles before its own (CP3.HUGE_FEE's baseline), and an
# account's charges fall in a handful of cycles.
@lru_cache(maxsize=1024)
def next_cycle(cycle: str) -> str:
    year, month = int(cycle[:4]), int(cycle[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}"


@lru_cache(maxsize=1024)
def previous_cycle(cycle: str) -> str:
    """Cached as next_cycle is: each month of CP3.HUGE_FEE's baseline, for every rated CDR."""
    year, month = int(cycle[:4]), int(cycle[5:7])
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}"


def cycle_end(cycle: str, zone: ZoneInfo) -> datetime:
    """The first instant after the cycle: midnight starting the next month, local time."""
    following = next_cycle(cycle)
    return datetime(int(following[:4]), int(following[5:7]), 1, tzinfo=zone)


def months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    # Clamp to the 28th: every month has one, and a window of "5 months" needs no day precision.
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))
