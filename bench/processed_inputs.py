"""How many inputs each service has decided or dead-lettered, polled ten times a second while a
stage runs. The inputs that decided something are recorded by their first decision (migration
0009), so counting them through the `processed_inputs` view scans the whole log: at 10 Hz that is
load the bench would measure as the workers'. Instead the log is followed in commit order
(store.committed_after, as the relays follow it), and each poll reads only the rows committed
since the last."""
from __future__ import annotations

from collections import Counter

import asyncpg

from services.common.eventstore.store import committed_after

# $1, $2: the checkpoint. A row per (service, topic) of the first decisions committed since (a
# first decision's chain names its input's topic: store.chain_name), and one with the new checkpoint.
_FRESH = f"""
WITH fresh AS (SELECT tx_id, global_position, service, chain_id, input_hash FROM {committed_after(page=str(2**31 - 1))})
SELECT service, split_part(chain_id, '/', 2) AS topic, count(*) AS n, NULL::xid8 AS tx_id, NULL::bigint AS global_position
FROM fresh WHERE input_hash IS NOT NULL GROUP BY 1, 2
UNION ALL (SELECT NULL, NULL, 0, tx_id, global_position FROM fresh ORDER BY tx_id DESC, global_position DESC LIMIT 1)
"""
# Inputs that decided nothing, and dead letters: rows of their own, few in a bench run.
_ROWS = ("SELECT consumer, topic, count(*) AS n FROM (SELECT consumer, topic FROM processed_input_rows"
         " UNION ALL SELECT consumer, topic FROM dead_lettered_inputs) i GROUP BY 1, 2")


class ProcessedInputs:
    def __init__(self, db: asyncpg.Connection):
        self.db = db
        self._checkpoint = (0, 0)
        self._decided: Counter = Counter()  # (service, topic) -> inputs recorded by a decision so far

    async def counts(self) -> Counter:
        """(service, topic) -> inputs processed or dead-lettered."""
        for r in await self.db.fetch(_FRESH, *self._checkpoint):
            if r["service"] is not None:
                self._decided[r["service"], r["topic"]] += r["n"]
            if r["tx_id"] is not None:
                self._checkpoint = (r["tx_id"], r["global_position"])
        return self._decided + Counter({(r["consumer"], r["topic"]): r["n"] for r in await self.db.fetch(_ROWS)})

    async def count(self, service: str) -> int:
        """Of every topic but the services' own: fired timers and repartitioned notes are inputs
        too, and would end a wait early."""
        return sum(n for (s, topic), n in (await self.counts()).items() if s == service and not topic.startswith("wuguan."))
