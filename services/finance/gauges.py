"""Domain gauges of the finance API: how many disputes, restorations, suspensions, arrears and
card complaints stand as the projections say now (issue 6's metric catalogue, deploy/prometheus
rules/domain.yml). The workers' decision counters say that something happened; these say what is
still open, so an alert can stay on while a breach lasts and clear when it is dealt with.

Read from the finance views in one statement (one snapshot), after a projector catch-up, never
on a scrape: a scrape storm costs the database nothing, and a busy log costs one query per
`min_interval_s`. Labels come from closed sets (dispute status, aging bucket, outcome, state):
no account, ticket, card or outlet id (A.PRIVACY), and a bounded number of series.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from prometheus_client import Gauge

from .aging import ARREARS_EDGES, bucket_labels

log = logging.getLogger(__name__)

# TMF621 statuses of a dispute not yet closed or cancelled: on hold awaiting resolution, or
# resolved awaiting closure (finance.disputes.status).
OPEN_DISPUTE_STATUSES = ("acknowledged", "resolved")
ARREARS_BUCKETS = tuple(bucket_labels(ARREARS_EDGES))  # 0-30, 31-60, 61-90, 90+ as v_arrears_aging
CARD_OUTCOMES = ("replaced", "escalated", "referred")  # finance.card_replacements.outcome
SLA_STATES = ("pending", "completed")

DISPUTES_OPEN = Gauge(
    "wuguan_finance_disputes_open", "Disputes not yet closed or cancelled, by status", ["status"])
DISPUTES_HELD = Gauge(
    "wuguan_finance_disputes_held_fen", "Amount on hold under acknowledged disputes, fen (D.HOLD)")
DISPUTE_REPLIES_OVERDUE = Gauge(
    "wuguan_finance_dispute_replies_overdue",
    "Acknowledged disputes past their reply deadline and still unanswered (D.REPLY_15D)")
DISPUTE_REPLY_BREACHES = Gauge(
    "wuguan_finance_dispute_reply_sla_breaches",
    "Disputes whose reply deadline passed without a reply, answered since or not (D.REPLY_15D)")
RESTORATIONS_PENDING = Gauge(
    "wuguan_finance_restorations_pending", "Restorations ordered and not yet reported complete (CP4.RESTORE_48H)")
RESTORATIONS_OVER_SLA = Gauge(
    "wuguan_finance_restorations_over_sla",
    "Restorations past their 48 h deadline: still pending, or completed late (CP4.RESTORE_48H)", ["state"])
SUSPENSIONS_IN_FORCE = Gauge(
    "wuguan_finance_suspensions_in_force", "Approved suspensions with no restoration ordered yet (CP4)")
ARREARS_OPEN = Gauge(
    "wuguan_finance_arrears_open", "Open arrears occurrences by aging bucket (DN.OCCURRENCE)", ["bucket"])
ARREARS_OVERDUE = Gauge(
    "wuguan_finance_arrears_overdue_fen", "Overdue amount of open arrears occurrences by aging bucket, fen", ["bucket"])
CARD_COMPLAINTS = Gauge(
    "wuguan_finance_card_complaints",
    "Card complaints decided since the log began, by outcome (C.REPLACE_NOW, C.STOCK, C.NOT_ELIGIBLE)", ["outcome"])
AS_OF = Gauge(
    "wuguan_finance_projection_as_of_timestamp_seconds",
    "Latest business time projected (the 'now' of every age above); 0 before the first event")
GAUGES_POSITION = Gauge(
    "wuguan_finance_gauges_position", "Global position of the log the domain gauges were read at")

# One statement, so every number comes from the same snapshot and the same as-of. Through the
# views, so the gauges agree with what the API and BI tools read.
SNAPSHOT_SQL = """
SELECT c.global_position AS position, c.as_of,
       d.acknowledged, d.resolved, d.held_fen, d.replies_overdue, d.reply_breaches,
       r.pending AS restorations_pending, r.pending_over_sla, r.completed_late,
       s.in_force AS suspensions_in_force,
       a.buckets, a.occurrences, a.overdue_fen,
       k.replaced, k.escalated, k.referred
FROM finance.v_as_of c
CROSS JOIN (
    SELECT count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
           count(*) FILTER (WHERE status = 'resolved') AS resolved,
           coalesce(sum(held_minor) FILTER (WHERE status = 'acknowledged'), 0) AS held_fen,
           count(*) FILTER (WHERE status = 'acknowledged' AND reply_overdue AND replied_at IS NULL) AS replies_overdue,
           count(*) FILTER (WHERE reply_overdue) AS reply_breaches
    FROM finance.v_disputes) d
CROSS JOIN (
    SELECT count(*) FILTER (WHERE completed_at IS NULL) AS pending,
           count(*) FILTER (WHERE completed_at IS NULL AND sla_missed_at IS NOT NULL) AS pending_over_sla,
           count(*) FILTER (WHERE completion = 'late') AS completed_late
    FROM finance.v_restorations) r
CROSS JOIN (
    SELECT count(*) AS in_force FROM finance.v_suspensions
    WHERE outcome = 'approved' AND restoration_ordered_at IS NULL) s
CROSS JOIN (
    SELECT array_agg(bucket) AS buckets, array_agg(occurrences) AS occurrences, array_agg(overdue_minor) AS overdue_fen
    FROM finance.v_arrears_aging) a
CROSS JOIN (
    SELECT count(*) FILTER (WHERE outcome = 'replaced') AS replaced,
           count(*) FILTER (WHERE outcome = 'escalated') AS escalated,
           count(*) FILTER (WHERE outcome = 'referred') AS referred
    FROM finance.v_card_replacements) k
"""


@dataclass(frozen=True)
class Reading:
    gauge: Gauge
    labels: tuple[str, ...]
    value: float


def readings(row: Mapping) -> list[Reading]:
    """The sample of every gauge for one snapshot row. Every value of every closed label set is
    given, zero when nothing is in it, so a series never keeps a stale value from an earlier
    snapshot (a dispute resolved, a bucket emptied)."""
    buckets = dict.fromkeys(ARREARS_BUCKETS, (0, 0))
    buckets.update(zip(row["buckets"] or (), zip(row["occurrences"] or (), row["overdue_fen"] or ())))
    as_of = row["as_of"]
    out = [Reading(DISPUTES_OPEN, (status,), row[status]) for status in OPEN_DISPUTE_STATUSES]
    out += [
        Reading(DISPUTES_HELD, (), row["held_fen"]),
        Reading(DISPUTE_REPLIES_OVERDUE, (), row["replies_overdue"]),
        Reading(DISPUTE_REPLY_BREACHES, (), row["reply_breaches"]),
        Reading(RESTORATIONS_PENDING, (), row["restorations_pending"]),
        Reading(RESTORATIONS_OVER_SLA, ("pending",), row["pending_over_sla"]),
        Reading(RESTORATIONS_OVER_SLA, ("completed",), row["completed_late"]),
        Reading(SUSPENSIONS_IN_FORCE, (), row["suspensions_in_force"]),
    ]
    for bucket, (count, fen) in buckets.items():
        out += [Reading(ARREARS_OPEN, (bucket,), count), Reading(ARREARS_OVERDUE, (bucket,), fen)]
    out += [Reading(CARD_COMPLAINTS, (outcome,), row[outcome]) for outcome in CARD_OUTCOMES]
    out += [
        Reading(AS_OF, (), as_of.timestamp() if as_of is not None else 0),
        Reading(GAUGES_POSITION, (), row["position"]),
    ]
    return out


def publish(samples: list[Reading]) -> None:
    for sample in samples:
        gauge = sample.gauge.labels(*sample.labels) if sample.labels else sample.gauge
        gauge.set(sample.value)


def refresh_due(shown: int | None, position: int, last_started: float | None, now: float,
                min_interval_s: float) -> bool:
    """Whether to read the gauges again after a catch-up that left the checkpoint at `position`.
    Only a moved checkpoint can change them (every number is a function of the projections and
    the as-of, which move together); `shown` is None until a reading succeeds. Never sooner
    than `min_interval_s` after the last attempt, failed ones included."""
    if shown is not None and position == shown:
        return False
    return last_started is None or now - last_started >= min_interval_s


async def snapshot(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The row `readings` takes; None only if the checkpoint row is missing (not migrated)."""
    return await conn.fetchrow(SNAPSHOT_SQL)


class GaugeRefresher:
    """Called after each catch-up of the projector loop (run_projector's on_progress, which is
    synchronous): starts one refresh in the background when one is due and none is running, so
    the projector never waits for the gauges."""

    def __init__(self, pool: asyncpg.Pool, min_interval_s: float, clock=time.monotonic):
        self._pool = pool
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._shown: int | None = None  # the position the gauges were read at
        self._last_started: float | None = None
        self._task: asyncio.Task | None = None

    def on_progress(self, progress) -> None:
        if self._task is not None and not self._task.done():
            return
        now = self._clock()
        if not refresh_due(self._shown, progress.position, self._last_started, now, self._min_interval_s):
            return
        self._last_started = now
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            async with self._pool.acquire() as conn:
                row = await snapshot(conn)
            if row is not None:
                publish(readings(row))
                self._shown = row["position"]
        except (asyncpg.PostgresError, OSError) as exc:
            # Tried again after the interval: `_shown` has not moved.
            log.warning("finance gauges: database unavailable (%s); keeping the last values", type(exc).__name__)
        except Exception:  # a bug must not end the projector's callbacks; the traceback holds no row data
            log.exception("finance gauges: refresh failed; keeping the last values")

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
