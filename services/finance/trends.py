"""The dashboard's trends per day and its reminders scheduled per channel.

Days are local (Asia/Shanghai, the business's calendar) and end at the projection's as-of day,
not the wall clock's, so the same log always draws the same trend (A.REPLAY).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

ZONE = ZoneInfo("Asia/Shanghai")
TREND_DAYS = 14

# One grouped pass per source over the window; each yields (day, count).
PER_DAY_SQL = {
    # kept by the projector (finance.daily_decisions): counting `events` here scanned the whole log
    "decisions": "SELECT day, decisions::int AS n FROM finance.daily_decisions"
                 " WHERE day >= ($1 AT TIME ZONE 'Asia/Shanghai')::date AND day < ($2 AT TIME ZONE 'Asia/Shanghai')::date",
    "arrearsOpened": "SELECT (anchor_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*)::int AS n"
                     " FROM finance.arrears WHERE anchor_at >= $1 AND anchor_at < $2 GROUP BY 1",
    "arrearsClosed": "SELECT (closed_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*)::int AS n"
                     " FROM finance.arrears WHERE closed_at >= $1 AND closed_at < $2 GROUP BY 1",
    "disputesOpened": "SELECT (opened_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*)::int AS n"
                      " FROM finance.disputes WHERE opened_at >= $1 AND opened_at < $2 GROUP BY 1",
    "disputesAnswered": "SELECT (replied_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*)::int AS n"
                        " FROM finance.disputes WHERE replied_at >= $1 AND replied_at < $2 GROUP BY 1",
}
SCHEDULED_SQL = "SELECT channel, scheduled::int AS n FROM finance.scheduled_reminders"  # kept by the projector


def window(as_of: datetime) -> list[date]:
    last = as_of.astimezone(ZONE).date()
    return [last - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]


async def per_day(conn: asyncpg.Connection, as_of: datetime | None) -> list[dict]:
    """[{day, decisions, arrearsOpened, arrearsClosed, disputesOpened, disputesAnswered}], oldest first."""
    if as_of is None:
        return []
    days = window(as_of)
    start = datetime.combine(days[0], time(0), ZONE)
    end = datetime.combine(days[-1] + timedelta(days=1), time(0), ZONE)
    rows = {day: {"day": day.isoformat(), **{k: 0 for k in PER_DAY_SQL}} for day in days}
    for key, sql in PER_DAY_SQL.items():
        for r in await conn.fetch(sql, start, end):
            if r["day"] in rows:
                rows[r["day"]][key] = r["n"]
    return list(rows.values())


async def scheduled_by_channel(conn: asyncpg.Connection) -> dict[str, int]:
    """Reminders scheduled per channel: the work ahead, shown before any is due."""
    return {r["channel"]: r["n"] for r in await conn.fetch(SCHEDULED_SQL) if r["channel"]}
