"""How late the worker's event loop gets to what is due: time in which no fetched batch, relay
page or health check can start. A batch decides and seals without awaiting, so the lag a batch
causes is its CPU time; a lag far above the batch times is the process starved of CPU (the host,
or a neighbour on its cores). The collector's pauses, which it measures itself, are handed to
their metric here too, on the same tick."""
from __future__ import annotations

import asyncio

from .gc_tuning import observe_pauses
from .metrics import EVENT_LOOP_LAG

INTERVAL_S = 0.05


async def watch_loop_lag(service: str, interval_s: float = INTERVAL_S) -> None:
    lag = EVENT_LOOP_LAG.labels(service)
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag.observe(max(0.0, loop.time() - due))
        observe_pauses(service)
