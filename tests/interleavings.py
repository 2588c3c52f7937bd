"""Cross-topic interleavings of one set of inputs (issue 15, CP3.LATE by event time).

Kafka orders a partition, never two topics: an account's CDRs, bills and payments reach the
services in any merge of their per-(topic, key) sequences. `interleave` draws such a merge,
keeping each sequence's own order; the unit property and the e2e test feed several of them and
compare the decisions.
"""
from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def interleave(items: list, rng: random.Random, lane=lambda item: (item[0], item[1])) -> list:
    """A random merge of the items' lanes (topic, key), each lane in its given order."""
    lanes: dict = defaultdict(list)
    for item in items:
        lanes[lane(item)].append(item)
    queues = [list(reversed(q)) for q in lanes.values()]
    merged = []
    while queues:
        queue = rng.choice(queues)
        merged.append(queue.pop())
        if not queue:
            queues.remove(queue)
    return merged


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=SHANGHAI)


def late_cdr_case(account: str) -> list[tuple]:
    """Issue 15's report as specs: six months of 1,000 fen, then a 5,000-fen month; the sixth
    month's last 1,000-fen CDR (two calls of 50 minutes at 10 fen) was sent in the CDR partition
    before the seventh month's usage, but consumed after the sixth month's bill.

    ("cdr", account, start, seconds) and ("bill", account, cycle "YYYY-MM", fen), in the order of
    their own topics; the tariff is 10 fen a started minute."""
    specs = []
    months = [(2025, m) for m in range(9, 13)] + [(2026, 1), (2026, 2)]
    for year, month in months:
        first = month_start(year, month) + timedelta(days=9, hours=10)
        specs.append(("cdr", account, first, 50 * 60))
        specs.append(("cdr", account, first + timedelta(days=18), 50 * 60))
        specs.append(("bill", account, f"{year:04d}-{month:02d}", 1000))
    specs.append(("cdr", account, month_start(2026, 3) + timedelta(days=4, hours=10), 500 * 60))
    specs.append(("bill", account, "2026-03", 5000))
    return specs
