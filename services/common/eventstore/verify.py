"""Walks the hash chain up to the chain head (A.TAMPER_EVIDENT).

The head is read first, so appends committed during the walk are left for the next walk
instead of being mistaken for a broken end. A walk can resume from a position already
verified (the workers do that periodically; `wuguan verify` starts from the beginning).

A whole walk also checks the unique claims (services/common/runtime/claims.py) against the
decisions that made them, when given each service's `claims_made`: the claims table sits
outside the chain, and a deleted claim would let a duplicate through.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from .chain import GENESIS_HASH, event_hash
from .store import SELECT_COLUMNS, _stored


@dataclass
class VerifyReport:
    events_checked: int = 0
    problems: list[str] = field(default_factory=list)
    last_position: int = 0
    last_hash: bytes = GENESIS_HASH
    claims_checked: dict[str, int] = field(default_factory=dict)  # service -> claims its decisions made

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_chain(
    conn: asyncpg.Connection,
    *,
    from_position: int = 0,
    from_hash: bytes = GENESIS_HASH,
    page_size: int = 5000,
    max_problems: int = 20,
    claims_made: Mapping[str, Callable[[dict], list[tuple[str, str]]]] | None = None,
) -> VerifyReport:
    head = await conn.fetchrow("SELECT global_position, hash FROM event_chain_head")
    head_position, head_hash = (head["global_position"], bytes(head["hash"])) if head else (0, GENESIS_HASH)
    report = VerifyReport(last_position=from_position, last_hash=from_hash)
    expected_position, prev = from_position, from_hash
    while len(report.problems) < max_problems and expected_position < head_position:
        rows = await conn.fetch(
            f"SELECT {SELECT_COLUMNS} FROM events WHERE global_position > $1 AND global_position <= $2"
            " ORDER BY global_position LIMIT $3",
            expected_position,
            head_position,
            page_size,
        )
        if not rows:
            break
        page_after, made = expected_position, []
        for event in map(_stored, rows):
            expected_position += 1
            report.events_checked += 1
            if event.global_position != expected_position:
                report.problems.append(
                    f"position {expected_position}: missing (next stored is {event.global_position})"
                )
                expected_position = event.global_position
            if bytes(event.prev_hash) != prev:
                report.problems.append(f"position {event.global_position}: link to previous event broken")
            recomputed = event_hash(bytes(event.prev_hash), event)
            if recomputed != bytes(event.hash):
                report.problems.append(f"position {event.global_position}: content does not match its hash")
            prev = bytes(event.hash)
            if claims_made and from_position == 0 and event.service in claims_made:
                made += [(event.service, key, value, event.global_position)
                         for key, value in claims_made[event.service](event.payload)]
        if claims_made and from_position == 0:
            await _check_claims(conn, made, page_after, rows[-1]["global_position"], report)
            if len(report.problems) > max_problems:  # a wiped claims table is one finding, not a million
                extra = len(report.problems) - max_problems
                report.problems[max_problems:] = [f"... and {extra} more problems in positions up to"
                                                  f" {rows[-1]['global_position']}"]
    if claims_made and from_position == 0:
        stray = await conn.fetchval("SELECT count(*) FROM unique_claims WHERE position < 1")
        if stray:
            report.problems.append(f"{stray} unique claim(s) made by no decision in the log")
    if expected_position != head_position or prev != head_hash:
        report.problems.append(
            f"chain head is at position {head_position} but the log ends at {expected_position}"
            " (events removed from the end, or the head was altered)"
        )
    report.last_position, report.last_hash = expected_position, prev
    return report


async def _check_claims(conn: asyncpg.Connection, made: list[tuple[str, str, str, int]], after: int, through: int,
                        report: VerifyReport) -> None:
    """For one page of the log (positions after..through): each claim its decisions made is stored
    with that decision's value and position, and each claim stored as made by one of them is."""
    rows = await conn.fetch(
        "SELECT c.service, c.claim_key, c.value, c.position FROM unique_claims c"
        " JOIN unnest($1::text[], $2::text[]) AS m(service, claim_key) USING (service, claim_key)",
        [m[0] for m in made], [m[1] for m in made])
    stored = {(r["service"], r["claim_key"]): (r["value"], r["position"]) for r in rows}
    for service, key, value, position in made:
        report.claims_checked[service] = report.claims_checked.get(service, 0) + 1
        found = stored.get((service, key))
        if found is None:
            report.problems.append(f"position {position}: its unique claim is missing")
        elif found != (value, position):
            report.problems.append(f"position {position}: its unique claim was altered")
    expected = set(made)
    for r in await conn.fetch("SELECT service, claim_key, value, position FROM unique_claims"
                              " WHERE position > $1 AND position <= $2", after, through):
        if (r["service"], r["claim_key"], r["value"], r["position"]) not in expected \
                and (r["service"], r["claim_key"]) not in stored:
            report.problems.append(f"position {r['position']}: a unique claim made by no decision in the log")
