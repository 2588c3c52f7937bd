"""Each worker walks its service's hash chains periodically and exports the result for the
WuguanVerifyFailed / WuguanVerifyNotRunning alerts. Whole, not from the last walk's end:
tampering with an old event must be found too (about 20 s per million events). Its service's
only: each service's workers answer for the chains they write and hash only those. Postgres still
reads the whole log for each walk (in position order, the other services' rows left out there:
about 0.5 s per million events, migration 0015), as no index holds a chain's events any more.
`wuguan verify` (and the hourly CronJob of deploy/k8s) walks every chain."""
from __future__ import annotations

import asyncio
import logging
import time

from ..eventstore.verify import verify_chain
from .metrics import VERIFY_EVENTS_CHECKED, VERIFY_LAST_RUN, VERIFY_OK

log = logging.getLogger(__name__)
PAGE_SIZE = 250


class PeriodicVerifier:
    def __init__(self, *, service: str, pool, interval_s: float, claims_made=None):
        self.service = service
        self.claims_made = {service: claims_made} if claims_made is not None else None
        self.pool = pool
        self.interval_s = interval_s
        self.verified_through = 0  # events found intact by the last whole walk

    async def verify_once(self) -> bool:
        async with self.pool.acquire() as conn:
            # Small pages: the walk hashes each page on the worker's event loop, and a page of
            # 5,000 events held it for ~150 ms at a time, the inputs' latency with it.
            report = await verify_chain(conn, claims_made=self.claims_made, page_size=PAGE_SIZE,
                                        service=self.service)
        VERIFY_LAST_RUN.labels(self.service).set(time.time())
        VERIFY_EVENTS_CHECKED.labels(self.service).set(report.events_checked)
        VERIFY_OK.labels(self.service).set(1 if report.ok else 0)
        if report.ok:
            self.verified_through = report.events_checked
        else:
            log.error("event store verification failed: %s", "; ".join(report.problems[:3]))
        return report.ok

    async def run(self) -> None:
        while True:
            try:
                await self.verify_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away; try again next round
                log.warning("verify: %s", type(exc).__name__)
            await asyncio.sleep(self.interval_s)
