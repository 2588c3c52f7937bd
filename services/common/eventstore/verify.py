"""Walks the hash chain up to the chain head (A.TAMPER_EVIDENT).

The head is read first, so appends committed during the walk are left for the next walk
instead of being mistaken for a broken end. A walk can resume from a position already
verified (the workers do that periodically; `wuguan verify` starts from the beginning).
"""
from __future__ import annotations

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
    if expected_position != head_position or prev != head_hash:
        report.problems.append(
            f"chain head is at position {head_position} but the log ends at {expected_position}"
            " (events removed from the end, or the head was altered)"
        )
    report.last_position, report.last_hash = expected_position, prev
    return report
