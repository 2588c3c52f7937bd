"""Audit trails (A.EVENT): a dispute's decisions, an account's decisions across services, and
one decision with what caused it and what it caused. Read from `events` through the finance
index tables; every decision is returned as stored, with phone numbers masked."""
from __future__ import annotations

import uuid

import asyncpg

from .lists import render_time
from .privacy import masked

EVENT_COLUMNS = ("global_position, event_id::text AS event_id, event_type, stream_id, stream_version, service,"
                 " business_time, payload")


def render_event(row) -> dict:
    return masked({
        "globalPosition": row["global_position"], "streamId": row["stream_id"],
        "streamVersion": row["stream_version"], "businessTime": render_time(row["business_time"]),
        "decision": row["payload"],
    })


# The CSV trails list a few envelope fields of each decision: read just those, not the whole
# payload (an evidence pack can be large) to decode and mask only to be dropped.
FLAT_COLUMNS = ("global_position, stream_id, business_time, payload->>'decisionId' AS decision_id,"
                " payload->>'decisionType' AS decision_type, payload->>'service' AS service,"
                " payload->>'outcome' AS outcome, payload->'ruleIds' AS rule_ids,"
                " payload->'reasonCodes' AS reason_codes, payload->'causedBy' AS caused_by")
FLAT = ["globalPosition", "decisionId", "decisionType", "service", "streamId", "businessTime", "outcome",
        "ruleIds", "reasonCodes", "causedBy"]
_TICKET = "SELECT global_position FROM finance.ticket_decisions WHERE ticket_id = $1"
_ACCOUNT_PAGE = ("SELECT global_position FROM finance.account_decisions WHERE account_id = $1 AND global_position > $2"
                 " ORDER BY global_position LIMIT $3")


def render_flat(row) -> dict:
    return {"globalPosition": row["global_position"], "decisionId": row["decision_id"],
            "decisionType": row["decision_type"], "service": row["service"], "streamId": row["stream_id"],
            "businessTime": render_time(row["business_time"]), "outcome": row["outcome"],
            "ruleIds": row["rule_ids"], "reasonCodes": row["reason_codes"], "causedBy": row["caused_by"]}


async def _trail(conn: asyncpg.Connection, columns: str, positions_sql: str, *args) -> list:
    return await conn.fetch(
        f"SELECT {columns} FROM events WHERE global_position IN ({positions_sql}) ORDER BY global_position", *args)


async def ticket_trail(conn: asyncpg.Connection, ticket_id: str, *, flat: bool = False) -> list[dict]:
    if flat:
        return [render_flat(r) for r in await _trail(conn, FLAT_COLUMNS, _TICKET, ticket_id)]
    return [render_event(r) for r in await _trail(conn, EVENT_COLUMNS, _TICKET, ticket_id)]


async def account_trail(conn: asyncpg.Connection, account_id: str, after: int, limit: int, *,
                        flat: bool = False) -> list[dict]:
    if flat:
        return [render_flat(r) for r in await _trail(conn, FLAT_COLUMNS, _ACCOUNT_PAGE, account_id, after, limit)]
    return [render_event(r) for r in await _trail(conn, EVENT_COLUMNS, _ACCOUNT_PAGE, account_id, after, limit)]


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def decision_trail(conn: asyncpg.Connection, decision_id: str) -> dict | None:
    """The decision, the stored decisions it was caused by (an upstream decision consumed as input,
    or the decision whose timer fired), the input ids that are not decisions (external inputs),
    and the decisions it caused (consumed by another service, or fired by its timer)."""
    row = await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1::uuid", decision_id)
    if row is None:
        return None
    envelope = row["payload"]
    inputs = [str(c) for c in envelope.get("causedBy") or ()]
    # Two lookups, each by an index: matching `event_id::text` (or an OR of both) scanned the log.
    decisions = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ANY($1::uuid[])", [i for i in inputs if is_uuid(i)])
    fired_by = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE global_position IN"
        " (SELECT global_position FROM finance.timer_origins WHERE timer_event_id = ANY($1::text[]))",
        inputs,
    )
    causes = sorted({r["global_position"]: r for r in [*decisions, *fired_by]}.values(),
                    key=lambda r: r["global_position"])
    stored = {r["event_id"] for r in decisions}
    found = {i for i in inputs if is_uuid(i) and str(uuid.UUID(i)) in stored}
    timer_inputs = {r["timer_event_id"] for r in await conn.fetch(
        "SELECT timer_event_id FROM finance.timer_origins WHERE timer_event_id = ANY($1::text[])", inputs)}
    # What it caused: decisions whose input was this decision or one of the timers it set.
    own_timers = await conn.fetch(
        "SELECT timer_event_id FROM finance.timer_origins WHERE global_position = $1", row["global_position"])
    cause_ids = [decision_id] + [r["timer_event_id"] for r in own_timers]
    caused = await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE global_position IN"
        " (SELECT global_position FROM finance.decision_causes WHERE cause_id = ANY($1::text[]))"
        " AND global_position <> $2 ORDER BY global_position",
        cause_ids, row["global_position"],
    )
    return {
        "decision": render_event(row),
        "causedBy": [render_event(r) for r in causes],
        "externalInputs": [i for i in inputs if i not in found and i not in timer_inputs],
        "caused": [render_event(r) for r in caused],
    }
