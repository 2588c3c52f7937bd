"""The live progress line of `wuguan run` while the sample day is decided, and waiting for the
finance API to have projected it (so the summary's money is the dashboard's)."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp

COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM processed_inputs)::int AS decided,"
    " (SELECT count(*) FROM dead_lettered_inputs)::int AS dead,"
    " (SELECT coalesce(max(global_position), 0) FROM events)::bigint AS decisions")


class SampleProgress:
    """What the progress line says; the feed moves `wave`, a poller the counts."""

    def __init__(self, waves: int):
        self.waves = waves
        self.wave = 0
        self.counts = {"decided": 0, "dead": 0, "decisions": 0}
        self.done = False

    def line(self) -> str:
        c = self.counts
        state = "done" if self.done else f"wave {self.wave} of {self.waves}"
        return (f"sample day {state}: {c['decided']:,} inputs decided, {c['decisions']:,} decisions,"
                f" {c['dead']:,} dead letters")


async def poll_counts(conn, progress: SampleProgress, interval_s: float = 0.5) -> None:
    while True:
        with contextlib.suppress(Exception):  # advisory: a slow read never stops the run
            progress.counts = dict(await conn.fetchrow(COUNTS_SQL))
        await asyncio.sleep(interval_s)


async def show_progress(console, progress: SampleProgress, interval_s: float = 0.25) -> None:
    """A live line on a terminal; nothing otherwise (the feed prints one line per wave)."""
    if not console.is_terminal:
        return
    with console.status(progress.line()) as status:
        while True:
            status.update(progress.line())
            await asyncio.sleep(interval_s)


async def api_money(api_url: str, token: str, timeout_s: float = 30, settled_s: float = 1.0) -> dict:
    """The API's money figures once its projector has stopped moving for `settled_s` (the
    sample is decided by then); {} if the API never answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    headers = {"Authorization": f"Bearer {token}"}
    last, since, money = None, loop.time(), {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
                async with session.get(f"{api_url}dashboard", headers=headers) as response:
                    if response.status == 200:
                        body = await response.json()
                        money = body.get("money", {})
                        if body.get("position") != last:
                            last, since = body.get("position"), loop.time()
                        elif last and loop.time() - since >= settled_s:
                            return money
            await asyncio.sleep(0.3)
    return money
